"""The image-classification task for the training engine (``yololab classify train``).

The engine owns the loop (optimizer, warmup + schedule, autocast, EMA, checkpoints, resume, logs); this
file says what is particular to classification: the ResNet, the data and its augmentation, the loss
(cross-entropy with optional label smoothing, on hard or MixUp/CutMix soft targets, in float32), the
validation metrics (top-1 is the fitness that picks best.pt) and, at the end, the evaluation of best.pt
with the pointing game and the figures.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from yololab.classify.data import AugmentConfig, ClassifyData, MixCollate, load_data
from yololab.classify.evaluate import (
    EvalResult,
    _inputs,
    evaluate,
    full_evaluation,
    report_markdown,
)
from yololab.classify.registry import build_classifier, load_classifier
from yololab.engine import Task, TrainConfig
from yololab.engine.data import epoch_loader
from yololab.errors import WeightsError
from yololab.fileio import write_text_atomic


@dataclass
class ClassifyOptions:
    """Everything the task needs besides the engine's settings (saved in checkpoints, restored on resume)."""

    data: str = ""
    model: str = "resnet18-cifar"
    width: int = 64
    imgsz: int | None = None
    channels: int = 3
    pad: int = 4
    fliplr: float = 0.5
    auto_augment: str = "none"
    mixup: float = 0.0
    cutmix: float = 0.0
    mix_prob: float = 1.0
    label_smoothing: float = 0.0
    weights: str | None = None
    cam_layer: str | None = None
    val_batch: int = 256
    figures: bool = True  # the end-of-run figures and pointing game (off: best.pt's metrics only)

    def augment(self) -> AugmentConfig:
        return AugmentConfig(self.pad, self.fliplr, self.auto_augment, self.mixup, self.cutmix, self.mix_prob)


class ClassifyTask(Task):
    name = "classify"

    def __init__(self, cfg: TrainConfig, **options):
        super().__init__(cfg)
        self.opts = ClassifyOptions(**options)
        self._data: ClassifyData | None = None
        self.final: tuple[EvalResult, list[Path]] | None = None

    # ------------------------------------------------------------------ data
    @property
    def data(self) -> ClassifyData:
        if self._data is None:  # loaded on first use: on resume the options come from the checkpoint first
            self._data = load_data(self.opts.data, self.opts.imgsz, self.opts.channels)
        return self._data

    def train_loader(self, epoch: int):
        o, key = self.opts, (self.cfg.seed, epoch)
        dataset = self.data.dataset("train", o.augment())
        dataset.seed = key  # augmentation drawn from (seed, epoch, index): the same for any worker count
        collate = MixCollate(self.data.num_classes, o.mixup, o.cutmix, o.mix_prob, seed=key)
        return epoch_loader(dataset, self.cfg.batch, epoch, seed=self.cfg.seed, shuffle=True,
                            workers=self.cfg.workers, collate_fn=collate, drop_last=True)

    # ------------------------------------------------------------------ model
    def build_model(self) -> nn.Module:
        o, d = self.opts, self.data
        model = build_classifier(o.model, num_classes=d.num_classes, width=o.width, in_channels=o.channels)
        if o.weights:
            src, meta = load_classifier(o.weights)
            if src.num_classes != d.num_classes or type(src.layer1[0]) is not type(model.layer1[0]):
                raise WeightsError(f"{o.weights}: a {meta['model_name']} checkpoint for {src.num_classes} classes; "
                                   f"this run trains {o.model} on {d.num_classes} classes")
            try:
                model.load_state_dict(src.state_dict())
            except RuntimeError as e:
                raise WeightsError(f"{o.weights}: does not fit {o.model} (width {o.width}, {o.channels} channels): "
                                   f"{str(e).splitlines()[1].strip()[:200]}") from None
        return model

    def checkpoint_meta(self) -> dict:
        d = self.data
        return {"model_name": self.opts.model, "num_classes": d.num_classes,
                "model_kwargs": {"width": self.opts.width, "in_channels": self.opts.channels},
                "names": d.names, "imgsz": d.imgsz, "mean": d.mean, "std": d.std, "options": asdict(self.opts)}

    def load_checkpoint_meta(self, meta: dict) -> None:
        if meta.get("options"):
            self.opts = ClassifyOptions(**meta["options"])
            self._data = None

    # ------------------------------------------------------------------ steps
    def loss(self, model: nn.Module, batch) -> tuple[torch.Tensor, dict]:
        x, y, _ = batch
        x, y = _inputs(x, model, self.device), y.to(self.device, non_blocking=True)
        logits = model(x)
        loss = F.cross_entropy(logits.float(), y, label_smoothing=self.opts.label_smoothing)
        hard = y if y.ndim == 1 else y.argmax(1)  # a mixed batch: the dominant class
        top1 = (logits.detach().argmax(1) == hard).float().mean()
        return loss, {"loss": loss.detach(), "top1": top1}

    def validate(self, model: nn.Module) -> dict[str, float]:
        r = evaluate(model, self.data.dataset("val"), self.opts.val_batch, self.cfg.workers, self.device)
        return {**r.summary(), "fitness": r.metrics.top1}

    # ------------------------------------------------------------------ end of training
    def plots(self, run_dir: Path, trainer) -> list[Path]:
        """Evaluate best.pt (else last.pt) on the validation split: eval.json, and with ``figures`` the
        pointing game and every figure."""
        weights = run_dir / "weights" / "best.pt"
        if not weights.is_file():
            weights = run_dir / "weights" / "last.pt"
        model, _ = load_classifier(weights)
        model.to(self.device)
        if self.opts.figures:
            self.final = full_evaluation(model, self.data, run_dir, self.opts.val_batch, self.cfg.workers,
                                         self.device, self.opts.cam_layer, title=run_dir.name,
                                         results_csv=run_dir / "results.csv")
        else:
            self.final = (evaluate(model, self.data.dataset("val"), self.opts.val_batch, self.cfg.workers,
                                   self.device), [])
        summary = {"weights": weights.name, **self.final[0].to_json()}
        write_text_atomic(run_dir / "eval.json", json.dumps(summary, indent=2) + "\n")
        return self.final[1]

    def report(self, run_dir: Path, trainer) -> str:
        if self.final is None:
            return ""
        result, _ = self.final
        return report_markdown(result, self.data.names, [], run_dir,
                               heading=f"## Classification: {Path(self.opts.data).name}, best.pt on validation")
