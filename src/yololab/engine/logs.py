"""What a run leaves for a person: args.yaml, results.csv, TensorBoard events, results.png, report.md.

Every file is rewritten whole and atomically through :mod:`yololab.fileio` (results.csv from the
history kept in the checkpoint, so a resumed run's CSV is exactly the uninterrupted one's), except the
TensorBoard event files, which TensorBoard's writer appends to (on resume it purges the epochs being
redone).
"""

from __future__ import annotations

import csv
import io
import math
from pathlib import Path

import yaml

from yololab.fileio import atomic_path, write_text_atomic


def write_args(run_dir: Path, config: dict) -> None:
    write_text_atomic(run_dir / "args.yaml", yaml.safe_dump(config, sort_keys=False))


def columns(history: list[dict]) -> list[str]:
    """Every key of every row, in order of first appearance."""
    return list(dict.fromkeys(k for row in history for k in row))


def write_results_csv(run_dir: Path, history: list[dict]) -> None:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=columns(history), lineterminator="\n")
    writer.writeheader()
    for row in history:
        writer.writerow({k: (f"{v:.6g}" if isinstance(v, float) else v) for k, v in row.items()})
    write_text_atomic(run_dir / "results.csv", buf.getvalue())


class TensorBoard:
    """Epoch-level scalars (one point per results.csv cell) in ``run_dir``'s event files."""

    def __init__(self, run_dir: Path, purge_epoch: int | None = None):
        from torch.utils.tensorboard import SummaryWriter

        self.writer = SummaryWriter(str(run_dir), purge_step=purge_epoch)

    def log(self, row: dict) -> None:
        for key, value in row.items():
            if key != "epoch" and isinstance(value, (int, float)) and math.isfinite(value):
                self.writer.add_scalar(key, value, row["epoch"])
        self.writer.flush()

    def close(self) -> None:
        self.writer.close()


def plot_results(run_dir: Path, history: list[dict]) -> Path:
    """results.png: every results.csv column against the epoch, one small panel each."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    keys = [k for k in columns(history) if k != "epoch"]
    ncols = min(5, max(len(keys), 1))
    nrows = max(1, math.ceil(len(keys) / ncols))
    fig, axes = plt.subplots(nrows, ncols, figsize=(3.2 * ncols, 2.6 * nrows), squeeze=False)
    for ax in axes.flat[len(keys):]:
        ax.axis("off")
    for ax, key in zip(axes.flat, keys):
        points = [(r["epoch"], r[key]) for r in history if isinstance(r.get(key), (int, float))]
        if points:
            ax.plot(*zip(*points), marker=".", linewidth=1.5)
        ax.set_title(key, fontsize=9)
        ax.tick_params(labelsize=7)
        ax.grid(alpha=0.3)
    fig.supxlabel("epoch", fontsize=9)
    fig.tight_layout()
    path = run_dir / "results.png"
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=110)
    plt.close(fig)
    return path


def _table(rows: list[tuple[str, object]], header: tuple[str, str]) -> str:
    lines = [f"| {header[0]} | {header[1]} |", "|---|---|"]
    lines += [f"| {k} | {f'{v:.6g}' if isinstance(v, float) else v} |" for k, v in rows]
    return "\n".join(lines)


def write_report(run_dir: Path, title: str, config: dict, hardware: dict, summary: dict, final: dict,
                 plots: list[Path], task_section: str) -> Path:
    """report.md: what ran (settings, machine, time), what came out (metrics), then the task's section."""
    hours, rest = divmod(summary["wall_time_s"], 3600)
    wall = f"{int(hours)} h {rest / 60:.1f} min" if hours else f"{rest / 60:.1f} min ({summary['wall_time_s']:.0f} s)"
    parts = [
        f"# {title}",
        "",
        f"Run folder `{run_dir}`: {summary['epochs_done']} epoch(s), {summary['steps']} optimizer steps, "
        f"wall time {wall}; stopped because: {summary['stop_reason']}. "
        f"Best fitness {summary['best_fitness']:.6g} at epoch {summary['best_epoch']}.",
        "",
        "## Final metrics",
        "",
        _table(list(final.items()), ("metric", "value")),
        "",
        "## Hardware",
        "",
        _table(list(hardware.items()), ("", "")),
        "",
        "## Settings",
        "",
        _table(list(config.items()), ("setting", "value")),
        "",
        "## Training curves",
        "",
    ]
    parts += [f"![{p.stem}]({p.relative_to(run_dir) if p.is_relative_to(run_dir) else p})" for p in plots]
    if task_section:
        parts += ["", task_section.strip()]
    path = run_dir / "report.md"
    write_text_atomic(path, "\n".join(parts) + "\n")
    return path
