"""`yololab translate synth | train | eval | translate` end to end on the toy corpus, and their bad input."""

from __future__ import annotations

import io
from pathlib import Path

import sacrebleu
import torch

from yololab.cli import main
from yololab.engine import TrainConfig
from yololab.translate.task import TranslationTask, smoothed_loss
from yololab.translate.tokenizer import Tokenizer


def test_run_folder_has_every_picture_and_report(tiny_run):
    names = {p.name for p in tiny_run.iterdir()}
    for name in ("curves_mt.png", "attention_layer1_head1.png", "attention_layer1_head2.png", "masks_demo.png",
                 "bleu_report.png", "decodes.md", "results.csv", "report.md", "test.hyp", "val.hyp"):
        assert name in names, name
    report = (tiny_run / "report.md").read_text()
    assert "## Translation" in report and "tok:13a" in report and "beam 3" in report and "greedy" in report
    header = (tiny_run / "results.csv").read_text().splitlines()[0]
    for column in ("train/loss", "train/nll", "metrics/bleu", "metrics/chrf", "metrics/val_loss", "metrics/test_bleu"):
        assert column in header
    ckpt = torch.load(tiny_run / "weights" / "best.pt", weights_only=True)
    assert Tokenizer(ckpt["meta"]["tokenizer"]).encode(["a cat"]) and ckpt["meta"]["model_kwargs"]["d_model"] == 48


def test_translate_command(tiny_run, capsys, monkeypatch, tmp_path):
    w = str(tiny_run / "weights" / "best.pt")
    assert main(["translate", "translate", "The black cat eats the apple.", "Une phrase ☃ inconnue ✈", "",
                 "--weights", w, "--attention", str(tmp_path / "att")]) == 0
    out = capsys.readouterr().out.split("\n")
    assert len(out) == 4 and out[2] == "" and out[0]  # one line per input; the empty input stays empty
    assert (tmp_path / "att" / "attention_layer1_head2.png").is_file()
    monkeypatch.setattr("sys.stdin", io.StringIO("Do the dogs sleep?\nI eat.\n"))
    assert main(["translate", "translate", "--weights", w, "--beam", "1"]) == 0
    assert len(capsys.readouterr().out.splitlines()) == 2


def test_eval_command_scores_like_sacrebleu(tiny_run, toy_corpus, capsys, tmp_path):
    out = tmp_path / "eval"
    assert main(["translate", "eval", "--weights", str(tiny_run / "weights" / "best.pt"), "--data", str(toy_corpus),
                 "--split", "test", "--beam", "2", "--out", str(out), "--lowercase"]) == 0
    printed = capsys.readouterr().out
    hyp = (out / "test.hyp").read_text().splitlines()
    ref = (toy_corpus / "test.fr").read_text().splitlines()
    assert f"test: {sacrebleu.corpus_bleu(hyp, [ref])}" in printed
    assert f"test (lowercased): {sacrebleu.corpus_bleu(hyp, [ref], lowercase=True)}" in printed
    assert "lowercased BLEU signature: nrefs:1|case:lc|" in printed
    assert "BLEU signature: nrefs:1|case:mixed|eff:no|tok:13a|smooth:exp|version:" in printed
    for name in ("scores.md", "bleu_report.png", "decodes.md", "masks_demo.png", "attention_layer1_head1.png"):
        assert (out / name).is_file()
    assert main(["translate", "eval", "--weights", str(tiny_run / "weights" / "best.pt"), "--data", str(toy_corpus),
                 "--out", str(out)]) == 2  # an existing report folder is not overwritten without --overwrite
    assert "pass --overwrite" in capsys.readouterr().err


def test_checkpoint_without_tokenizer(tiny_run, tmp_path, capsys):
    ckpt = torch.load(tiny_run / "weights" / "best.pt", weights_only=True)
    del ckpt["meta"]["tokenizer"]
    torch.save(ckpt, tmp_path / "no_tok.pt")
    assert main(["translate", "translate", "hello", "--weights", str(tmp_path / "no_tok.pt")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "holds no tokenizer" in err and len(err.splitlines()) == 1


def test_resume_takes_the_checkpoints_tokenizer(tiny_run, toy_corpus):
    ckpt = torch.load(tiny_run / "weights" / "last.pt", weights_only=True)
    task = TranslationTask(TrainConfig(batch=600), {"data": str(toy_corpus)}, vocab_size=60)
    task.load_checkpoint_meta(ckpt["meta"])
    model = task.build_model()
    assert task.tokenizer.proto == ckpt["meta"]["tokenizer"] and len(task.tokenizer) == 120  # not retrained at 60
    model.load_state_dict(ckpt["state_dict"])


def test_smoothed_loss_equals_cross_entropy():
    torch.manual_seed(0)
    logits, target = torch.randn(2, 5, 11), torch.tensor([[4, 5, 6, 0, 0], [7, 8, 9, 10, 3]])
    loss, nll = smoothed_loss(logits, target, 0.1)
    ref = torch.nn.functional.cross_entropy(logits.flatten(0, 1), target.flatten(), ignore_index=0, label_smoothing=0.1)
    plain = torch.nn.functional.cross_entropy(logits.flatten(0, 1), target.flatten(), ignore_index=0)
    torch.testing.assert_close(loss, ref)
    torch.testing.assert_close(nll, plain)


def test_misaligned_files_fail_before_a_run_folder(tmp_path, capsys):
    (tmp_path / "a.en").write_text("one\ntwo\n")
    (tmp_path / "a.de").write_text("eins\n")
    assert main(["translate", "train", "--src", str(tmp_path / "a.en"), "--tgt", str(tmp_path / "a.de"),
                 "--project", str(tmp_path / "runs")]) == 2
    assert "misaligned parallel files" in capsys.readouterr().err
    assert not Path(tmp_path / "runs").exists()
