# Two commands set up everything on a fresh machine:
#   make demo   -> creates .venv, installs yololab, runs the demo, writes runs/demo/
#   make test   -> creates .venv, installs yololab with test extras and the reference packages, runs pytest
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: demo test install clean diagrams docs

$(STAMP): pyproject.toml Makefile
	$(PYTHON) -m venv $(VENV)
	# torch first, pinned to the build that lies on this machine's disk (other versions download GBs)
	$(BIN)/pip install torch==2.14.1 torchvision==0.29.1
	$(BIN)/pip install -e ".[dev]"
	# reference implementations for the parity tests and side-by-side benchmarks; --no-deps because
	# both pull opencv-python, which clashes with opencv-python-headless (see docs/design.md)
	$(BIN)/pip install --no-deps ultralytics==8.4.190 ultralytics-thop yolov5==7.0.14
	$(BIN)/pip install pandas seaborn thop requests psutil scipy polars py-cpuinfo "setuptools<81"
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/yololab demo --out runs/demo

# regenerate the architecture and block diagrams, the comparison table with its accuracy section and plot, the
# training-idea figures and the SOTA figures under docs/ from the code
BLOCKS := DarknetResidual C3 C2f C3k2 SPP SPPF C2PSA AnchorHead DetectHead
diagrams: $(STAMP)
	$(BIN)/yololab models diagram yolov3 yolov5s yolov8s yolo11s --out docs/diagrams --generations
	$(BIN)/yololab models diagram --block $(BLOCKS) --out docs/diagrams/blocks \
		--side-by-side C3,C2f,C3k2 --side-by-side SPP,SPPF --side-by-side AnchorHead,DetectHead
	$(BIN)/yololab models explain dfl --out docs/diagrams/training
	$(BIN)/yololab models compare --out docs/architectures.csv
	$(BIN)/yololab sota plot --out docs/figures

docs: diagrams

test: $(STAMP)
	$(BIN)/python -m pytest -q

clean:
	rm -rf $(VENV) runs build *.egg-info src/*.egg-info
