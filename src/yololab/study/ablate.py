"""Ablations (``yololab ablate --config configs/ablations/NAME.yaml``): a grid of variants, trained alike.

A config names the data, the budget (image size, epochs, seeds) and the variants. Each variant is the baseline
model parts (``block``, ``pool``, ``head`` of :mod:`yololab.models.ablation`) and the shared training settings,
with its own overrides of either. Every variant x seed trains through ``yololab train``'s code
(:class:`~yololab.detect.task.DetectionTask` on the engine) and best.pt is validated (COCO protocol). Then
every best.pt is timed on the CPU, all in one interleaved loop so that every model sees the same load, and its
parameters and GFLOPs counted, by the ``measure`` function the caller passes (the CLI passes
``yololab.deploy``'s fp32 path and ``analysis.summary.trace_model``, which sit on this module's layer).

Outputs, in the run folder: ``results.csv`` (one row per variant x seed), ``table.md`` (per variant the mean and
the spread over seeds, and whether the difference from the baseline, the first variant, exceeds the spread:
:func:`exceeds_spread`), ``map_vs_latency.png`` and ``report.md``. Trained runs live in ``<project>/trained/``,
named by variant, seed and a fingerprint of every setting: a run that finished is reused by any ablation that
asks for exactly the same training (the baseline of several configs, or a rerun after an interruption); an
unfinished one is trained again. The shapes set is synthesized once into ``<project>/shapes-<train>-<val>-<imgsz>``.
"""

from __future__ import annotations

import csv
import dataclasses
import difflib
import hashlib
import io
import json
import os
import shutil
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from yololab.errors import ConfigError
from yololab.fileio import read_yaml
from yololab.models.registry import ABLATION_PARTS as MODEL_PARTS

TOP_KEYS = ("description", "data", "shapes", "imgsz", "epochs", "seeds", "model", "train", "variants")
VARIANT_KEYS = ("name", "model", "train")
SHAPES_KEYS = ("train", "val")
# settings a config may not give under train: the runner sets them (run folders, epochs and seed are top-level)
RUNNER_OWNED = ("project", "name", "exist_ok", "resume", "epochs", "seed")
CSV_FIELDS = ("variant", "seed", "model", "mAP50-95", "mAP50", "latency_ms", "params", "gflops", "train_s",
              "epochs", "run")
Measure = Callable[[list, int], list[dict]]  # (models, imgsz) -> per model {"latency_ms", "params", "gflops"}


@dataclass
class Variant:
    name: str
    model: dict[str, str]  # block, pool, head
    train: dict  # engine settings and loss / augmentation hyperparameters, baseline's merged with the overrides

    @property
    def model_name(self) -> str:
        from yololab.models.ablation import variant_name

        return variant_name(**self.model)


@dataclass
class AblationConfig:
    path: Path
    description: str
    data: str  # "shapes" or a data.yaml path
    shapes: dict[str, int]
    imgsz: int
    epochs: int
    seeds: list[int]
    variants: list[Variant] = field(default_factory=list)


# ------------------------------------------------------------------------------------------------ the config


def _check_keys(path: Path, mapping, allowed, where: str) -> dict:
    if not isinstance(mapping, dict):
        raise ConfigError(f"{path}: {where + ': ' if where else ''}expected a mapping of key: value, got "
                          f"{type(mapping).__name__}")
    for key in mapping:
        if where.endswith("train") and key in RUNNER_OWNED:
            raise ConfigError(f"{path}: key '{where}.{key}' is not a training setting here: epochs and seeds are "
                              "top-level keys, and the run folders come from --project")
        if key not in allowed:
            close = difflib.get_close_matches(str(key), list(allowed), n=1, cutoff=0.6)
            hint = f"did you mean {close[0]!r}?" if close else f"expected one of {', '.join(allowed)}"
            raise ConfigError(f"{path}: unknown key '{where + '.' if where else ''}{key}'; {hint}")
    return mapping


def _train_keys() -> tuple[str, ...]:
    from yololab.detect.task import AUG_KEYS, LOSS_KEYS
    from yololab.engine.config import FIELDS

    return tuple(k for k in FIELDS if k not in RUNNER_OWNED) + LOSS_KEYS + AUG_KEYS


def check_train_settings(path: Path, settings: dict, where: str) -> dict:
    """Engine settings converted and checked as ``yololab train`` checks them; loss and augmentation values
    checked by their dataclasses. Returns the converted settings."""
    from yololab.data.augment import AugmentConfig
    from yololab.detect.loss import LossHyp
    from yololab.detect.task import AUG_KEYS, LOSS_KEYS
    from yololab.engine.args import _converter
    from yololab.engine.config import FIELDS, TrainConfig

    _check_keys(path, settings, _train_keys(), where)
    out = {}
    for key, value in settings.items():
        if key in FIELDS:
            try:
                out[key] = _converter(key)[0]("none" if value is None else str(value))
            except ValueError as e:
                raise ConfigError(f"{path}: {where}.{key}={value!r}: {e}") from None
        elif isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{path}: {where}.{key}={value!r}: expected a number")
        else:
            out[key] = value
    try:
        TrainConfig(**{k: v for k, v in out.items() if k in FIELDS}).validate()
        AugmentConfig(**{k: v for k, v in out.items() if k in AUG_KEYS})
        LossHyp(**{k: v for k, v in out.items() if k in LOSS_KEYS})
    except (ConfigError, ValueError, TypeError) as e:
        raise ConfigError(f"{path}: {where}: {e}") from None
    return out


def _model_parts(path: Path, parts, where: str) -> dict:
    _check_keys(path, parts, tuple(MODEL_PARTS), where)
    for key, value in parts.items():
        if value not in MODEL_PARTS[key]:
            raise ConfigError(f"{path}: {where}.{key}={value!r}: expected one of {', '.join(MODEL_PARTS[key])}")
    return dict(parts)


def _positive_int(path: Path, value, key: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigError(f"{path}: {key}={value!r}: expected a positive integer")
    return value


def load_config(path: str | os.PathLike) -> AblationConfig:
    """Read and check an ablation config; every problem is a :class:`ConfigError` naming the file and key."""
    path = Path(path)
    raw = read_yaml(path, ConfigError)
    raw = _check_keys(path, {} if raw is None else raw, TOP_KEYS, "")
    if "variants" not in raw:
        raise ConfigError(f"{path}: missing key 'variants' (a list of variants, each a name and overrides)")
    shapes = {"train": 400, "val": 160, **_check_keys(path, raw.get("shapes") or {}, SHAPES_KEYS, "shapes")}
    for key, value in shapes.items():
        _positive_int(path, value, f"shapes.{key}")
    imgsz = _positive_int(path, raw.get("imgsz", 256), "imgsz")
    if imgsz % 32:
        raise ConfigError(f"{path}: imgsz={imgsz}: expected a multiple of 32 (the models' largest stride)")
    seeds = raw.get("seeds", [0, 1])
    if (not isinstance(seeds, list) or len(seeds) < 2 or len(set(map(str, seeds))) != len(seeds)
            or any(isinstance(s, bool) or not isinstance(s, int) or s < 0 for s in seeds)):
        raise ConfigError(f"{path}: seeds={seeds!r}: expected a list of at least 2 different integers >= 0 "
                          "(the spread between seeds is what a difference is judged against)")
    base_model = {"block": "c2f", "pool": "sppf", "head": "af", **_model_parts(path, raw.get("model") or {}, "model")}
    base_train = check_train_settings(path, raw.get("train") or {}, "train")
    variants_raw = raw["variants"]
    if not isinstance(variants_raw, list) or len(variants_raw) < 2:
        raise ConfigError(f"{path}: variants: expected a list of at least 2 variants (the first is the baseline)")
    variants = []
    for i, v in enumerate(variants_raw):
        where = f"variants[{i}]"
        _check_keys(path, v, VARIANT_KEYS, where)
        name = str(v.get("name", "")).strip()
        if not name or not all(c.isalnum() or c in "-_.+" for c in name):
            raise ConfigError(f"{path}: {where}.name={v.get('name')!r}: expected a name of letters, digits and -_.+")
        if any(name == other.name for other in variants):
            raise ConfigError(f"{path}: {where}.name={name!r}: two variants have this name")
        model = {**base_model, **_model_parts(path, v.get("model") or {}, f"{where}.model")}
        train = {**base_train, **check_train_settings(path, v.get("train") or {}, f"{where}.train")}
        variants.append(Variant(name, model, train))
    data = str(raw.get("data", "shapes"))
    return AblationConfig(path, str(raw.get("description", "")).strip(), data, shapes, imgsz,
                          _positive_int(path, raw.get("epochs", 8), "epochs"), list(seeds), variants)


# ------------------------------------------------------------------------------------------------ the spread rule


def spread(values: list[float]) -> float:
    """The seed-to-seed spread of one variant: the range, max - min."""
    return max(values) - min(values)


def exceeds_spread(values: list[float], baseline: list[float]) -> bool:
    """True when the difference of the means is larger than the larger of the two seed-to-seed ranges:
    ``|mean(values) - mean(baseline)| > max(range(values), range(baseline))``.

    With two seeds this is a screen, not a significance test: a difference it passes was not reached by
    changing the seed alone, in either variant."""
    return abs(statistics.fmean(values) - statistics.fmean(baseline)) > max(spread(values), spread(baseline))


# ------------------------------------------------------------------------------------------------ running


def fingerprint(settings: dict) -> str:
    """A short hash of every setting of one training run (its folder name carries it)."""
    return hashlib.sha1(json.dumps(settings, sort_keys=True, default=str).encode()).hexdigest()[:10]


def prepare_data(cfg: AblationConfig, project: Path, quiet: bool) -> Path:
    """The data.yaml to train on: the config's, or the shapes set synthesized once into ``project``."""
    if cfg.data != "shapes":
        from yololab.data.yolo import load_data_yaml

        load_data_yaml(cfg.data)  # a missing or malformed data.yaml fails here, with its own message
        return Path(cfg.data).absolute()
    from yololab.data.synthetic import MARKER, synth_shapes

    out = (project / f"shapes-{cfg.shapes['train']}-{cfg.shapes['val']}-{cfg.imgsz}").absolute()
    marker = out / MARKER
    want = {"train": cfg.shapes["train"], "val": cfg.shapes["val"], "imgsz": cfg.imgsz, "seed": 0}
    if (out / "data.yaml").is_file() and marker.is_file():
        made = json.loads(marker.read_text(encoding="utf-8"))
        if {k: made.get(k) for k in want} == want and all(
                len(list((out / "images" / s).glob("*.jpg"))) == want[s] for s in ("train", "val")):
            return out / "data.yaml"
    return synth_shapes(out, train=want["train"], val=want["val"], imgsz=cfg.imgsz, seed=0, progress=not quiet,
                        overwrite=marker.is_file())


def train_one(variant: Variant, seed: int, cfg: AblationConfig, data: Path, trained: Path, verbose: bool) -> dict:
    """Train (or reuse) one variant x seed; returns its results row (without the latency and cost)."""
    from yololab.detect.task import AUG_KEYS, LOSS_KEYS, DetectionTask
    from yololab.engine import TrainConfig, Trainer

    settings = {"data": str(data), "model": variant.model_name, "imgsz": cfg.imgsz, "epochs": cfg.epochs,
                "seed": seed, "train": variant.train}
    run = trained / f"{variant.model_name}-s{seed}-{fingerprint(settings)}"  # no variant name: configs share runs
    done = run / "ablation.json"
    if done.is_file():
        row = json.loads(done.read_text(encoding="utf-8"))
        if row.get("settings") == json.loads(json.dumps(settings, default=str)):
            return {**row["row"], "variant": variant.name, "run": str(run), "reused": True}
    if run.exists():  # an interrupted run of ours: train it again from the start
        shutil.rmtree(run)
    engine = {k: v for k, v in variant.train.items() if k not in LOSS_KEYS + AUG_KEYS}
    hyp = {k: v for k, v in variant.train.items() if k in LOSS_KEYS + AUG_KEYS}
    tcfg = TrainConfig(**{"optimizer": "auto", "nbs": 64, "workers": 0, **engine, "project": str(trained),
                          "name": run.name, "exist_ok": True, "epochs": cfg.epochs, "seed": seed}).validate()
    task = DetectionTask(tcfg, data=data, model=variant.model_name, imgsz=cfg.imgsz, hyp=hyp, verbose=verbose)
    summary = Trainer(task, tcfg).fit()
    final = getattr(task, "final", None)
    metrics = final.metrics if final is not None else {k.split("/")[-1]: v for k, v in summary["final_metrics"].items()}
    row = {"variant": variant.name, "seed": seed, "model": variant.model_name,
           "mAP50-95": float(metrics["mAP50-95"]), "mAP50": float(metrics["mAP50"]),
           "train_s": round(float(summary["train_time_s"]), 1), "epochs": int(summary["epochs_done"]),
           "run": str(run)}
    from yololab.fileio import write_text_atomic

    write_text_atomic(done, json.dumps({"settings": settings, "row": row}, indent=2, default=str) + "\n")
    return row


def run_ablation(cfg: AblationConfig, out: Path, measure: Measure, project: Path, quiet: bool = False,
                 command: str = "") -> list[dict]:
    """Train every variant x seed (reusing finished runs), measure every best.pt, then write the tables, the plot
    and report.md into ``out``; returns the result rows."""
    from yololab.checkpoint.load import build_model
    from yololab.data.yolo import load_data_yaml
    from yololab.progress import progress

    t0, load_before = time.perf_counter(), os.getloadavg()
    data = prepare_data(cfg, project, quiet)
    trained = (project / "trained").absolute()
    rows = []
    bar = progress(total=len(cfg.variants) * len(cfg.seeds), desc="ablate", unit="run", enabled=not quiet)
    for variant in cfg.variants:
        for seed in cfg.seeds:
            bar.set_postfix_str(f"{variant.name} seed {seed}")
            rows.append(train_one(variant, seed, cfg, data, trained, verbose=not quiet))
            bar.update(1)
    bar.close()
    nc = load_data_yaml(data).num_classes
    models = [build_model(r["model"], num_classes=nc, weights=Path(r["run"]) / "weights" / "best.pt") for r in rows]
    for row, cost in zip(rows, measure(models, cfg.imgsz)):
        row.update(latency_ms=float(cost["latency_ms"]), params=int(cost["params"]), gflops=float(cost["gflops"]))
    write_outputs(cfg, rows, out, data, command, time.perf_counter() - t0, load_before)
    return rows


# ------------------------------------------------------------------------------------------------ outputs


def summarize(cfg: AblationConfig, rows: list[dict]) -> list[dict]:
    """Per variant (config order): seed values, means, spreads, and the comparison with the baseline."""
    by_variant = {v.name: [r for r in rows if r["variant"] == v.name] for v in cfg.variants}
    base = by_variant[cfg.variants[0].name]
    out = []
    for v in cfg.variants:
        rs = by_variant[v.name]
        s = {"variant": v.name, "model": v.model_name, "seeds": len(rs), "changes": describe_changes(cfg, v)}
        for key in ("mAP50-95", "mAP50", "latency_ms"):
            vals, ref = [r[key] for r in rs], [r[key] for r in base]
            s[key] = {"values": vals, "mean": statistics.fmean(vals), "spread": spread(vals),
                      "diff": statistics.fmean(vals) - statistics.fmean(ref), "exceeds": exceeds_spread(vals, ref)}
        s["params"], s["gflops"] = rs[0]["params"], rs[0]["gflops"]
        s["train_s"] = statistics.fmean(r["train_s"] for r in rs)
        out.append(s)
    return out


def describe_changes(cfg: AblationConfig, v: Variant) -> str:
    """What a variant changes from the baseline (the first variant), in words."""
    base = cfg.variants[0]
    if v is base:
        return "baseline"
    diff = [f"{k} {v.model[k]}" for k in MODEL_PARTS if v.model[k] != base.model[k]]
    diff += [f"{k} {v.train.get(k)}" for k in sorted(set(v.train) | set(base.train)) if v.train.get(k) != base.train.get(k)]
    return ", ".join(diff) or "nothing (same settings as the baseline)"


def table_markdown(summary: list[dict]) -> str:
    """The per-variant table: mean (spread = max - min over seeds), difference from the baseline, and whether
    it exceeds the spread (:func:`exceeds_spread`)."""
    lines = ["| variant | changes | seeds | mAP50-95 mean (spread) | per seed | diff vs baseline | exceeds spread? "
             "| mAP50 mean (spread) | latency ms mean (spread) | latency diff exceeds spread? | params | GFLOPs "
             "| train s |",
             "|---|---|---:|---:|---|---:|---|---:|---:|---|---:|---:|---:|"]
    for i, s in enumerate(summary):
        m, m50, lat = s["mAP50-95"], s["mAP50"], s["latency_ms"]
        verdict = "-" if i == 0 else ("**yes**" if m["exceeds"] else "no")
        diff = "-" if i == 0 else f"{m['diff']:+.4f}"
        lat_verdict = "-" if i == 0 else (f"**yes** ({lat['diff']:+.2f} ms)" if lat["exceeds"] else "no")
        lines.append(
            f"| {s['variant']} | {s['changes']} | {s['seeds']} | {m['mean']:.4f} ({m['spread']:.4f}) | "
            f"{', '.join(f'{x:.4f}' for x in m['values'])} | {diff} | {verdict} | "
            f"{m50['mean']:.4f} ({m50['spread']:.4f}) | {lat['mean']:.2f} ({lat['spread']:.2f}) | {lat_verdict} | "
            f"{s['params']:,} | {s['gflops']:.2f} | {s['train_s']:.0f} |")
    return "\n".join(lines) + "\n"


def plot(summary: list[dict], title: str, path: Path) -> Path:
    """mAP50-95 against latency: each seed a faint dot, each variant its mean with bars over its seed range."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from yololab.fileio import atomic_path

    fig, ax = plt.subplots(figsize=(7, 4.5))
    for i, s in enumerate(summary):
        m, lat = s["mAP50-95"], s["latency_ms"]
        color = f"C{i % 10}"
        ax.scatter(lat["values"], [v * 100 for v in m["values"]], color=color, alpha=0.35, s=14)
        ax.errorbar(lat["mean"], m["mean"] * 100,
                    xerr=[[lat["mean"] - min(lat["values"])], [max(lat["values"]) - lat["mean"]]],
                    yerr=[[(m["mean"] - min(m["values"])) * 100], [(max(m["values"]) - m["mean"]) * 100]],
                    fmt="o", color=color, capsize=3, label=f"{s['variant']} ({s['model']})")
    ax.set_xlabel("CPU latency, batch 1, fp32 (ms)")
    ax.set_ylabel("mAP50-95 (%), COCO protocol")
    ax.set_title(title, fontsize=9)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=120, bbox_inches="tight")
    plt.close(fig)
    return path


def write_outputs(cfg: AblationConfig, rows: list[dict], out: Path, data: Path, command: str, wall_s: float,
                  load_before: tuple[float, float, float]) -> list[Path]:
    """results.csv, table.md, map_vs_latency.png and report.md into ``out``."""
    from yololab.fileio import write_text_atomic

    buf = io.StringIO()
    writer = csv.DictWriter(buf, CSV_FIELDS, extrasaction="ignore")
    writer.writeheader()
    writer.writerows(rows)
    summary = summarize(cfg, rows)
    table = table_markdown(summary)
    title = (f"{cfg.path.stem}: {cfg.epochs} epochs, {cfg.imgsz} px, seeds {', '.join(map(str, cfg.seeds))}; "
             f"bars: range over seeds")
    load_after = os.getloadavg()
    shown = {k: v for k, v in dataclasses.asdict(cfg.variants[0]).items() if k != "name"}
    report = [f"# Ablation: {cfg.path.name}", "", cfg.description, "",
              f"Command: `{command}`" if command else "", "",
              f"- data: `{data}`" + (f" (the synthetic shapes set, {cfg.shapes['train']} training / "
                                     f"{cfg.shapes['val']} validation images)" if cfg.data == "shapes" else ""),
              f"- budget: {cfg.epochs} epochs at {cfg.imgsz} px, seeds {', '.join(map(str, cfg.seeds))}",
              f"- baseline ({cfg.variants[0].name}): `{json.dumps(shown, default=str)}`",
              f"- machine: {_machine()}; load average (1, 5, 15 min) before "
              f"{', '.join(f'{v:.2f}' for v in load_before)}, after {', '.join(f'{v:.2f}' for v in load_after)}; "
              f"wall time {wall_s:.0f} s, with {sum(bool(r.get('reused')) for r in rows)} of {len(rows)} runs "
              "reused (trained earlier with the same settings)", "",
              "Spread = max - min over the seeds. A difference from the baseline *exceeds the spread* when "
              "|mean - baseline mean| > the larger of the two spreads (`yololab.study.ablate.exceeds_spread`). "
              "mAP50-95 and mAP50 are of best.pt on the validation split; latency is the network alone (fused, "
              "fp32, batch 1, median of timed calls, every model timed in turn in one loop after the training).", "", table, "![mAP against latency](map_vs_latency.png)", "",
              "## Runs", "", "| variant | seed | mAP50-95 | mAP50 | latency ms | train s | run folder |",
              "|---|---:|---:|---:|---:|---:|---|"]
    report += [f"| {r['variant']} | {r['seed']} | {r['mAP50-95']:.4f} | {r['mAP50']:.4f} | {r['latency_ms']:.2f} | "
               f"{r['train_s']:.0f} | `{r['run']}` |" for r in rows]
    return [write_text_atomic(out / "results.csv", buf.getvalue()),
            write_text_atomic(out / "table.md", table),
            plot(summary, title, out / "map_vs_latency.png"),
            write_text_atomic(out / "report.md", "\n".join(report) + "\n")]


def _machine() -> str:
    from yololab.engine.hardware import cpu_has_native_bf16, cpu_name

    return f"{cpu_name()}, {os.cpu_count()} logical CPUs, native bf16: {'yes' if cpu_has_native_bf16() else 'no'}"
