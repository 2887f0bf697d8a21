"""Weight import: format detection, the restricted unpickler, yololab checkpoints, reference checkpoints.

Reference checkpoints are made here from the reference packages (built from their YAMLs, saved the way
their trainers save them) and then loaded in a subprocess where those packages cannot be imported.
"""

from __future__ import annotations

import json
import os
import pickle
import subprocess
import sys
import textwrap
import zipfile
from copy import deepcopy
from pathlib import Path

import pytest
import torch

from helpers import randomize_batchnorm, ultralytics_model, yolov5_model
from yololab.checkpoint.load import detect_format, load_weights
from yololab.checkpoint.native import load_checkpoint, save_checkpoint
from yololab.checkpoint.reference import read_reference_checkpoint, restricted_load, standin_state_dict
from yololab.errors import WeightsError
from yololab.models import build_model


# ---------------------------------------------------------------------------------------------------------
# Format detection and bad files
# ---------------------------------------------------------------------------------------------------------

def test_detect_format_describes_unknown_files(tmp_path):
    cases = {
        "empty.pt": (b"", "an empty file"),
        "notes.pt": (b"# my weights\nlayer1 = 0.5\n", "a text file beginning with '# my weights'"),
        "odd.weights": (b"\x00\x00\x00\x00\x02\x00\x00\x00\x00\x00\x00\x00" + b"\x00" * 8 + b"\x01\x02\x03",
                        "not a multiple of 4 after a Darknet header"),
        "blob.bin": (bytes(range(200, 256)) * 4, "a binary file beginning with bytes c8 c9"),
    }
    for name, (data, expected) in cases.items():
        path = tmp_path / name
        path.write_bytes(data)
        with pytest.raises(WeightsError, match=expected.replace("(", r"\(").replace(")", r"\)")):
            detect_format(path)
    with zipfile.ZipFile(tmp_path / "other.zip", "w") as zf:
        zf.writestr("readme.txt", "hello")
    with pytest.raises(WeightsError, match="a zip archive without data.pkl"):
        detect_format(tmp_path / "other.zip")
    with pytest.raises(WeightsError, match="no such weights file"):
        detect_format(tmp_path / "missing.pt")


def test_truncated_checkpoint_is_a_clear_error(tmp_path):
    model = build_model("yolov5n", num_classes=2)
    path = save_checkpoint(model, tmp_path / "ckpt.pt")
    data = path.read_bytes()
    bad = tmp_path / "cut.pt"
    bad.write_bytes(data[: len(data) // 2])
    with pytest.raises(WeightsError, match="cut.pt"):
        load_weights(build_model("yolov5n", num_classes=2), bad)


class _RunsCode:
    """An object whose unpickling would call ``func(*args)``: the classic malicious-pickle payload."""

    def __init__(self, func, args):
        self.func, self.args = func, args

    def __reduce__(self):
        return self.func, self.args


@pytest.mark.parametrize("func,args,refused", [
    (os.system, None, "system"),
    (eval, None, "builtins.eval"),
    (subprocess.call, None, "subprocess.call"),
])
def test_restricted_unpickler_refuses_code(tmp_path, func, args, refused):
    marker = tmp_path / "pwned"
    if func is os.system:
        args = (f"touch {marker}",)
    elif func is eval:
        args = (f"open({str(marker)!r}, 'w').close()",)
    else:
        args = (["touch", str(marker)],)
    evil = tmp_path / "evil.pt"
    # looks like a reference checkpoint: a stand-in model plus the payload
    torch.save({"model": torch.nn.Conv2d(1, 1, 1), "ema": None, "payload": _RunsCode(func, args)}, evil)
    with pytest.raises(WeightsError, match=f"refused to load global '.*{refused}'"):
        restricted_load(evil)
    with pytest.raises(WeightsError, match=refused):
        load_weights(build_model("yolov5n"), evil)
    assert not marker.exists(), "the pickle's code ran"
    # a plain (non-zip) pickle is not even unpickled
    plain = tmp_path / "evil.pkl"
    plain.write_bytes(pickle.dumps(_RunsCode(func, args), protocol=2))
    with pytest.raises(WeightsError, match="plain pickle"):
        load_weights(build_model("yolov5n"), plain)
    assert not marker.exists()


def test_pickle_protocol_4_is_refused_with_a_clear_error(tmp_path):
    """torch.load(weights_only=True) reads the protocol-2 pickles torch.save, Ultralytics and yolov5 write; a
    file saved with pickle_protocol=4 is refused, saying so (docs/design.md, "Reading reference checkpoints")."""
    torch.save({"model": torch.nn.Conv2d(1, 1, 1)}, tmp_path / "p4.pt", pickle_protocol=4)
    with pytest.raises(WeightsError, match="p4.pt: the checkpoint's pickle cannot be read safely"):
        restricted_load(tmp_path / "p4.pt")


def test_standins_never_call_the_real_class(tmp_path):
    """A torch.nn module in a checkpoint is rebuilt as a stand-in: class name and state, no real object."""
    conv = torch.nn.Conv2d(3, 4, 3).half()
    torch.save({"model": torch.nn.Sequential(conv, torch.nn.SiLU())}, tmp_path / "m.pt")
    ckpt = restricted_load(tmp_path / "m.pt")
    model = ckpt["model"]
    assert not isinstance(model, torch.nn.Module)
    assert model.class_path == "torch.nn.modules.container.Sequential"
    assert model.state["_modules"]["0"].class_path == "torch.nn.modules.conv.Conv2d"
    w = model.state["_modules"]["0"].state["_parameters"]["weight"]
    assert w.dtype == torch.float16 and torch.equal(w, conv.weight.detach())


# ---------------------------------------------------------------------------------------------------------
# yololab checkpoints
# ---------------------------------------------------------------------------------------------------------

def test_yololab_checkpoint_round_trip(tmp_path):
    model = randomize_batchnorm(build_model("yolov8n", num_classes=3))
    path = save_checkpoint(model, tmp_path / "run" / "last.pt", epoch=7, best_fitness=0.25)
    assert sorted(p.name for p in path.parent.iterdir()) == ["last.pt"]  # no temporary file left behind
    ckpt = load_checkpoint(path)
    assert (ckpt["format"], ckpt["version"], ckpt["model_name"], ckpt["num_classes"]) == ("yololab", 1, "yolov8n", 3)
    assert ckpt["epoch"] == 7 and ckpt["best_fitness"] == 0.25
    assert detect_format(path) == "yololab"
    loaded = build_model("yolov8n", num_classes=3, weights=path)
    for k, v in model.state_dict().items():
        assert torch.equal(loaded.state_dict()[k], v), k
    with pytest.raises(WeightsError, match="a yololab checkpoint of 'yolov8n', not of 'yolov5n'"):
        build_model("yolov5n", weights=path)
    with pytest.raises(ValueError, match="would overwrite"):
        save_checkpoint(model, tmp_path / "x.pt", state_dict={})


def test_yololab_checkpoint_keeps_builder_style(tmp_path):
    """yolov3-tiny saved in yolov5 style loads back in that style, whatever style the caller built."""
    model = randomize_batchnorm(build_model("yolov3-tiny", num_classes=2, style="yolov5"))
    path = save_checkpoint(model, tmp_path / "tiny.pt")
    loaded = build_model("yolov3-tiny", num_classes=2, weights=path)  # default style is darknet
    assert loaded.meta.extra["style"] == "yolov5"
    x = torch.rand(1, 3, 64, 64)
    with torch.no_grad():
        assert torch.equal(model.eval()(x), loaded.eval()(x))


def test_torch_file_that_is_not_a_checkpoint(tmp_path):
    torch.save({"weights": torch.zeros(3)}, tmp_path / "other.pt")
    with pytest.raises(WeightsError, match="not a yololab checkpoint"):
        build_model("yolov5n", weights=tmp_path / "other.pt")


# ---------------------------------------------------------------------------------------------------------
# Reference checkpoints (Ultralytics, yolov5), loaded without the reference packages
# ---------------------------------------------------------------------------------------------------------

LOAD_WITHOUT_REFERENCES = textwrap.dedent("""
    import json, sys
    sys.modules["ultralytics"] = None  # any import of these now fails
    sys.modules["yolov5"] = None
    sys.modules["models"] = None
    sys.modules["utils"] = None
    import torch
    from yololab.models import build_model
    jobs = json.loads(sys.argv[1])
    x = torch.load(jobs["input"])
    outputs = {}
    for name, path in jobs["models"].items():
        model = build_model(name, weights=path).eval()
        with torch.no_grad():
            outputs[name] = model(x)
        outputs[name + ":style"] = model.meta.extra.get("style", "")
    assert not any(m.startswith(("ultralytics", "yolov5")) for m in sys.modules if sys.modules[m] is not None)
    torch.save(outputs, jobs["output"])
""")


def _ultralytics_checkpoint(yaml: str, path: Path):
    model = randomize_batchnorm(ultralytics_model(yaml))
    # as ultralytics' trainer saves: the EMA model in fp16, 'model' None
    torch.save({"epoch": -1, "best_fitness": None, "model": None, "ema": deepcopy(model).half(), "updates": 0,
                "optimizer": None, "train_args": {"model": yaml, "imgsz": 640}, "date": "2026-01-01",
                "version": "8.4.190"}, path)
    return model


def _yolov5_checkpoint(yaml: str, path: Path):
    import numpy as np

    model = randomize_batchnorm(yolov5_model(yaml))
    # as yolov5's train.py saves (best_fitness is a numpy array there)
    torch.save({"epoch": -1, "best_fitness": np.array([0.0]), "model": deepcopy(model).half(), "ema": None,
                "updates": None, "optimizer": None, "opt": {"cfg": yaml}, "date": "2026-01-01"}, path)
    return model


@pytest.mark.slow
def test_reference_checkpoints_load_without_reference_packages(tmp_path):
    refs = {
        "yolov8n": _ultralytics_checkpoint("yolov8n.yaml", tmp_path / "yolov8n.pt"),
        "yolo11n": _ultralytics_checkpoint("yolo11n.yaml", tmp_path / "yolo11n.pt"),
        "yolov5n": _yolov5_checkpoint("yolov5n.yaml", tmp_path / "yolov5n.pt"),
        "yolov3-tiny": _yolov5_checkpoint("hub/yolov3-tiny.yaml", tmp_path / "yolov3-tiny.pt"),
    }
    x = torch.rand(2, 3, 96, 128)
    torch.save(x, tmp_path / "x.pt")
    jobs = {"input": str(tmp_path / "x.pt"), "output": str(tmp_path / "out.pt"),
            "models": {name: str(tmp_path / f"{name}.pt") for name in refs}}
    run = subprocess.run([sys.executable, "-c", LOAD_WITHOUT_REFERENCES, json.dumps(jobs)], capture_output=True,
                         text=True, cwd=tmp_path, timeout=300)
    assert run.returncode == 0, run.stderr[-3000:]
    ours = torch.load(tmp_path / "out.pt")
    assert ours["yolov3-tiny:style"] == "yolov5"  # SiLU in the checkpoint -> yolov5-style network
    for name, ref in refs.items():
        ref = ref.half().float().eval()  # the checkpoint holds the fp16-rounded weights
        with torch.no_grad():
            expected = ref(x)
        expected = expected[0] if isinstance(expected, (list, tuple)) else expected
        assert ours[name].shape == expected.shape, name
        assert (ours[name] - expected).abs().max() <= 1e-4 * max(1.0, expected.abs().max().item()), name


def test_reference_checkpoint_metadata_and_class_count(tmp_path):
    ref = _yolov5_checkpoint("yolov5n.yaml", tmp_path / "v5.pt")
    info = read_reference_checkpoint(tmp_path / "v5.pt")
    assert info.source == "yolov5" and info.num_classes == 80 and info.activations == {"SiLU"}
    assert info.anchors.shape == (3, 3, 2) and info.strides == [8.0, 16.0, 32.0]
    assert len(info.state_dict) == len(ref.state_dict())
    assert info.state_dict["model.0.conv.weight"].dtype == torch.float16

    # another class count: everything but the class outputs loads, with a warning saying so
    with pytest.warns(UserWarning, match=r"loaded 343/349 tensors; class outputs of shape head.m.0.weight "
                                         r"\(24, 64, 1, 1\).*num_classes=3 \(checkpoint has 80\)"):
        model = build_model("yolov5n", num_classes=3, weights=tmp_path / "v5.pt")
    ref_head = ref.model[-1].m[0].weight.detach().half().float().view(3, 85, 64)
    ours = model.head.m[0].weight.detach().view(3, 8, 64)
    assert torch.equal(ours[:, :5], ref_head[:, :5])  # box + objectness rows of each anchor loaded
    assert torch.equal(model.backbone.stem.conv.weight, ref.model[0].conv.weight.detach().half().float())
    assert model.backbone.stem.conv.weight.dtype == torch.float32  # fp16 -> the model's dtype

    # another architecture: the first tensor that does not fit is named with both shapes
    with pytest.raises(WeightsError, match=r"does not fit yolov5s.*'model.0.conv.weight'.*\(16, 3, 6, 6\).*"
                                           r"\(32, 3, 6, 6\)"):
        build_model("yolov5s", weights=tmp_path / "v5.pt")
    with pytest.raises(WeightsError, match="does not fit yolov8n"):
        build_model("yolov8n", weights=tmp_path / "v5.pt")


def test_ultralytics_checkpoint_other_class_count(tmp_path):
    _ultralytics_checkpoint("yolov8n.yaml", tmp_path / "v8.pt")
    assert detect_format(tmp_path / "v8.pt") == "ultralytics"
    with pytest.warns(UserWarning, match=r"head.cv3.0.0.conv.weight \(64, 64, 3, 3\).*num_classes=5 "
                                         r"\(checkpoint has 80\)"):
        model = build_model("yolov8n", num_classes=5, weights=tmp_path / "v8.pt")
    assert model.head.cv3[0][2].weight.shape == (5, 64, 1, 1)


# ---------------------------------------------------------------------------------------------------------
# CLI
# ---------------------------------------------------------------------------------------------------------

def test_cli_convert_weights(tmp_path, capsys):
    from yololab.cli import main
    from yololab.checkpoint.darknet import save_darknet_weights

    src_model = randomize_batchnorm(build_model("yolov3-tiny", num_classes=4))
    src = save_darknet_weights(src_model, tmp_path / "tiny.weights")
    before = src.read_bytes()
    assert main(["models", "convert-weights", str(src), str(tmp_path / "tiny.pt")]) == 0
    assert "yolov3-tiny (num_classes=4, style=darknet" in capsys.readouterr().out  # guessed from the file size
    assert src.read_bytes() == before
    ckpt = load_checkpoint(tmp_path / "tiny.pt")
    assert ckpt["model_name"] == "yolov3-tiny" and ckpt["num_classes"] == 4 and ckpt["source_format"] == "darknet"
    loaded = build_model("yolov3-tiny", num_classes=4, weights=tmp_path / "tiny.pt")
    assert torch.equal(loaded.head.m[0].weight, src_model.head.m[0].weight)
    # refuses to overwrite, and bad input is one clear line with exit status 2
    assert main(["models", "convert-weights", str(src), str(tmp_path / "tiny.pt")]) == 2
    assert "exists" in capsys.readouterr().err
    (tmp_path / "notes.txt").write_text("hello\n")
    assert main(["models", "convert-weights", str(tmp_path / "notes.txt"), str(tmp_path / "x.pt")]) == 2
    assert "a text file beginning with 'hello'" in capsys.readouterr().err
    assert not (tmp_path / "x.pt").exists()


@pytest.mark.slow
def test_checkpoint_with_other_activations_is_refused(tmp_path):
    """yolov5's hub/yolov5s-LeakyReLU.yaml has yolov5s's shapes but LeakyReLU: loading it must not pass silently."""
    _yolov5_checkpoint("hub/yolov5s-LeakyReLU.yaml", tmp_path / "leaky.pt")
    assert read_reference_checkpoint(tmp_path / "leaky.pt").activations == {"LeakyReLU"}
    with pytest.raises(WeightsError, match="uses LeakyReLU activations, yolov5s uses SiLU"):
        build_model("yolov5s", weights=tmp_path / "leaky.pt")


def test_self_containing_module_tree_is_an_error(tmp_path):
    outer = torch.nn.Sequential(torch.nn.Conv2d(1, 1, 1))
    outer._modules["loop"] = outer  # a module inside itself: only a crafted file has this
    torch.save({"model": outer}, tmp_path / "loop.pt")
    with pytest.raises(WeightsError, match="loops"):
        standin_state_dict(restricted_load(tmp_path / "loop.pt")["model"])


def test_model_for_weights_takes_the_files_model_and_checks_the_users(tmp_path):
    """What val, predict, export and features resolve --weights / --model with: the file's model, class count and
    builder options; --model (any spelling) must agree with a file that tells, and names the model of one that
    cannot be recognised."""
    from yololab.checkpoint.convert import model_for_weights

    torch.manual_seed(0)
    save_checkpoint(build_model("yolov3-tiny", num_classes=3), tmp_path / "w.pt")
    assert model_for_weights(tmp_path / "w.pt") == ("yolov3-tiny", 3, {"style": "darknet"})
    assert model_for_weights(tmp_path / "w.pt", "YOLOv3-Tiny")[:2] == ("yolov3-tiny", 3)
    with pytest.raises(WeightsError, match="w.pt: holds a yolov3-tiny, not a yolov8n"):
        model_for_weights(tmp_path / "w.pt", "yolov8n")
    (tmp_path / "odd.pt").write_bytes(b"not weights")
    with pytest.raises(WeightsError, match="not a weights file this tool knows"):
        model_for_weights(tmp_path / "odd.pt")
    assert model_for_weights(tmp_path / "odd.pt", "yolov8n") == ("yolov8n", None, {})
