"""Detection training on the engine: :class:`DetectionTask` (``yololab train``).

What the engine does not know and this task adds, with Ultralytics' recipe (8.4.190) as the default:

* the model: a zoo name (``yolov8n``; Ultralytics spellings ``yolov8n.yaml`` / ``yolov8n.pt`` map to it) or a
  Darknet ``.cfg``, with the data's class count; ``weights`` fine-tunes from any file ``build_model`` reads
  (another class count keeps every other tensor);
* the data: :class:`~yololab.data.dataset.DetectionDataset` with mosaic, affine, HSV, flips, and mosaic /
  mixup off for the last ``close_mosaic`` epochs; batches that depend on (seed, epoch) only, sharded by rank;
* the loss: :func:`yololab.detect.loss.build_loss` (v8 loss for anchor-free models, yolov5's or Darknet's
  for anchor-based ones), given only the gains the user set, so that anchor-based models keep yolov5's
  defaults (box 0.05, obj 1.0, cls 0.5). The losses return the per-image loss times the batch size, as the
  references do, so the task accumulates with ``"sum"``: gradients add over the nominal batch of 64 and
  the weight decay is scaled to it, Ultralytics' scaling;
* auto-anchor before training for anchor-based models (the anchors live in the state dict, so in every
  checkpoint);
* validation every epoch with :func:`yololab.detect.val.validate` (COCO protocol), whose ``fitness``
  (0.1 mAP50 + 0.9 mAP50-95) picks ``best.pt``; at the end ``best.pt`` is validated once more with plots.
"""

from __future__ import annotations

import dataclasses
import math
import sys
import warnings
from pathlib import Path

import torch
from torch import nn
from torch.utils.data import DataLoader, Sampler

from yololab.data.augment import AugmentConfig
from yololab.data.dataset import DetectionDataset, collate_fn, seed_worker
from yololab.data.yolo import load_data_yaml
from yololab.detect.loss import LossHyp, build_loss
from yololab.engine import Task, TrainConfig
from yololab.engine.data import EpochSampler
from yololab.errors import ConfigError, WeightsError

LOSS_KEYS = tuple(f.name for f in dataclasses.fields(LossHyp))
AUG_KEYS = tuple(f.name for f in dataclasses.fields(AugmentConfig))
# Ultralytics' validation settings during training (ultralytics/cfg/default.yaml)
VAL_CONF, VAL_IOU, VAL_MAX_DET = 0.001, 0.7, 300


def resolve_model(model: str) -> tuple[str, Path | None]:
    """``--model`` as yololab takes it: ``(zoo name or .cfg path, weights file or None)``.

    Ultralytics spellings work: ``yolov8n.yaml`` is the architecture ``yolov8n``; ``yolov8n.pt`` names
    pretrained weights, used when the file exists (its own architecture is read from it), otherwise the
    architecture is trained from scratch (nothing is downloaded) with a warning.
    """
    from yololab.models.registry import resolve_name

    text = str(model).strip()
    path = Path(text)
    if path.suffix.lower() == ".cfg":
        if not path.is_file():
            raise ConfigError(f"model={text}: no such Darknet .cfg file")
        return str(path), None
    if path.suffix.lower() in (".yaml", ".yml"):
        return resolve_name(path.stem), None
    if path.suffix.lower() == ".pt":
        if path.is_file():
            return weights_architecture(path), path
        name = resolve_name(path.stem)
        print(f"warning: model={text}: no such file, and yololab downloads nothing: training {name} from scratch "
              "(give a weights file with --weights to fine-tune)", file=sys.stderr)
        return name, None
    return resolve_name(text), None


def weights_architecture(path: Path) -> str:
    """The zoo name of the network a weights file holds (yololab, Ultralytics or yolov5 checkpoints)."""
    from yololab.checkpoint.load import detect_format
    from yololab.checkpoint.native import load_checkpoint
    from yololab.checkpoint.reference import read_reference_checkpoint
    from yololab.models.registry import resolve_name

    fmt = detect_format(path)
    if fmt == "yololab":
        return resolve_name(load_checkpoint(path)["model_name"])
    if fmt == "darknet":
        raise WeightsError(f"{path}: Darknet weights carry no architecture: give --model NAME (or a .cfg) and "
                           f"--weights {path}")
    ref = read_reference_checkpoint(path)
    if not ref.yaml_file:
        raise WeightsError(f"{path}: a {ref.source} checkpoint without its model YAML name: give --model NAME and "
                           f"--weights {path}")
    return resolve_name(Path(str(ref.yaml_file)).stem)


class _EpochIndices(Sampler):
    """This process's indices of the current epoch (engine :class:`EpochSampler`: seeded permutation, sharded
    by rank), each sent with the dataset's epoch state, ``(epoch, mosaic_closed, index)``, so the loader's
    workers augment for the right epoch."""

    def __init__(self, dataset: DetectionDataset, seed: int):
        self.dataset, self.seed = dataset, seed
        self.n = len(EpochSampler(len(dataset), seed=seed))

    def __len__(self) -> int:
        return self.n

    def __iter__(self):
        ds = self.dataset
        for i in EpochSampler(len(ds), shuffle=True, seed=self.seed, epoch=ds.epoch):
            yield ds.epoch, ds.mosaic_closed, i


class DetectionTask(Task):
    name = "detect"
    accumulate_reduction = "sum"  # the YOLO losses are per-image means x batch size (see the module doc)

    def __init__(self, cfg: TrainConfig, data: str | Path | None = None, model: str = "yolov8n",
                 weights: str | Path | None = None, imgsz: int = 640, hyp: dict | None = None,
                 cache: str | None = None, autoanchor: bool = True, verbose: bool = True):
        """``hyp``: only the loss and augmentation settings the user gave (fields of
        :class:`~yololab.detect.loss.LossHyp` and :class:`~yololab.data.augment.AugmentConfig`); the rest
        are the model's reference defaults. Everything is checked here, before the engine starts: the
        data.yaml and its splits, the model name, the weights and their class count."""
        super().__init__(cfg)
        self.verbose = verbose
        self.cache = cache
        self.autoanchor = autoanchor
        self.anchor_message = ""
        self._loader = self._val_data = None
        if cfg.resume:  # everything comes back from the checkpoint (load_checkpoint_meta)
            return
        if data is None:
            raise ConfigError("--data is required (a data.yaml), or --resume RUN")
        arch, found = resolve_model(model)
        self.setup(str(data), arch, str(weights or found) if (weights or found) else None, int(imgsz), dict(hyp or {}))

    def setup(self, data: str, model: str, weights: str | None, imgsz: int, hyp: dict) -> None:
        unknown = sorted(set(hyp) - set(LOSS_KEYS) - set(AUG_KEYS))
        if unknown:
            raise ConfigError(f"unknown hyperparameter(s) {', '.join(unknown)}")
        self.data, self.model_name, self.weights, self.imgsz, self.hyp = data, model, weights, imgsz, hyp
        self.data_cfg = load_data_yaml(data)
        self.augment = AugmentConfig(**{k: v for k, v in hyp.items() if k in AUG_KEYS})
        with torch.random.fork_rng():  # built here, before the engine seeds: its initial weights from cfg.seed
            torch.manual_seed(self.cfg.seed)
            self.net = self._build(self.data_cfg.num_classes)
        self.stride = self._max_stride(self.net)
        if imgsz % self.stride:
            raise ConfigError(f"imgsz={imgsz}: must be a multiple of {self.model_name}'s largest stride {self.stride}")
        self.criterion = build_loss(self.net, {k: v for k, v in hyp.items() if k in LOSS_KEYS}, imgsz)
        self.loss_hyp = getattr(self.criterion, "hyp", None)  # as the loss uses it (Darknet's has none)
        self.train_data = DetectionDataset(self.data_cfg, "train", imgsz, augment=True, hyp=self.augment,
                                           cache=self.cache, batch_size=self.cfg.batch, stride=self.stride,
                                           seed=self.cfg.seed, verbose=self.verbose)

    def _build(self, nc: int) -> nn.Module:
        from yololab.checkpoint.load import load_weights
        from yololab.models.registry import build

        if self.model_name.lower().endswith(".cfg"):
            from yololab.models.darknet_cfg import DarknetNet

            net = DarknetNet(self.model_name, num_classes=nc)
        else:
            net = build(self.model_name, num_classes=nc)
        if self.weights:
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                net = load_weights(net, self.weights)
            for w in caught:  # the class-count message: one line, as every warning of the CLI
                print(f"warning: {w.message}", file=sys.stderr)
        return net

    @staticmethod
    def _max_stride(net: nn.Module) -> int:
        meta = getattr(net, "meta", None)
        if meta is not None:
            return int(max(meta.strides))
        return int(max(net.specs[i].stride for i in net.yolo_layers))  # a Darknet .cfg network

    def _anchor_based(self) -> bool:
        meta = getattr(self.net, "meta", None)
        return meta.anchor_based if meta is not None else True

    # ------------------------------------------------------------------------------------- the engine's hooks

    def checkpoint_meta(self) -> dict:
        meta = {"data": self.data, "model": self.model_name, "weights": self.weights, "imgsz": self.imgsz,
                "hyp": self.hyp, "cache": self.cache, "names": list(self.data_cfg.names),
                "anchor_check": self.anchor_message}
        if self.model_name.lower().endswith(".cfg"):  # not a zoo model: build_model cannot rebuild it by name
            meta["model_name"] = self.model_name
        return meta

    def load_checkpoint_meta(self, meta: dict) -> None:
        self.autoanchor = False  # the anchors come back with the weights
        self.setup(meta["data"], meta["model"], None, int(meta["imgsz"]), dict(meta.get("hyp") or {}))
        self.anchor_message = meta.get("anchor_check", "")

    def build_model(self) -> nn.Module:
        net = self.net
        if self.autoanchor and self._anchor_based():
            from yololab.detect.autoanchor import check_anchors

            thr = self.loss_hyp.anchor_t if self.loss_hyp else 4.0
            check = check_anchors(net, self.train_data.labels, self.train_data.shapes, self.imgsz, thr=thr,
                                  seed=self.cfg.seed)
            self.anchor_message = check.message
            if self.verbose:
                print(check.message)
        return net

    def auto_optimizer(self, iterations: int) -> dict:
        """Ultralytics' detection rule: SGD lr 0.01 for long runs, else AdamW with a class-count LR."""
        if iterations > 10_000:
            return {"optimizer": "SGD", "lr0": 0.01, "momentum": 0.9}
        lr = round(0.002 * 5 / (4 + self.data_cfg.num_classes), 6)
        return {"optimizer": "AdamW", "lr0": lr, "momentum": 0.9, "warmup_bias_lr": 0.0}

    def on_epoch_start(self, epoch: int, trainer) -> None:
        closed = self.train_data.mosaic_closed
        self.train_data.set_epoch(epoch, self.cfg.epochs)
        # every epoch starts with an empty recent-image buffer (mosaic partners come from it), so that an epoch
        # depends only on (seed, epoch): what makes a resumed run equal an uninterrupted one
        self.train_data.buffer.clear()
        if self.train_data.mosaic_closed and not closed and self.verbose:
            print(f"epoch {epoch + 1}: mosaic and mixup off for the last {self.augment.close_mosaic} epochs")

    def train_loader(self, epoch: int) -> DataLoader:
        if self._loader is None:
            # one loader; its workers start afresh every epoch (forked from this process, with the dataset's
            # buffer just emptied by on_epoch_start) and get the epoch with every index
            g = torch.Generator()
            g.manual_seed(self.cfg.seed)
            workers = self.cfg.workers
            self._loader = DataLoader(self.train_data, batch_size=self.cfg.batch,
                                      sampler=_EpochIndices(self.train_data, self.cfg.seed), num_workers=workers,
                                      collate_fn=collate_fn, worker_init_fn=seed_worker, generator=g,
                                      pin_memory=self.device.type == "cuda", prefetch_factor=4 if workers else None)
        return self._loader

    def _to_device(self, batch: dict) -> tuple[torch.Tensor, dict]:
        dev = self.device
        img = batch["img"].to(dev, non_blocking=True)
        if self.trainer is not None and self.trainer.channels_last:
            img = img.contiguous(memory_format=torch.channels_last)
        targets = {k: batch[k].to(dev, non_blocking=True) for k in ("cls", "bboxes", "batch_idx")}
        return img.float() / 255, targets

    def loss(self, model: nn.Module, batch: dict):
        img, targets = self._to_device(batch)
        return self.criterion(model(img), targets)

    def batch_size(self, batch: dict) -> int:
        return len(batch["img"])

    # ------------------------------------------------------------------------------------- validation

    def val_dataset(self) -> DetectionDataset:
        if self._val_data is None:
            self._val_data = DetectionDataset(self.data_cfg, "val", self.imgsz, augment=False, rect=True,
                                              batch_size=self.cfg.batch * 2, stride=self.stride,
                                              seed=self.cfg.seed, verbose=self.verbose)
        return self._val_data

    def _validate(self, model: nn.Module, save_dir: Path | None, plots: bool, progress: bool):
        from yololab.detect.val import validate

        return validate(model, self.val_dataset(), batch=self.cfg.batch * 2, conf=VAL_CONF, iou=VAL_IOU,
                        max_det=VAL_MAX_DET, device=self.device, workers=min(self.cfg.workers, 2),
                        save_dir=save_dir, plots=plots, progress=progress, names=list(self.data_cfg.names))

    def validate(self, model: nn.Module) -> dict[str, float]:
        if getattr(model, "meta", None) is None:  # validate() scores zoo detectors; best.pt then by the loss
            return {}
        result = self._validate(model, None, plots=False, progress=False)
        return {k: float(v) for k, v in result.metrics.items() if isinstance(v, (int, float)) and math.isfinite(v)}

    def plots(self, run_dir: Path, trainer) -> list[Path]:
        """Validate best.pt once more, with every plot of :func:`~yololab.detect.val.validate`, into run_dir."""
        from yololab.checkpoint.native import load_checkpoint

        best = run_dir / "weights" / "best.pt"
        model = trainer.ema.module if trainer.ema else trainer.net
        if getattr(model, "meta", None) is None:
            return []
        if best.is_file():
            model.load_state_dict(load_checkpoint(best)["state_dict"])
        model.eval()
        with torch.no_grad():
            self.final = self._validate(model, run_dir, plots=True, progress=self.verbose)
        return sorted(p for p in run_dir.glob("*.png") if p.name != "results.png")

    def report(self, run_dir: Path, trainer) -> str:
        lines = ["## Detection", "", f"- data: `{self.data}` ({self.data_cfg.num_classes} classes, "
                 f"{len(self.train_data)} training images)", f"- model: `{self.model_name}`"
                 + (f", fine-tuned from `{self.weights}`" if self.weights else ", from scratch"),
                 f"- image size: {self.imgsz}; loss: {type(self.criterion).__name__}"
                 + (f" ({', '.join(f'{k} {v:g}' for k, v in dataclasses.asdict(self.loss_hyp).items())})"
                    if self.loss_hyp else ""),
                 f"- augmentation: {', '.join(f'{k} {v:g}' for k, v in dataclasses.asdict(self.augment).items())}"]
        if self.anchor_message:
            lines.append(f"- {self.anchor_message}")
        final = getattr(self, "final", None)
        if final is not None:
            lines += ["", "Validation of best.pt (COCO protocol):", "", "| metric | value |", "|---|---|"]
            lines += [f"| {k} | {v:.4f} |" for k, v in final.metrics.items() if isinstance(v, (int, float))]
        return "\n".join(lines) + "\n"
