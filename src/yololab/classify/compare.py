"""One comparison table from several classification runs (``yololab classify compare RUN ...``).

Runs named ``<recipe>-s<seed>`` (as scripts/run.sh names them) are grouped by recipe; each recipe row
gives the mean over its seeds and the spread (max - min), so a difference between recipes can be read
against the noise between seeds. Everything comes from the run folders: ``eval.json`` (best.pt on
validation, written at the end of training), ``results.csv`` and ``args.yaml``.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

import yaml

from yololab.errors import DataError

SEED_SUFFIX = re.compile(r"[-_]s(?:eed)?(\d+)$")


@dataclass
class RunResult:
    name: str
    recipe: str
    seed: int
    metrics: dict[str, float]
    epochs: int
    train_minutes: float


def read_run(run: Path) -> RunResult:
    run = Path(run)
    ev, args, csv_path = run / "eval.json", run / "args.yaml", run / "results.csv"
    for f in (ev, args, csv_path):
        if not f.is_file():
            raise DataError(f"{run}: no {f.name}; not a finished `yololab classify train` run")
    metrics = json.loads(ev.read_text(encoding="utf-8"))
    cfg = yaml.safe_load(args.read_text(encoding="utf-8")) or {}
    lines = [ln.split(",") for ln in csv_path.read_text(encoding="utf-8").splitlines() if ln.strip()]
    header, rows = lines[0], lines[1:]
    seconds = sum(float(r[header.index("epoch_time")]) for r in rows) if "epoch_time" in header else float("nan")
    m = SEED_SUFFIX.search(run.name)
    return RunResult(run.name, run.name[:m.start()] if m else run.name, int(cfg.get("seed", m.group(1) if m else 0)),
                     {k: v for k, v in metrics.items() if isinstance(v, (int, float))}, len(rows), seconds / 60)


def compare_markdown(runs: list[RunResult]) -> str:
    """Per-run rows, then per-recipe mean and spread, as Markdown."""
    keys = [k for k in ("top1", "top5", "f1", "loss", "pointing_game") if all(k in r.metrics for r in runs)]
    lines = ["| run | seed | epochs | " + " | ".join(keys) + " | train min |",
             "|---|---:|---:|" + "---:|" * (len(keys) + 1)]
    for r in runs:
        lines.append(f"| {r.name} | {r.seed} | {r.epochs} | " + " | ".join(f"{r.metrics[k]:.4f}" for k in keys)
                     + f" | {r.train_minutes:.1f} |")
    recipes: dict[str, list[RunResult]] = {}
    for r in runs:
        recipes.setdefault(r.recipe, []).append(r)
    lines += ["", "| recipe | seeds | " + " | ".join(f"{k} mean (spread)" for k in keys) + " |",
              "|---|---:|" + "---:|" * len(keys)]
    for recipe, rs in recipes.items():
        cells = []
        for k in keys:
            vals = [r.metrics[k] for r in rs]
            cells.append(f"{sum(vals) / len(vals):.4f} ({max(vals) - min(vals):.4f})")
        lines.append(f"| {recipe} | {len(rs)} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"
