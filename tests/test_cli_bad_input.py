"""Every command in careless hands: a bad invocation prints exactly one `error: ...` line on stderr, nothing on
stdout, exits with 2, writes no file, and warns nothing on the way.

The table holds one list of rows per command group, ``(argv, text the error line must contain)``. A group that
is added to ``yololab.cli.GROUPS`` must add its list here, with a row for each of its commands (two tests
enforce both). In ``argv``, ``{name}`` stands for a place of the test folder built by :func:`places`:

    {tmp}     the test folder (also the current directory: default outputs land in it, and would be seen)
    {file}    a text file          {empty}  an empty folder     {full}  a folder holding a user's file
    {coco8}   ../shared/data/coco8/coco8.yaml (read only)        {coco8_dir}  its folder
    {ablation}  an ablation config with an unknown key
    {old_*}   outputs of an earlier run that must not be replaced without --overwrite
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import warnings
from pathlib import Path

import pytest

from helpers import REPO, shared_data
from yololab import cli

BAD_INPUT: dict[str, list[tuple[list[str], str]]] = {
    "models": [
        (["models", "list", "--imgsz", "0"], "argument --imgsz: expected a positive integer, got 0"),
        (["models", "summary", "yolov9"], "unknown model 'yolov9'; the zoo has no YOLO version 9"),
        (["models", "summary", "yolov8n", "--imgsz", "-3"], "expected a positive integer, got -3"),
        (["models", "summary"], "the following arguments are required: NAME"),
        (["models", "compare", "--out", "{empty}"], "is a folder, expected a file name"),
        (["models", "compare", "--out", "{tmp}/table.txt"], "expected a file name ending in .csv"),
        (["models", "compare", "--out", "{old_csv}"], "old.csv exists (and 1 more of the outputs); pass --overwrite"),
        (["models", "diagram", "yolov8n", "--out", "{tmp}/d", "--dpi", "0"], "argument --dpi: expected a positive"),
        (["models", "diagram", "yolov8n", "--out", "{file}"], "exists and is a file, expected a folder"),
        (["models", "diagram", "yolov8n", "--out", "{file}/sub"], "is a file, so no folder can be made there"),
        (["models", "diagram", "yolov8n", "--out", "{tmp}/d", "--formats", "gif"], "unknown format(s) gif"),
        (["models", "diagram", "YOLOv9", "--out", "{tmp}/d"], "unknown model 'YOLOv9'"),
        (["models", "diagram", "yolov8n", "--out", "{old_diagrams}"], "yolov8n.png exists; pass --overwrite"),
        (["models", "diagram", "--block", "C4", "--out", "{tmp}/d"], "--block 'C4': expected one of"),
        (["models", "diagram", "--side-by-side", "C3", "--out", "{tmp}/d"], "expected at least two comma-separated"),
        (["models", "diagram", "--out", "{tmp}/d"], "nothing to draw"),
        (["models", "diagram", "--block", "SPPF", "--out", "{old_diagrams}"], "SPPF.svg exists; pass --overwrite"),
        (["models", "explain", "dfl", "--out", "{file}"], "exists and is a file, expected a folder"),
        (["models", "explain", "gfl"], "invalid choice: 'gfl'"),
        (["models", "explain", "dfl", "--dpi", "0"], "argument --dpi: expected a positive integer, got 0"),
        (["models", "explain", "dfl", "--out", "{old_diagrams}"], "dfl.png exists (and 1 more"),
        (["models", "explain", "dfl", "--weights", "{file}", "--out", "{tmp}/e"], "apply to `explain tal` only"),
        (["models", "explain", "tal", "--model", "yolov5n", "--out", "{tmp}/e"], "TAL is the assigner of anchor-free"),
        (["models", "explain", "tal", "--image", "{file}", "--out", "{tmp}/e"], "expected 'class cx cy w h', got"),
        (["models", "explain", "tal", "--image", "{coco8_dir}/images/val/000000000061.jpg", "--labels", "{empty}"],
         "is a folder, expected a file"),
        (["models", "explain", "tal", "--image", "{tmp}/nope.jpg"], "nope.jpg does not exist"),
        (["models", "convert-weights", "{file}", "{empty}", "--force"], "is a folder, expected a file name"),
        (["models", "convert-weights", "{tmp}/missing.pt", "{tmp}/out.pt"], "missing.pt does not exist"),
        (["models", "convert-weights", "{file}", "{tmp}/out.pt"], "not a weights file this tool knows"),
        (["models", "convert-weights", "{file}", "{tmp}/out.pt", "--num-classes", "0"], "expected a positive integer"),
        (["models", "convert-weights", "{file}", "{tmp}/out.pt", "--model", "yolov9"], "unknown model 'yolov9'"),
        (["models", "convert-weights", "{file}", "{old_pt}"], "old.pt exists; pass --overwrite"),
    ],
    "data": [
        (["data", "check", "{coco8}", "--workers", "-3"], "argument --workers: expected a positive integer, got -3"),
        (["data", "check", "{coco8}", "--json", "{empty}"], "is a folder, expected a file name"),
        (["data", "check", "{coco8}", "--plot", "{tmp}/out.txt"], "expected a file name ending in .png, .svg, .pdf"),
        (["data", "check", "{coco8}", "--cache-dir", "{file}"], "exists and is a file, expected a folder"),
        (["data", "check", "{coco8}", "--json", "{old_json}"], "old.json exists; pass --overwrite"),
        (["data", "check", "{tmp}/missing.yaml"], "missing.yaml does not exist"),
        (["data", "check", "{empty}"], "expected a data.yaml (or one *.yaml) in the folder, found none"),
        (["data", "check", "{file}"], "expected a mapping with keys path/train/val/names"),
        (["data", "preview", "{coco8}", "--out", "{tmp}/p.png", "--imgsz", "0"], "argument --imgsz: expected a"),
        (["data", "preview", "{coco8}", "--out", "{tmp}/p.png", "--tile", "0"], "argument --tile: expected a"),
        (["data", "preview", "{coco8}", "--out", "{tmp}/p.gif"], "expected a file name ending in .png, .jpg"),
        (["data", "preview", "{coco8}", "--out", "{old_png}"], "old.png exists; pass --overwrite"),
        (["data", "preview", "{coco8}", "--out", "{tmp}/p.png", "--split", "test"], "no split 'test'"),
        (["data", "convert", "{coco8}", "{tmp}/out", "--from", "yolo", "--to", "yolo", "--names", "person,dgo"],
         "--names: 'dgo' (did you mean 'dog'?) not in the source"),
        (["data", "convert", "{coco8}", "{tmp}/out", "--from", "yolo", "--to", "yolo", "--names-map", "{tmp}/no.yaml"],
         "no.yaml does not exist"),
        (["data", "convert", "{tmp}/missing", "{tmp}/out", "--from", "yolo", "--to", "coco"], "missing does not exist"),
        (["data", "convert", "{coco8_dir}", "{file}", "--from", "yolo", "--to", "coco"], "is a file, expected a folder"),
        (["data", "convert", "{coco8_dir}", "{full}", "--from", "yolo", "--to", "coco"], "pass --overwrite"),
        (["data", "convert", "{coco8_dir}", "{tmp}/out", "--from", "yolo", "--to", "voc"], "invalid choice: 'voc'"),
        (["data", "synth", "shapes", "--out", "{tmp}/s", "--val", "0"], "argument --val: expected a positive integer"),
        (["data", "synth", "shapes", "--out", "{file}"], "exists and is a file, expected a folder"),
        (["data", "synth", "shapes", "--out", "{tmp}/s", "--imgsz", "16"], "--imgsz must be at least 32 pixels"),
        (["data", "synth", "shapes", "--out", "{full}"], "folder is not empty and was not written by"),
        (["data", "synth", "shapes", "--out", "{old_synth}"], "earlier `yololab data synth`; pass --overwrite"),
        (["data", "synth"], "the following arguments are required: <kind>"),
        (["data", "download", "coco128", "--out", "{tmp}/dl", "--url-base", "notaurl"],
         "expected an http://, https:// or file:// address, got 'notaurl'"),
        (["data", "download", "coco128", "--out", "{tmp}/dl", "--retries", "-1"], "expected an integer >= 0"),
        (["data", "download", "imagenet", "--out", "{tmp}/dl"], "unknown dataset 'imagenet'"),
        (["data", "download", "coco128", "--out", "{file}"], "exists and is a file, expected a folder"),
    ],
    "sota": [
        (["sota", "validate", "--table", "{tmp}/missing.csv"], "missing.csv does not exist"),
        (["sota", "validate", "--table", "{file}"], "line 1, column 1: header 'not what you expected'"),
        (["sota", "plot", "--out", "{file}"], "exists and is a file, expected a folder"),
        (["sota", "plot", "--out", "{old_figures}", "--tasks", "detection"], "sota_detection.png exists"),
        (["sota", "plot", "--ours", "{tmp}/ours.csv"], "ours.csv does not exist"),
        (["sota", "plot", "--tasks", "cooking"], "invalid choice: 'cooking'"),
        (["ablate", "--config", "{tmp}/missing.yaml"], "missing.yaml does not exist"),
        (["ablate", "--config", "{ablation}"], "ablation.yaml: unknown key 'epoch'; did you mean 'epochs'?"),
        (["ablate", "--config", "{file}"], "file.txt: expected a mapping of key: value, got str"),
        (["ablate", "--config", "{ablation}", "--epochs", "0"], "argument --epochs: expected a positive integer"),
        (["ablate", "--config", "{ablation}", "--seeds", "3", "3"], "--seeds 3 3: expected at least 2 different"),
        (["ablate", "--config", "{ablation}", "--project", "{file}"], "exists and is a file, expected a folder"),
        (["ablate", "--config", "{ablation}", "--project", "{tmp}", "--name", "full"], "full exists; pass --exist-ok"),
    ],
    "translate": [
        (["translate", "synth", "--out", "{tmp}/c", "--train", "0"], "argument --train: expected a positive integer"),
        (["translate", "synth", "--out", "{tmp}/c", "--held-out", "0.9"], "expected a number in (0, 0.5], got '0.9'"),
        (["translate", "synth", "--out", "{file}"], "exists and is a file, expected a folder"),
        (["translate", "synth", "--out", "{full}"], "not empty and was not written by `yololab translate synth`"),
        (["translate", "train", "--tsv", "{tmp}/missing.tsv"], "missing.tsv does not exist"),
        (["translate", "train", "--tsv", "{file}"], "file.txt:1: expected 2 tab-separated columns"),
        (["translate", "train", "--tsv", "{file}", "--label-smoothing", "1"], "expected a number in [0, 1), got '1'"),
        (["translate", "train", "--tsv", "{file}", "--d-model", "50", "--heads", "4"], "50 is not divisible by --heads 4"),
        (["translate", "train", "--tsv", "{file}", "--batch", "64"], "batch=64: expected padded tokens per batch"),
        (["translate", "train", "--src", "{file}", "--tgt", "{file}", "--tsv", "{file}"], "give exactly one corpus"),
        (["translate", "train", "--src", "{file}"], "--src and --tgt go together"),
        (["translate", "train", "--data", "{empty}"], "no corpus files; expected <split>.<lang>[.gz] files"),
        (["translate", "train", "--data", "{file}"], "corpus folder not found"),
        (["translate", "eval", "--weights", "{tmp}/missing.pt", "--tsv", "{file}"], "missing.pt does not exist"),
        (["translate", "eval", "--weights", "{file}", "--tsv", "{file}", "--beam", "0"], "argument --beam: expected a"),
        (["translate", "eval", "--weights", "{file}"], "give the sentences to score"),
        (["translate", "eval", "--weights", "{file}", "--tsv", "{file}"], "not a readable yololab checkpoint"),
        (["translate", "eval", "--weights", "{file}", "--tsv", "{file}", "--out", "{full}"], "full exists; pass --overwrite"),
        (["translate", "eval", "--weights", "{file}", "--tsv", "{file}", "--device", "cuda"], "CUDA was requested"),
        (["translate", "translate", "hi", "--weights", "{tmp}/missing.pt"], "missing.pt does not exist"),
        (["translate", "translate", "hi", "--weights", "{file}"], "not a readable yololab checkpoint"),
        (["translate", "translate", "hi", "--weights", "{file}", "--attention", "{full}"], "full exists; pass --overwrite"),
        (["translate", "translate", "--weights", "{file}", "--input", "{empty}"], "is a folder, expected a file"),
        (["translate", "translate", "hi", "--weights", "{file}", "--alpha", "-1"], "expected a number >= 0, got '-1'"),
    ],
    "demo": [
        (["demo", "--out", "{file}"], "exists and is a file, expected a folder"),
        (["demo", "--model", "yolov9"], "unknown model 'yolov9'"),
        (["demo", "--imgsz", "0"], "argument --imgsz: expected a positive integer, got 0"),
        (["demo", "--out", "{old_demo}"], "models.txt exists (and 7 more of the outputs); pass --overwrite"),
    ],
    "deploy": [
        (["predict", "--model", "yolov8n", "--source", "{tmp}/missing.jpg"], "missing.jpg: no such file or folder"),
        (["predict", "--model", "yolov8n", "--source", "{empty}"], "empty: no images or videos in this folder"),
        (["predict", "--model", "yolov8n", "--source", "{file}"], "file.txt, line 1: not what you expected does not"),
        (["predict", "--model", "yolov8n", "--source", "{tmp}/*.bmp"], "*.bmp: no image or video matches"),
        (["predict", "--source", "{coco8_dir}"], "give --weights FILE (or --model NAME for a random-init model)"),
        (["predict", "--model", "yolov9", "--source", "{coco8_dir}"], "unknown model 'yolov9'"),
        (["predict", "--weights", "{tmp}/nope.pt", "--source", "{coco8_dir}"], "nope.pt does not exist"),
        (["predict", "--weights", "{file}", "--source", "{coco8_dir}/images/val"], "not a weights file this tool"),
        (["predict", "--model", "yolov8n", "--source", "{coco8_dir}", "--conf", "2"], "expected a number in [0, 1]"),
        (["predict", "--model", "yolov8n", "--source", "{coco8_dir}", "--imgsz", "0"], "expected a positive integer"),
        (["predict", "--model", "yolov8n", "--source", "{coco8_dir}", "--project", "{file}"], "expected a folder"),
        (["predict", "--model", "yolov8n", "--source", "{coco8_dir}", "--project", "{tmp}", "--name", "full"],
         "full exists; pass --exist-ok"),
        (["export", "--model", "yolov8n", "--format", "tflite"], "invalid choice: 'tflite'"),
        (["export", "--model", "yolov8n", "--int8"], "--int8 needs --data DATA.yaml"),
        (["export", "--model", "yolov8n", "--half"], "use --format openvino --half"),
        (["export", "--model", "yolov8n", "--format", "openvino", "--half", "--int8", "--data", "{coco8}"],
         "--half and --int8 exclude each other"),
        (["export", "--weights", "{file}"], "not a weights file this tool knows"),
        (["export", "--model", "yolov8n", "--imgsz", "100", "--out", "{tmp}/e.onnx"], "must be multiples of yolov8n's"),
        (["export", "--model", "yolov8n", "--imgsz", "64", "64", "64"], "--imgsz takes one or two numbers"),
        (["export", "--model", "yolov8n", "--out", "{tmp}/e.xml"], "an ONNX model is an .onnx file"),
        (["export", "--model", "yolov8n", "--out", "{tmp}/e.txt"], "expected a file name ending in .onnx"),
        (["export", "--model", "yolov8n", "--out", "{old_onnx}"], "old.onnx exists; pass --overwrite"),
        (["export"], "give --weights FILE (or --model NAME"),
        (["features", "--model", "yolov8n", "--image", "{tmp}/nope.jpg"], "nope.jpg does not exist"),
        (["features", "--model", "yolov8n", "--image", "{file}", "--out", "{tmp}/f"], "file.txt: cannot decode"),
        (["features", "--image", "{file}"], "give --weights FILE (or --model NAME"),
        (["features", "--model", "yolov8n", "--image", "{file}", "--out", "{file}"], "expected a folder"),
        (["features", "--model", "yolov8n", "--image", "{file}", "--imgsz", "0"], "expected a positive integer"),
        (["benchmark", "--models", "yolov9"], "unknown model 'yolov9'"),
        (["benchmark", "--modes", "fp64"], "invalid choice: 'fp64'"),
        (["benchmark", "--imgsz", "0"], "argument --imgsz: expected a positive integer, got 0"),
        (["benchmark", "--data", "{tmp}/missing.yaml"], "missing.yaml does not exist"),
        (["benchmark", "--models", "yolov8n", "yolo11n", "--weights", "{file}"], "--weights goes with one model"),
        (["benchmark", "--out", "{file}"], "exists and is a file, expected a folder"),
        (["benchmark", "--source", "{empty}", "--out", "{tmp}/b"], "empty: no images or videos in this folder"),
    ],
    "detect": [
        (["train", "--data", "{coco8}", "--imgsz", "0"], "argument --imgsz: expected a positive integer, got 0"),
        (["train", "--data", "{coco8}", "batch=0"], "batch=0: expected a positive integer"),
        (["train", "--data", "{coco8}", "--imgsz", "100"], "imgsz=100: must be a multiple of yolov8n's largest stride"),
        (["train", "--data", "{tmp}/no.yaml"], "no.yaml: data yaml does not exist"),
        (["train", "--data", "{file}"], "expected a mapping with keys path/train/val/names"),
        (["train", "epochs=3"], "--data is required (a data.yaml), or --resume RUN"),
        (["train", "--data", "{coco8}", "--device", "cpu,1"], "device="),
        (["train", "--data", "{coco8}", "lr=0.1"], "unknown setting 'lr'; did you mean"),
        (["train", "--data", "{coco8}", "--bogus", "1"], "unknown option --bogus"),
        (["train", "--data", "{coco8}", "--mosaic", "2"], "argument --mosaic: expected a number in [0, 1], got 2.0"),
        (["train", "--data", "{coco8}", "--model", "yolov9"], "unknown model 'yolov9'"),
        (["train", "--data", "{coco8}", "--weights", "{file}"], "not a weights file this tool knows"),
        (["train", "--data", "{coco8}", "--weights", "{tmp}/missing.pt"], "missing.pt does not exist"),
        (["train", "--resume", "{tmp}/missing"], "cannot resume"),
        (["train", "--resume", "{old_pt}"], "not a readable yololab checkpoint"),
        (["val", "--weights", "{tmp}/missing.pt", "--data", "{coco8}"], "missing.pt does not exist"),
        (["val", "--weights", "{old_pt}", "--data", "{tmp}/missing.yaml"], "missing.yaml does not exist"),
        (["val", "--weights", "{old_pt}", "--data", "{file}"], "expected a mapping with keys path/train/val/names"),
        (["val", "--weights", "{old_pt}", "--data", "{coco8}", "--split", "test"], "no split 'test'"),
        (["val", "--weights", "{old_pt}", "--data", "{coco8}"], "old.pt: not a weights file this tool knows"),
        (["val", "--weights", "{old_pt}", "--data", "{coco8}", "--imgsz", "0"], "--imgsz: expected a positive integer"),
        (["val", "--weights", "{old_pt}", "--data", "{coco8}", "--batch", "-2"], "--batch: expected a positive integer"),
        (["val", "--weights", "{old_pt}", "--data", "{coco8}", "--conf", "1.5"], "--conf: expected a number in [0, 1]"),
        (["val", "--weights", "{old_pt}", "--data", "{coco8}", "--iou", "-0.1"], "--iou: expected a number in [0, 1]"),
        (["val", "--weights", "{old_pt}", "--data", "{coco8}", "--device", "cuda:7"], "device=cuda:7"),
        (["val", "--weights", "{old_pt}", "--data", "{coco8}", "--project", "{tmp}", "--name", "old_demo"],
         "old_demo exists; pass --exist-ok"),
    ],
    "video": [
        (["video", "synth", "--out", "{file}"], "exists and is a file, expected a folder"),
        (["video", "synth", "--out", "{full}"], "folder is not empty and was not written by `yololab video synth`"),
        (["video", "synth", "--out", "{old_vsynth}"], "holds an earlier synthetic dataset; pass --overwrite"),
        (["video", "synth", "--out", "{tmp}/s", "--classes", "11"], "--classes must lie in 1..10, got 11"),
        (["video", "synth", "--out", "{tmp}/s", "--size", "33"], "--size must be an even number >= 16"),
        (["video", "synth", "--out", "{tmp}/s", "--frames", "0"], "argument --frames: expected a positive integer"),
        (["video", "extract-frames", "{tmp}/missing", "{tmp}/out"], "missing does not exist"),
        (["video", "extract-frames", "{empty}", "{file}"], "exists and is a file, expected a folder"),
        (["video", "extract-frames", "{empty}", "{empty}/frames"], "must lie outside the source folder"),
        (["video", "extract-frames", "{empty}", "{tmp}/out"], "no video file"),
        (["video", "extract-frames", "{empty}", "{tmp}/out", "--fps", "0"], "argument --fps: expected a positive"),
        (["video", "train", "--data", "{tmp}/missing"], "missing does not exist"),
        (["video", "train", "--data", "{empty}"], "empty: expected class folders holding videos"),
        (["video", "train", "--data", "{empty}", "--clip-len", "0"], "argument --clip-len: expected a positive"),
        (["video", "train", "--data", "{empty}", "--hflip", "2"], "argument --hflip: expected a number in [0, 1]"),
        (["video", "train", "--data", "{empty}", "--weights", "{tmp}/no.pt"], "no.pt does not exist"),
        (["video", "eval", "{tmp}/missing.pt", "--data", "{empty}"], "missing.pt does not exist"),
        (["video", "eval", "{file}", "--data", "{empty}"], "not a yololab checkpoint"),
        (["video", "eval", "{file}", "--data", "{empty}", "--out", "{full}"], "full exists; pass --exist-ok"),
        (["video", "predict", "{file}", "{tmp}/missing.avi"], "missing.avi does not exist"),
        (["video", "predict", "{file}", "{file}"], "not a yololab checkpoint"),
        (["video", "predict", "{file}", "{file}", "--out", "{tmp}/x.gif"], "expected a file name ending in .mp4, .avi"),
        (["video", "predict", "{file}", "{file}", "--out", "{old_avi}"], "old.avi exists; pass --overwrite"),
    ],
    "classify": [
        (["classify", "synth", "--out", "{tmp}/s", "--train", "0"], "argument --train: expected a positive integer"),
        (["classify", "synth", "--out", "{file}"], "exists and is a file, expected a folder"),
        (["classify", "synth", "--out", "{full}"], "full exists; pass --overwrite"),
        (["classify", "synth", "--out", "{full}", "--overwrite"], "is not an empty folder nor an earlier"),
        (["classify", "synth", "--out", "{tmp}/s", "--classes", "11"], "--classes must be between 2 and 10, got 11"),
        (["classify", "download", "cifar10", "--out", "{tmp}/dl", "--retries", "-1"], "expected an integer >= 0"),
        (["classify", "download", "imagenet", "--out", "{tmp}/dl"], "invalid choice: 'imagenet'"),
        (["classify", "download", "cifar10", "--out", "{tmp}/dl", "--url-base", "notaurl"], "expected an http://"),
        (["classify", "train", "--data", "{tmp}/missing"], "missing does not exist"),
        (["classify", "train", "--data", "{empty}", "--fliplr", "1.5"], "argument --fliplr: expected a number in"),
        (["classify", "train", "--data", "{empty}", "--model", "resnet19"], "invalid choice: 'resnet19'"),
        (["classify", "train", "--data", "{empty}", "--epochs", "0"], "epochs"),
        (["classify", "train", "--data", "{empty}", "--mixup", "-1", "--project", "{tmp}/r"],
         "--mixup and --cutmix are Beta(alpha, alpha) parameters"),
        (["classify", "train", "--data", "{empty}", "--project", "{tmp}", "--name", "full"],
         "full exists; pass --exist-ok"),
        (["classify", "train", "--project", "{tmp}/r"], "--data is required"),
        (["classify", "train", "--data", "{empty}", "--project", "{tmp}/r", "--device", "cpu"],
         "empty: no train/ folder"),
        (["classify", "val", "--weights", "{tmp}/missing.pt"], "missing.pt does not exist"),
        (["classify", "val", "--weights", "{file}", "--out", "{full}"], "full exists; pass --overwrite"),
        (["classify", "val", "--weights", "{file}", "--out", "{tmp}/v"], "file.txt"),
        (["classify", "predict", "--weights", "{file}", "--source", "{tmp}/none.jpg"], "none.jpg does not exist"),
        (["classify", "predict", "--weights", "{file}", "--source", "{file}", "--topk", "0"],
         "argument --topk: expected a positive integer"),
        (["classify", "compare", "{empty}"], "empty: no eval.json; not a finished"),
        (["classify", "compare", "{empty}", "--out", "{old_md}"], "old.md exists; pass --overwrite"),
        (["classify", "compare", "{empty}", "--out", "{tmp}/t.txt"], "expected a file name ending in .md"),
    ],
    "cam": [
        (["cam", "--model", "yolov8n", "--image", "{tmp}/none.jpg"], "none.jpg does not exist"),
        (["cam", "--model", "yolov8n", "--image", "{file}", "--conf", "2"], "argument --conf: expected a number in"),
        (["cam", "--image", "{file}", "--out", "{tmp}/c"], "give --weights FILE"),
        (["cam", "--model", "resnet19", "--image", "{file}", "--out", "{tmp}/c"], "unknown model 'resnet19'"),
        (["cam", "--model", "resnet18", "--image", "{file}", "--out", "{tmp}/c"], "file.txt"),
        (["cam", "--model", "yolov8n", "--image", "{old_png}", "--out", "{tmp}"], "old_yolov8n_gradcam.png exists"),
        (["cam", "--model", "yolov8n", "--image", "{file}", "--method", "scorecam"], "invalid choice: 'scorecam'"),
    ],
}
ROWS = [pytest.param(argv, text, id=" ".join(argv)) for rows in BAD_INPUT.values() for argv, text in rows]


@pytest.fixture
def places(tmp_path, monkeypatch) -> dict[str, str]:
    """The test folder with a text file, folders, and outputs of earlier runs; it is also the current directory."""
    coco8 = shared_data("coco8", "coco8.yaml")
    (tmp_path / "file.txt").write_text("not what you expected\n")
    (tmp_path / "empty").mkdir()
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "mine.txt").write_text("a user's file\n")
    (tmp_path / "ablation.yaml").write_text("epoch: 3\nvariants: []\n")
    for name in ("old.csv", "old.md", "old.json", "old.png", "old.pt", "old_diagrams/yolov8n.png",
                 "old_diagrams/SPPF.svg", "old_diagrams/dfl.png", "old_diagrams/dfl.svg",
                 "old_figures/sota_detection.png", "old_demo/models.txt", "old_demo/yolov8n.png",
                 "old_demo/summary_yolov8n.txt", "old_demo/yolov8n.svg", "old_demo/yolov8n.mmd",
                 "old_demo/yolov8n.drawio", "old_demo/architectures.csv", "old_demo/architectures.md",
                 "old_demo/notes.txt", "old_synth/synth.json", "old_synth/data.yaml", "old.onnx", "old.avi",
                 "old_vsynth/video-synth.json", "old_yolov8n_gradcam.png"):
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(f"an earlier output: {name}\n")
    monkeypatch.chdir(tmp_path)
    values = {"tmp": tmp_path, "file": tmp_path / "file.txt", "empty": tmp_path / "empty", "full": tmp_path / "full",
              "coco8": coco8, "coco8_dir": coco8.parent, "ablation": tmp_path / "ablation.yaml", "old_csv": tmp_path / "old.csv",
              "old_json": tmp_path / "old.json", "old_md": tmp_path / "old.md", "old_png": tmp_path / "old.png", "old_pt": tmp_path / "old.pt",
              "old_diagrams": tmp_path / "old_diagrams", "old_figures": tmp_path / "old_figures",
              "old_demo": tmp_path / "old_demo", "old_synth": tmp_path / "old_synth", "old_onnx": tmp_path / "old.onnx",
              "old_avi": tmp_path / "old.avi", "old_vsynth": tmp_path / "old_vsynth"}
    return {k: str(v) for k, v in values.items()}


def snapshot(root: Path) -> dict[str, str]:
    """Every file and folder below root, with the hash of each file's bytes."""
    return {str(p.relative_to(root)): "dir" if p.is_dir() else hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*"))}


@pytest.mark.parametrize("argv, expected", ROWS)
def test_bad_invocation_is_one_error_line_and_writes_nothing(argv, expected, places, capfd):
    argv = [a.format(**places) for a in argv]
    before = snapshot(Path(places["tmp"]))
    with warnings.catch_warnings(record=True) as caught:  # a warning would be one more line on stderr
        warnings.simplefilter("always")
        rc = cli.main(argv)
    out, err = capfd.readouterr()
    lines = err.splitlines()
    assert rc == 2, (rc, out, err)
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    assert expected in lines[0], lines[0]
    assert out == "", out  # nothing printed before the error (demo --model X included)
    assert [str(w.message) for w in caught] == []
    assert snapshot(Path(places["tmp"])) == before


def test_every_group_and_command_has_rows():
    """A new group (or command) is covered from the day it is registered."""
    parser = cli.build_parser()
    groups = parser._subparsers._group_actions[0].choices
    assert set(BAD_INPUT) == set(cli.GROUPS)
    covered = {tuple(argv[:2]) for rows in BAD_INPUT.values() for argv, _ in rows}
    for name, group in groups.items():
        subs = [a for a in group._actions if isinstance(a, type(parser._subparsers._group_actions[0]))]
        for command in (subs[0].choices if subs else {}):
            assert (name, command) in covered, f"no bad-input row for `yololab {name} {command}`"
        if not subs:
            # a command without sub-commands (demo, val) may come from a group module of another name (detect)
            assert any(argv[0] == name for rows in BAD_INPUT.values() for argv, _ in rows), name


@pytest.mark.parametrize("argv, expected", [
    (["demo", "--model", "yolov9", "--out", "{tmp}/demo"], "error: unknown model 'yolov9'"),
    (["models", "convert-weights", "{file}", "{empty}", "--force"], "error: yololab models convert-weights:"),
])
def test_a_real_process_prints_one_line(argv, expected, places):
    """The same through the installed entry point: no traceback, no warning, no progress bar, one line."""
    env = {**os.environ, "PYTHONPATH": str(REPO / "src")}
    env.pop("YOLOLAB_DEBUG", None)
    run = subprocess.run([sys.executable, "-m", "yololab.cli", *(a.format(**places) for a in argv)],
                         capture_output=True, text=True, env=env, timeout=300)
    assert run.returncode == 2 and run.stdout == ""
    assert run.stderr.splitlines() == [run.stderr.strip()] and run.stderr.startswith(expected), run.stderr


def test_debug_shows_the_traceback(places, capfd, monkeypatch):
    argv = ["models", "convert-weights", places["file"], f"{places['tmp']}/out.pt"]
    assert cli.main([*argv, "--debug"]) == 2
    err = capfd.readouterr().err
    assert err.startswith("Traceback (most recent call last):") and err.splitlines()[-1].startswith("error: ")
    monkeypatch.setenv("YOLOLAB_DEBUG", "1")
    assert cli.main(argv) == 2
    assert "Traceback" in capfd.readouterr().err


def test_unexpected_errors_are_one_line_too(monkeypatch, capfd):
    """A bug of ours still gives one line (saying it is unexpected), not a traceback."""
    import yololab.analysis.summary as summary

    def broken(*args, **kwargs):
        raise ZeroDivisionError("division by zero\nsecond line")

    monkeypatch.setattr(summary, "zoo_rows", broken)
    assert cli.main(["models", "list"]) == 2
    err = capfd.readouterr().err
    assert err.splitlines() == [err.strip()]
    assert err.startswith("error: ZeroDivisionError: division by zero second line (unexpected; run again with --debug")


def test_os_errors_name_the_file():
    """An OSError (a read-only folder, a full disk, a rename) is one line naming the file(s)."""
    assert cli.error_line(OSError(13, "Permission denied", "/data/a.txt")) == "error: /data/a.txt: Permission denied"
    assert (cli.error_line(OSError(18, "Invalid cross-device link", "/a", None, "/b"))
            == "error: /a -> /b: Invalid cross-device link")
