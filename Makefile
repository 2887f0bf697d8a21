# Two commands set up everything on a fresh machine:
#   make demo   -> creates .venv, installs yololab and what it needs to run (nothing more), runs the demo into runs/demo/
#   make test   -> adds the test extras and the reference packages, runs pytest
# and one regenerates the committed figures and tables under docs/ (nothing else writes there):
#   make docs   (`make diagrams` is the same)
PYTHON  ?= python3
VENV    := .venv
BIN     := $(VENV)/bin
RUNTIME := $(VENV)/.installed-runtime
TESTING := $(VENV)/.installed-test

.PHONY: demo test install docs diagrams clean

$(RUNTIME): pyproject.toml Makefile
	$(PYTHON) -m venv $(VENV)
	# torch first, pinned to the build that lies on this machine's disk (other versions download GBs)
	$(BIN)/pip install torch==2.14.1 torchvision==0.29.1
	$(BIN)/pip install -e .
	touch $@

# the reference implementations for the parity tests and side-by-side benchmarks: their dependencies first, then
# the packages themselves with --no-deps, because both pull opencv-python, which clashes with
# opencv-python-headless (see docs/design.md); installed last, they leave pip nothing to complain about.
# Only ultralytics-thop, pinned: the old PyPI `thop` installs the same `thop` module, and whichever lands last wins,
# so the FLOP references changed with install order
$(TESTING): $(RUNTIME)
	$(BIN)/pip install -e ".[dev]"
	$(BIN)/pip install pandas seaborn requests psutil scipy polars py-cpuinfo "setuptools<81"
	$(BIN)/pip install --no-deps ultralytics==8.4.190 ultralytics-thop==2.2.3 yolov5==7.0.14
	touch $@

install: $(RUNTIME)

demo: $(RUNTIME)
	$(BIN)/yololab demo --out runs/demo --overwrite

# regenerate the architecture and block diagrams, the comparison table with its accuracy section and plot, the
# training-idea figures and the SOTA figures (with our measured rows, docs/benchmarks/ours.csv, written by
# `yololab benchmark --out docs/benchmarks`) under docs/ from the code (--overwrite: this target is how they change)
BLOCKS := DarknetResidual C3 C2f C3k2 SPP SPPF C2PSA AnchorHead DetectHead
docs: $(RUNTIME)
	$(BIN)/yololab models diagram yolov3 yolov5s yolov8s yolo11s --out docs/diagrams --generations --overwrite
	$(BIN)/yololab models diagram --block $(BLOCKS) --out docs/diagrams/blocks \
		--side-by-side C3,C2f,C3k2 --side-by-side SPP,SPPF --side-by-side AnchorHead,DetectHead --overwrite
	$(BIN)/yololab models explain dfl --out docs/diagrams/training --overwrite
	$(BIN)/yololab models explain tal --image ../shared/data/coco8/images/val/000000000061.jpg \
		--out docs/diagrams/training --dpi 100 --overwrite
	$(BIN)/yololab models compare --out docs/architectures.csv --overwrite
	$(BIN)/yololab sota plot --out docs/figures --ours docs/benchmarks/ours.csv --overwrite

diagrams: docs

test: $(TESTING)
	$(BIN)/python -m pytest -q

clean:
	rm -rf $(VENV) runs build *.egg-info src/*.egg-info
