"""What ``yololab val`` shows and leaves: the table (as ``ultralytics val`` prints it) and the run folder:
metrics.json, metrics.csv, predictions.json, report.md embedding the plots."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

from yololab.fileio import write_text_atomic

COCO_ROWS = ("mAP50-95", "mAP50", "mAP75", "mAP_small", "mAP_medium", "mAP_large", "AR1", "AR10", "AR100")
TABLE_COLUMNS = ("Class", "Images", "Instances", "P", "R", "mAP50", "mAP50-95")


def table_rows(result) -> list[list]:
    """The 'all' row, then one per class: Class, Images, Instances, P, R, mAP50, mAP50-95."""
    m = result.metrics
    rows = [["all", len(result.ground_truth["images"]), sum(r["instances"] for r in result.per_class),
             m["precision"], m["recall"], m["mAP50"], m["mAP50-95"]]]
    rows += [[r["name"], r["images"], r["instances"], r["precision"], r["recall"], r["AP50"], r["AP50-95"]]
             for r in result.per_class]
    return rows


def format_table(result) -> str:
    lines = [f"{TABLE_COLUMNS[0]:>22}" + "".join(f"{c:>11}" for c in TABLE_COLUMNS[1:])]
    for name, images, instances, *values in table_rows(result):
        lines.append(f"{name:>22}{images:>11}{instances:>11}" + "".join(f"{v:>11.3g}" for v in values))
    return "\n".join(lines)


def print_table(result) -> None:
    m, s = result.metrics, result.speed_ms
    print(format_table(result))
    print("COCO: " + ", ".join(f"{k} {m[k]:.4f}" for k in COCO_ROWS))
    print(f"P, R, F1 {m['precision']:.3f}, {m['recall']:.3f}, {m['f1']:.3f} at confidence {m['best_conf']:.3f}; "
          f"fitness {m['fitness']:.4f}")
    print(f"Speed: {s['preprocess']:.1f} ms preprocess, {s['inference']:.1f} ms inference, "
          f"{s['postprocess']:.1f} ms postprocess per image")


def write_val_outputs(run_dir: Path, result, args: dict, compare: dict | None, compare_note: str,
                      save_json: bool = True) -> list[Path]:
    """metrics.json (all numbers, settings), metrics.csv (the table), predictions.json, report.md."""
    run_dir.mkdir(parents=True, exist_ok=True)
    settings = {k: str(v) if isinstance(v, Path) else v for k, v in args.items()
                if k not in ("func", "_parser", "debug")}
    payload = {"metrics": result.metrics, "speed_ms": result.speed_ms, "per_class": result.per_class,
               "settings": settings}
    if compare is not None:
        payload["ultralytics_style"] = compare
    written = [write_text_atomic(run_dir / "metrics.json", json.dumps(payload, indent=2) + "\n")]
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(TABLE_COLUMNS)
    w.writerows([name, images, inst, *(f"{v:.6f}" for v in values)] for name, images, inst, *values
                in table_rows(result))
    written.append(write_text_atomic(run_dir / "metrics.csv", buf.getvalue()))
    if save_json:
        written.append(write_text_atomic(run_dir / "predictions.json", json.dumps(result.predictions) + "\n"))
    written.append(write_text_atomic(run_dir / "report.md", report_markdown(run_dir, result, settings, compare,
                                                                            compare_note)))
    return written + result.plots


def report_markdown(run_dir: Path, result, settings: dict, compare: dict | None, compare_note: str) -> str:
    m = result.metrics
    setup = (f"Data `{settings.get('data', '')}`, split `{settings.get('split', '')}`, imgsz {settings.get('imgsz')}, "
             f"conf {settings.get('conf')}, NMS IoU {settings.get('iou')}, max_det {settings.get('max_det')}.")
    lines = [f"# Validation: {settings.get('weights', '')}", "", setup, "",
             "## COCO protocol (faster-coco-eval = pycocotools)", "", "| metric | value |", "|---|---|"]
    lines += [f"| {k} | {m[k]:.4f} |" for k in COCO_ROWS]
    prf = (f"Precision {m['precision']:.4f}, recall {m['recall']:.4f}, F1 {m['f1']:.4f} at confidence "
           f"{m['best_conf']:.3f} (where the class-mean F1 peaks); fitness 0.1 mAP50 + 0.9 mAP50-95 = "
           f"{m['fitness']:.4f}.")
    lines += ["", prf, "", "## Per class", "",
              "| " + " | ".join(TABLE_COLUMNS) + " |", "|---" * len(TABLE_COLUMNS) + "|"]
    lines += ["| " + " | ".join([str(name), str(images), str(inst), *(f"{v:.4f}" for v in values)]) + " |"
              for name, images, inst, *values in table_rows(result)]
    s = result.speed_ms
    lines += ["", (f"Speed per image: {s['preprocess']:.1f} ms preprocess, {s['inference']:.1f} ms inference, "
                   f"{s['postprocess']:.1f} ms postprocess.")]
    if compare is not None:
        lines += ["", "## Ultralytics-style mAP on the same detections", "", "| | mAP50-95 | mAP50 | mAP75 |",
                  "|---|---|---|---|"]
        lines += [f"| {who} | {c['mAP50-95']:.4f} | {c['mAP50']:.4f} | {c['mAP75']:.4f} |"
                  for who, c in (("COCO (ours)", m), ("Ultralytics", compare))]
        lines += ["", compare_note]
    if result.plots:
        lines += ["", "## Plots", ""]
        lines += [f"![{p.stem}]({p.relative_to(run_dir).as_posix()})" for p in result.plots]
    return "\n".join(lines) + "\n"
