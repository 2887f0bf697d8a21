"""End to end from the CLI: train through the engine (a bad video in the data), resume, eval, predict."""

import shutil

import av
import pytest
import torch

from yololab.cli import main

TINY = ["--model", "timesformer", "--dim", "32", "--depth", "1", "--heads", "2", "--patch", "8", "--clip-len", "4",
        "--short-side", "32", "--size", "32", "--batch", "8", "--workers", "0", "--lr0", "0.003"]


@pytest.mark.slow
def test_train_resume_eval_predict(tiny_synth, tmp_path, capsys):
    data = tmp_path / "data"
    shutil.copytree(tiny_synth, data)
    bad = next((data / "Blink").glob("*g13*.avi"))  # in the training list of split 1
    bad.write_bytes(bad.read_bytes()[:200])
    runs = tmp_path / "runs"
    args = ["video", "train", "--data", str(data), *TINY, "--project", str(runs), "--name", "t", "--val-clips", "2"]
    assert main(args + ["--epochs", "2", "--time", "1e-9"]) == 0  # stops after its first step, as if killed
    err = capsys.readouterr().err
    assert f"warning: {bad}" in err and "sample skipped" in err  # named, skipped, training went on
    run = runs / "t"
    for name in ("results.csv", "report.md", "confusion.png", "curves.png", "samples.png", "weights/best.pt"):
        assert (run / name).is_file(), name
    report = (run / "report.md").read_text()
    assert "| MoveLeft |" in report and "MoveLeft/MoveRight" in report

    first = torch.load(run / "weights" / "last.pt", weights_only=True)
    assert main(["video", "train", "--resume", str(run), "--data", str(data), *TINY]) == 0
    resumed = torch.load(run / "weights" / "last.pt", weights_only=True)
    assert resumed["step"] > first["step"] and resumed["meta"] == first["meta"]
    assert resumed["meta"]["classes"][0] == "MoveLeft" and resumed["meta"]["clip"]["clip_len"] == 4

    out = tmp_path / "eval"
    assert main(["video", "eval", str(run / "weights" / "last.pt"), "--data", str(data), "--val-clips", "2",
                 "--val-crops", "3", "--out", str(out), "--workers", "0"]) == 0
    assert "top-1" in capsys.readouterr().out
    assert (out / "confusion.png").is_file() and "| Bounce |" in (out / "report.md").read_text()
    assert main(["video", "eval", str(run / "weights" / "last.pt"), "--data", str(data), "--out", str(out)]) == 2

    video = next((data / "Grow").glob("*.avi"))
    labelled = tmp_path / "labelled.mp4"
    assert main(["video", "predict", str(run / "weights" / "best.pt"), str(video), "--out", str(labelled)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 6 and all(float(line.split()[0]) >= 0 for line in lines[:5])
    with av.open(str(labelled)) as c:
        assert c.streams.video[0].frames == 8
    assert main(["video", "predict", str(run / "weights" / "best.pt"), str(video), "--out", str(labelled)]) == 2



def test_the_control_refuses_motion_frames_in_one_line(tiny_synth, tmp_path, capsys):
    assert main(["video", "train", "--data", str(tiny_synth), "--model", "frame_avg", "--frame-input", "motion",
                 "--project", str(tmp_path), "--name", "c"]) != 0
    err = capsys.readouterr().err
    assert "--frame-input motion is for cnn_lstm / cnn_gru" in err and "Traceback" not in err
    assert not (tmp_path / "c").exists()
