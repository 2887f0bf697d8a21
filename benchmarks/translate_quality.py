"""Translation quality: BLEU of `yololab translate train` within a budget of training minutes, beside references.

Each run is the CLI itself (``yololab translate train`` with its defaults, ``time=`` minutes / 60); the run
writes the beam-5 translations of the test split by its best checkpoint, which are scored here with sacrebleu,
cased and lowercased (as most published Multi30K figures are); greedy BLEU is the best epoch's, from results.csv.
Two corpora:

* ``toy``: ``yololab translate synth`` (every test sentence holds a combination held out of training), one run
  per ``--seeds`` value, so that "stable" is measured rather than claimed (the seed changes the held-out
  combinations, the initialisation and the batches).
* ``multi30k``: ``../shared/data/multi30k``, en -> ``--tgt-lang``, scored on test_2016_flickr.

``--weights`` scores an existing checkpoint instead of training (`translate eval`; no time budget then). The
output is markdown, ready for benchmarks/README.md; run under the CPU lock:

    flock /work/cpu.lock .venv/bin/python benchmarks/translate_quality.py toy --minutes 4 --seeds 0 1
    flock /work/cpu.lock .venv/bin/python benchmarks/translate_quality.py multi30k --tgt-lang de --minutes 10
"""

from __future__ import annotations

import argparse
import csv
from pathlib import Path

from translate_throughput import MULTI30K, machine, uptime  # benchmarks/ is on the path of its scripts

from yololab.cli import main as yololab

ROOT = Path(__file__).resolve().parents[1]


def train(corpus: list[str], budget: list[str], project: Path, name: str, extra: list[str]) -> Path:
    argv = ["translate", "train", *corpus, "--project", str(project), "--name", name, "--exist-ok", *budget, *extra]
    if yololab(argv) != 0:
        raise SystemExit(f"training failed: yololab {' '.join(argv)}")
    return project / name


def score(run_dir: Path, data: Path, src: str, tgt: str, split: str) -> dict:
    """Cased and lowercased BLEU / chrF of the beam-5 translations in ``run_dir/<split>.hyp`` (written by
    `translate train` for best.pt, or `translate eval`), and greedy test BLEU at the best epoch (results.csv)."""
    from yololab.translate.corpus import load_folder
    from yololab.translate.metrics import corpus_scores

    hyp = (run_dir / f"{split}.hyp").read_text(encoding="utf-8").splitlines()
    ref = [t for _, t in load_folder(data, src, tgt).splits[split]]
    cased, lower = corpus_scores(hyp, ref), corpus_scores(hyp, ref, lowercase=True)
    greedy = float("nan")
    if (run_dir / "results.csv").is_file():
        rows = list(csv.DictReader((run_dir / "results.csv").open()))
        best = max(rows, key=lambda r: float(r["fitness"]))
        greedy = float(best.get("metrics/test_bleu") or "nan")
    return {"bleu": cased.bleu, "chrf": cased.chrf, "bleu_lc": lower.bleu, "greedy": greedy,
            "signature": cased.bleu_signature}


def curve(run_dir: Path) -> str:
    """Validation BLEU (greedy) against cumulative training minutes, from the engine's results.csv."""
    path = run_dir / "results.csv"
    if not path.is_file():
        return ""
    minutes, points = 0.0, []
    for row in csv.DictReader(path.open()):
        minutes += float(row["epoch_time"]) / 60
        test = f" / test {float(row['metrics/test_bleu']):.1f}" if row.get("metrics/test_bleu") else ""
        points.append(f"{minutes:.1f} min: val {float(row['metrics/bleu']):.1f}{test}")
    return "; ".join(points)


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("corpus", choices=("toy", "multi30k"))
    p.add_argument("--minutes", type=float, default=10.0, help="training budget per run (engine time=)")
    p.add_argument("--epochs", type=int, help="a budget of epochs instead of minutes (quality independent of load)")
    p.add_argument("--seeds", type=int, nargs="+", default=[0], help="toy: one run per seed")
    p.add_argument("--tgt-lang", choices=("de", "fr"), default="de", help="multi30k: target language")
    p.add_argument("--weights", type=Path, help="score this checkpoint instead of training")
    p.add_argument("--project", type=Path, default=ROOT / "runs" / "bench" / "translate")
    p.add_argument("--train-args", default="", help="extra `translate train` flags, space-separated")
    args = p.parse_args(argv)

    budget = (["--epochs", str(args.epochs)] if args.epochs else ["--epochs", "1000", f"time={args.minutes / 60:.6f}"])
    before, rows = uptime(), []
    for seed in (args.seeds if args.corpus == "toy" else [0]):
        if args.corpus == "toy":
            data, src, tgt, split, name = args.project / f"toy-corpus-seed{seed}", "en", "fr", "test", f"toy-seed{seed}"
            if not (data / "corpus.json").is_file():
                yololab(["translate", "synth", "--out", str(data), "--seed", str(seed)])
        else:
            data, src, tgt, split, name = MULTI30K, "en", args.tgt_lang, "test_2016_flickr", f"multi30k-en-{args.tgt_lang}"
        if args.weights:  # beam-5 translations of the test split by `translate eval`
            run_dir = args.project / f"eval-{name}"
            yololab(["translate", "eval", "--weights", str(args.weights), "--data", str(data), "--src-lang", src,
                     "--tgt-lang", tgt, "--split", split, "--out", str(run_dir), "--overwrite"])
        else:
            run_dir = train(["--data", str(data), "--src-lang", src, "--tgt-lang", tgt], budget, args.project, name,
                            [f"seed={seed}", *args.train_args.split()])
        rows.append((name, run_dir, score(run_dir, data, src, tgt, split), curve(run_dir)))
    after = uptime()

    print(f"Machine: {machine()}.\nLoad: `{before}` before, `{after}` after.\n")
    budget = ("existing checkpoint" if args.weights else f"{args.epochs} epochs" if args.epochs
              else f"{args.minutes:g} training minutes")
    extra = args.train_args.split()
    beam = "5" if args.weights or "--test-beam" not in extra else extra[extra.index("--test-beam") + 1]
    print(f"| run ({budget}) | test BLEU, best.pt, beam {beam} | lowercased | chrF | greedy BLEU |\n"
          f"|---|---:|---:|---:|---:|")
    for name, _, s, _ in rows:
        print(f"| {name} | {s['bleu']:.2f} | {s['bleu_lc']:.2f} | {s['chrf']:.2f} | {s['greedy']:.2f} |")
    print(f"\nsacrebleu signature (cased): `{rows[0][2]['signature']}`; greedy: bf16 decoding of the best epoch's "
          f"EMA weights during training\n")
    for name, run_dir, _, points in rows:
        print(f"- {name} ({run_dir}): {points}")


if __name__ == "__main__":
    main()
