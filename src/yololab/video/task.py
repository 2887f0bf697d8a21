"""The video classification task for :mod:`yololab.engine`, and evaluation shared with ``yololab video eval``.

The engine owns the loop (optimizer, warmup + cosine, bf16 autocast, EMA, checkpoints, resume, CSV and
TensorBoard); this task says what a batch is (uint8 clips, normalized here on the device), what the
loss is (cross-entropy), and how a model is judged: video-level top-1 / top-5 after averaging the
softmax of ``val_clips x val_crops`` views per video, per-class precision / recall / F1, and the
pictures (normalized confusion matrix, curves, sample clips with predicted and true labels).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from yololab.engine import Task, TrainConfig
from yololab.errors import ConfigError, WeightsError
from yololab.video.datasets import ClipConfig, SkipEmpty, VideoClipDataset, collate_clips, read_video_list
from yololab.video.metrics import pair_accuracy, summarize
from yololab.video.models import build_video_model
from yololab.video.synth import MOTION_PAIRS

# (mean, std) of RGB in [0, 1]: the statistics the reference weights were trained with
NORMALIZATION = {
    "imagenet": ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225)),  # torchvision resnet18
    "kinetics": ((0.43216, 0.394666, 0.37645), (0.22803, 0.22145, 0.216989)),  # torchvision r3d_18 / r2plus1d_18
}


def normalization_of(model_name: str) -> str:
    return "kinetics" if model_name in ("r3d_18", "r2plus1d_18") else "imagenet"


def normalize(clips: torch.Tensor, layout: str, stats: str) -> torch.Tensor:
    """uint8 clips ``(..., T, C, H, W)`` or ``(..., C, T, H, W)`` -> float, standardized per channel."""
    mean, std = (torch.tensor(v, device=clips.device) for v in NORMALIZATION[stats])
    shape = (3, 1, 1) if layout == "TCHW" else (3, 1, 1, 1)
    return (clips.float() / 255 - mean.view(shape)) / std.view(shape)


@torch.no_grad()
def predict_views(model: nn.Module, loader, device, layout: str, stats: str):
    """Video-level probabilities: softmax averaged over each item's views. Returns (probs, labels, index)."""
    probs, labels, index = [], [], []
    for batch in loader:
        clips, y, idx = batch
        b, v = clips.shape[:2]
        logits = model(normalize(clips.to(device).flatten(0, 1), layout, stats))
        probs.append(logits.float().softmax(1).view(b, v, -1).mean(1).cpu())
        labels.append(y)
        index.append(idx)
    if not probs:
        return np.zeros((0, 0)), np.zeros(0, np.int64), np.zeros(0, np.int64)
    return torch.cat(probs).numpy(), torch.cat(labels).numpy(), torch.cat(index).numpy()


def eval_loader(dataset: VideoClipDataset, batch: int, workers: int):
    return SkipEmpty(torch.utils.data.DataLoader(dataset, batch_size=max(1, batch), shuffle=False,
                                                 num_workers=workers, collate_fn=collate_clips))


def metrics_of(probs: np.ndarray, labels: np.ndarray, classes: list[str]) -> dict:
    """``summarize`` plus the validation loss (negative log of the true class's averaged probability)."""
    out = summarize(probs, labels, classes)
    p_true = probs[np.arange(len(labels)), labels] if len(labels) else np.ones(0)
    out["loss"] = float(-np.log(np.clip(p_true, 1e-12, 1)).mean()) if len(labels) else 0.0
    out["pairs"] = pair_accuracy(probs, labels, classes, MOTION_PAIRS)
    return out


def metrics_markdown(m: dict, classes: list[str]) -> str:
    lines = [f"top-1 **{m['top1']:.4f}**, top-5 {m['top5']:.4f}, mean class accuracy {m['mean_class_acc']:.4f}, "
             f"macro F1 {m['macro_f1']:.4f}", "", "| class | precision | recall | F1 | videos |",
             "|---|---:|---:|---:|---:|"]
    for i, c in enumerate(classes):
        lines.append(f"| {c} | {m['precision'][i]:.3f} | {m['recall'][i]:.3f} | {m['f1'][i]:.3f} | "
                     f"{int(m['support'][i])} |")
    if m["pairs"]:
        lines += ["", "Classes that only the direction of motion separates (50 % = chance):", "",
                  "| pair | accuracy within the pair |", "|---|---:|"]
        lines += [f"| {k} | {v:.3f} |" for k, v in m["pairs"].items()]
    return "\n".join(lines) + "\n"


def write_eval_pictures(out: Path, m: dict, dataset: VideoClipDataset, probs, labels, index, n_samples: int = 8,
                        title: str = "") -> list[Path]:
    """confusion.png and samples.png (``n_samples`` videos spread over the set, first view of each)."""
    from yololab.video.plots import plot_confusion, plot_samples

    classes = dataset.classes
    paths = [plot_confusion(m["confusion"], classes, out / "confusion.png", title)]
    if len(index):
        picks = np.linspace(0, len(index) - 1, min(n_samples, len(index))).round().astype(int)
        clips = []
        for k in picks:
            views = dataset.load_views(int(index[k]))  # (V, T, H, W, 3) uint8
            clips.append(views[0])
        paths.append(plot_samples(clips, [classes[labels[k]] for k in picks],
                                  [classes[int(probs[k].argmax())] for k in picks], out / "samples.png"))
    return paths


class VideoTask(Task):
    """Video classification on a UCF-101 folder, class folders, frame folders or a Kinetics-style CSV."""

    name = "video"

    def __init__(self, cfg: TrainConfig, data: str, model: str = "cnn_lstm", model_options: dict | None = None,
                 weights: str | None = None, clip: ClipConfig | None = None, fold: int = 1, val_fraction: float = 0.2,
                 val_data: str | None = None, val_clips: int = 1, val_crops: int = 1):
        super().__init__(cfg)
        self.data, self.fold, self.val_fraction, self.val_data = str(data), fold, val_fraction, val_data
        self.model_name, self.model_options, self.weights = model, dict(model_options or {}), weights
        self.clip = clip or ClipConfig()
        self.val_clips, self.val_crops = val_clips, val_crops
        self.train_videos = read_video_list(data, True, fold, val_fraction, cfg.seed, val_data)
        self.classes = self.train_videos.classes
        self.val_videos = read_video_list(data, False, fold, val_fraction, cfg.seed, val_data, classes=self.classes)
        if not self.train_videos.samples:
            raise ConfigError(f"{data}: no training video found")
        self.last_eval = None

    # --------------------------------------------------------------------------- model and data
    def build_model(self) -> nn.Module:
        model = build_video_model(self.model_name, len(self.classes), self.weights, **self.model_options)
        self.clip.layout = model.input_layout
        need = getattr(model, "min_frames", 1)
        if self.clip.clip_len < need:
            raise ConfigError(f"--clip-len {self.clip.clip_len}: {self.model_name} needs at least {need} frames")
        return model

    def _dataset(self, train: bool) -> VideoClipDataset:
        videos = self.train_videos if train else self.val_videos
        return VideoClipDataset(videos, self.clip, train, self.val_clips, self.val_crops, seed=self.cfg.seed)

    def train_loader(self, epoch: int):
        from yololab.engine.data import epoch_loader

        ds = self._dataset(True)
        ds.set_epoch(epoch)
        return SkipEmpty(epoch_loader(ds, self.cfg.batch, epoch, seed=self.cfg.seed, workers=self.cfg.workers,
                                      collate_fn=collate_clips))

    def val_loader(self):
        if not self.val_videos.samples:
            return None
        views = self.val_clips * self.val_crops
        return eval_loader(self._dataset(False), self.cfg.batch // views, self.cfg.workers)

    # ------------------------------------------------------------------------------- train / val
    def loss(self, model, batch):
        clips, labels, _ = batch
        x = normalize(clips.to(self.device, non_blocking=True), self.clip.layout, normalization_of(self.model_name))
        logits = model(x)
        loss = F.cross_entropy(logits.float(), labels.to(self.device))
        acc = (logits.detach().argmax(1).cpu() == labels).float().mean()
        return loss, {"ce": loss.detach(), "acc": acc}

    def validate(self, model) -> dict[str, float]:
        loader = self.val_loader()
        if loader is None:
            return {}
        probs, labels, index = predict_views(model, loader, self.device, self.clip.layout,
                                             normalization_of(self.model_name))
        if not len(labels):
            return {}
        m = metrics_of(probs, labels, self.classes)
        self.last_eval = (m, probs, labels, index)
        out = {"fitness": m["top1"], "top1": m["top1"], "top5": m["top5"], "mean_class_acc": m["mean_class_acc"],
               "val/loss": m["loss"]}
        if m["pairs"]:
            out["pair_acc"] = float(np.mean(list(m["pairs"].values())))
        return out

    # ------------------------------------------------------------------------------ outputs
    def plots(self, run_dir: Path, trainer) -> list[Path]:
        from yololab.video.plots import plot_curves

        paths = [plot_curves(trainer.history, Path(run_dir) / "curves.png")]
        if self.last_eval is not None:
            m, probs, labels, index = self.last_eval
            paths += write_eval_pictures(Path(run_dir), m, self._dataset(False), probs, labels, index,
                                         title=f"{self.model_name}: validation, last epoch")
        return paths

    def report(self, run_dir: Path, trainer) -> str:
        head = (f"## Video classification\n\nmodel `{self.model_name}` {self.model_options or ''}, "
                f"{len(self.classes)} classes, {len(self.train_videos.samples)} training and "
                f"{len(self.val_videos.samples)} validation videos ({self.train_videos.source}); clips of "
                f"{self.clip.clip_len} frames ({self.clip.sampling} sampling) at {self.clip.size} px, "
                f"{self.val_clips} clip(s) x {self.val_crops} crop(s) per validation video.\n\n")
        if self.last_eval is None:
            return head
        return head + "Validation after the last epoch:\n\n" + metrics_markdown(self.last_eval[0], self.classes)

    def checkpoint_meta(self) -> dict:
        return {"model_name": self.model_name, "num_classes": len(self.classes), "model_kwargs": self.model_options,
                "classes": self.classes, "clip": dataclasses.asdict(self.clip),
                "normalization": normalization_of(self.model_name)}

    def load_checkpoint_meta(self, meta: dict) -> None:
        if meta.get("classes") and meta["classes"] != self.classes:
            raise ConfigError(f"{self.data}: its classes differ from the run being resumed ({len(meta['classes'])} "
                              f"classes, first {meta['classes'][:3]})")
        self.model_name = meta.get("model_name", self.model_name)
        self.model_options = dict(meta.get("model_kwargs") or {})
        self.clip = ClipConfig(**meta["clip"]) if meta.get("clip") else self.clip
        self.weights = None  # the checkpoint's weights replace any --weights


def load_video_checkpoint(path: str | Path) -> tuple[nn.Module, dict]:
    """A model trained by ``yololab video train`` (weights/best.pt or last.pt) and its meta, in eval mode."""
    path = Path(path)
    if not path.is_file():
        raise WeightsError(f"{path}: checkpoint not found")
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # any unpickling / zip error: not a checkpoint
        raise WeightsError(f"{path}: not a yololab checkpoint ({e.__class__.__name__})") from None
    meta = ckpt.get("meta") if isinstance(ckpt, dict) else None
    if not meta or "clip" not in meta or "state_dict" not in ckpt:
        raise WeightsError(f"{path}: not a checkpoint of `yololab video train` (no video meta)")
    model = build_video_model(meta["model_name"], meta["num_classes"], **(meta.get("model_kwargs") or {}))
    model.load_state_dict(ckpt["state_dict"])
    return model.eval(), meta
