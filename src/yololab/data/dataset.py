"""The detection training/validation dataset and its data loader.

``DetectionDataset`` turns a split of a YOLO-format dataset into samples a detector trains on:

* training (``augment=True``): with probability ``hyp.mosaic`` a 4-image mosaic (the 2s x 2s canvas of
  YOLOv4/v5/v8) warped by one random affine/perspective to s x s, optionally mixed up with a second
  mosaic; otherwise the image letterboxed to s x s and warped. Then Albumentations' photometric
  extras, HSV jitter and flips. Mosaic and mixup turn off for the last ``hyp.close_mosaic`` epochs.
* validation (``augment=False``): the image letterboxed to s x s, or with ``rect=True`` to the shape of
  its aspect-ratio batch (images sorted by aspect ratio; each batch padded to the smallest
  stride-multiple shape that fits it), which wastes far fewer pixels on padding.

Seeding. Sample ``i`` of epoch ``e`` draws every random number from its own generator seeded with
``(seed, e, i)``, so workers never share random streams; two runs with the same seed (and the same
number of workers, see the image buffer below) give the same batches, and :meth:`DetectionDataset.set_epoch`
(called by the training loop at the start of each epoch, like ``DistributedSampler.set_epoch``)
makes each epoch different. The loader's shuffling is a permutation seeded with (seed, epoch), and
:func:`seed_worker` seeds the global ``random``/NumPy state of each worker for any library that uses
it. The loader's workers are persistent: the epoch reaches them with every index (EpochSampler).

Image buffer. As Ultralytics does, each process keeps the last ``buffer_size`` decoded (resized)
images, and a mosaic takes its three partner images from that buffer, so a mosaic costs one JPEG
decode instead of four. The buffer is per worker, so partners depend on what that worker loaded
before: identical for the same seed and worker count, different for another worker count. With
``buffer_size=0`` or ``cache="ram"`` (every image decoded once up front) partners are drawn from the
whole split and a sample depends only on (seed, epoch, index).

The data is only read: bad samples (found by :func:`yololab.data.check.scan_split`) are skipped
with one warning line each, and the label cache lives in ``cache_dir``, outside the dataset.
"""

from __future__ import annotations

import os
import random
import sys
from collections import OrderedDict
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import cv2
import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from yololab.data.augment import (PAD_VALUE, AugmentConfig, Photometric, affine_matrix, apply_hsv, box_candidates,
                                  flip_lr, flip_ud, hsv_grey, hsv_lut, letterbox, mixup, only_scale_translate,
                                  random_affine, scale_translate_into)
from yololab.data.check import scan_split
from yololab.data.io import read_image, read_jpeg_reduced
from yololab.data.yolo import DataConfig, load_data_yaml
from yololab.errors import ConfigError, DataError
from yololab.ops.boxes import xywhn_to_xyxy, xyxy_to_xywhn

DEFAULT_CACHE_DIR = Path(os.environ.get("YOLOLAB_CACHE", "~/.cache/yololab")).expanduser() / "labels"


class DetectionDataset(Dataset):
    """Samples of one split: dicts with ``img`` (3, H, W) uint8 RGB tensor, ``cls`` (n, 1), ``bboxes``
    (n, 4) normalized centre-x, centre-y, width, height, ``im_file``, ``ori_shape`` (h0, w0) and
    ``ratio_pad`` ((gain_w, gain_h), (pad_left, pad_top)) mapping original pixels to the sample's pixels
    (None for a mosaic, which has no single original).

    Args:
        cfg: a :class:`DataConfig` or the path of a data.yaml.
        split: 'train', 'val' or 'test'.
        imgsz: output side s (training) or longest side (validation).
        augment: training augmentations on (see the module docstring).
        hyp: augmentation hyperparameters (default: Ultralytics').
        cache: 'ram' to decode every image once up front, or None to read from disk.
        cache_dir: where the label cache goes (never inside the dataset).
        rect: aspect-ratio batches (validation; needs a loader that does not shuffle).
        batch_size: batch size of the rect batches and of the image buffer length (8 x batch).
        stride: rect batch shapes are multiples of it.
        seed: base seed of the augmentations.
        buffer_size: recent-image buffer length per process (default min(n, 8 x batch, 1000) when
            augmenting). 0 turns it off: mosaic partners are then drawn from the whole split and a sample
            no longer depends on the number of workers (at the price of 4 decodes per mosaic).
    """

    # HSV of a mosaic tile by tile, on the smaller side of each resize (see load_mosaic). False: HSV on
    # the finished image, as Ultralytics does (slower; the tests compare the two).
    hsv_in_mosaic: bool = True

    def __init__(self, cfg: DataConfig | str | Path, split: str = "train", imgsz: int = 640, augment: bool = True,
                 hyp: AugmentConfig | None = None, cache: str | None = None,
                 cache_dir: str | Path | None = DEFAULT_CACHE_DIR, rect: bool = False, batch_size: int = 16,
                 stride: int = 32, pad: float = 0.5, seed: int = 0, buffer_size: int | None = None,
                 verbose: bool = True):
        self.cfg = cfg if isinstance(cfg, DataConfig) else load_data_yaml(cfg)
        if split not in self.cfg.splits:
            raise DataError(f"{self.cfg.yaml_path}: no split '{split}' (has {', '.join(self.cfg.splits)})")
        if cache not in (None, "ram"):
            raise ConfigError(f"cache must be 'ram' or None, got {cache!r}")
        if imgsz % stride:
            raise ConfigError(f"imgsz {imgsz} must be a multiple of the stride {stride}")
        self.split, self.imgsz, self.augment, self.rect = split, imgsz, augment, rect
        self.hyp = hyp or AugmentConfig()
        self.seed, self.epoch, self.stride = seed, 0, stride
        self.mosaic_closed = False  # set by set_epoch() for the last hyp.close_mosaic epochs

        infos = scan_split(self.cfg.splits[split], self.cfg.num_classes, cache_dir=cache_dir,
                           progress=f"scan {split}" if verbose else None)
        good = []
        for info in infos:
            if info.error:
                print(f"warning: skipping {info.error}", file=sys.stderr)
            else:
                good.append(info)
        if not good:
            raise DataError(f"{self.cfg.yaml_path}: split '{split}' has no usable image "
                            f"({len(infos)} found, all rejected)")
        self.files = [str(i.image) for i in good]
        self.labels = [i.labels.reshape(-1, 5).astype(np.float32) for i in good]
        self.shapes = np.array([i.shape for i in good], dtype=np.int64)  # (h, w) of the originals

        if rect:
            self._make_rect_batches(batch_size, pad)

        # decoded-image storage: all images (cache='ram') or a small per-process buffer
        self.ims: list | None = None
        self.buffer: OrderedDict[int, tuple] = OrderedDict()
        if buffer_size is None:  # Ultralytics' length
            buffer_size = min(len(self.files), 8 * batch_size, 1000) if augment else 0
        self.buffer_size = buffer_size
        if cache == "ram":
            self._cache_all(verbose)
        self.photometric = Photometric(self.hyp) if augment else None

    # -- bookkeeping ---------------------------------------------------------------------------

    def __len__(self) -> int:
        return len(self.files)

    def set_epoch(self, epoch: int, epochs: int | None = None) -> None:
        """Start epoch ``epoch`` (0-based) of ``epochs``: new augmentation seeds, and mosaic/mixup off
        for the last ``hyp.close_mosaic`` epochs. Call it before iterating the loader of that epoch."""
        self.epoch = epoch
        if epochs is not None and self.hyp.close_mosaic:
            self.mosaic_closed = epoch >= epochs - self.hyp.close_mosaic

    def _rng(self, epoch: int, index: int) -> np.random.Generator:
        return np.random.default_rng([self.seed, epoch, index])

    def _make_rect_batches(self, batch_size: int, pad: float) -> None:
        """Sort samples by aspect ratio (h / w) and give each batch the smallest stride-aligned shape
        that holds its images at ``imgsz`` longest side."""
        ar = self.shapes[:, 0] / self.shapes[:, 1]
        order = ar.argsort(kind="stable")
        self.files = [self.files[i] for i in order]
        self.labels = [self.labels[i] for i in order]
        self.shapes, ar = self.shapes[order], ar[order]
        n_batches = (len(ar) + batch_size - 1) // batch_size
        self.batch_index = np.arange(len(ar)) // batch_size
        shapes = []
        for b in range(n_batches):
            a = ar[self.batch_index == b]
            lo, hi = a.min(), a.max()
            hw = [1.0, 1.0]
            if hi < 1:      # all wider than high
                hw = [hi, 1.0]
            elif lo > 1:    # all higher than wide
                hw = [1.0, 1 / lo]
            shapes.append(np.ceil(np.array(hw) * self.imgsz / self.stride + pad).astype(int) * self.stride)
        self.batch_shapes = np.array(shapes)  # (n_batches, 2) as (h, w)

    def _cache_all(self, verbose: bool) -> None:
        from yololab.progress import progress

        cv2.setNumThreads(1)  # the threads are the parallelism
        with ThreadPoolExecutor(max_workers=min(8, os.cpu_count() or 1)) as pool:
            it = pool.map(self._read_resized, range(len(self.files)))
            self.ims = list(progress(it, total=len(self.files), desc=f"cache {self.split} (ram)", enabled=verbose))

    # -- loading -------------------------------------------------------------------------------

    def _read_resized(self, i: int) -> tuple[np.ndarray, tuple[int, int], tuple[int, int]]:
        img = None
        h0, w0 = (int(v) for v in self.shapes[i])
        if self.augment and max(h0, w0) >= 2 * self.imgsz:  # a photo much larger than the training size
            img = read_jpeg_reduced(self.files[i], max(h0, w0) // self.imgsz, (h0, w0))
        if img is None:
            img = read_image(self.files[i])
            h0, w0 = img.shape[:2]
        r = self.imgsz / max(h0, w0)
        if r != 1:
            w, h = min(self.imgsz, max(1, round(w0 * r))), min(self.imgsz, max(1, round(h0 * r)))
            interp = cv2.INTER_LINEAR if (self.augment or r > 1) else cv2.INTER_AREA
            img = cv2.resize(img, (w, h), interpolation=interp)
        return img, (h0, w0), img.shape[:2]

    def load_image(self, i: int) -> tuple[np.ndarray, tuple[int, int], tuple[int, int]]:
        """Image ``i`` resized so its longest side is ``imgsz``: (image, (h0, w0), (h, w)).
        The returned array is shared with the cache/buffer: never modify it in place."""
        if self.ims is not None:
            return self.ims[i]
        if i in self.buffer:
            self.buffer.move_to_end(i)
            return self.buffer[i]
        item = self._read_resized(i)
        if self.buffer_size:
            self.buffer[i] = item
            if len(self.buffer) > self.buffer_size:
                self.buffer.popitem(last=False)
        return item

    def _pixel_boxes(self, i: int, w: float, h: float, padw: float = 0, padh: float = 0):
        lab = self.labels[i]
        return lab[:, 0].copy(), xywhn_to_xyxy(lab[:, 1:], w, h, padw, padh)

    # -- samples -------------------------------------------------------------------------------

    def _partners(self, index: int, rng: np.random.Generator, k: int) -> list[int]:
        """Mosaic partners: from the recent-image buffer (as Ultralytics), else from the whole split."""
        if self.ims is None and self.buffer_size and len(self.buffer) >= k + 1:
            keys = list(self.buffer)
            return [keys[j] for j in rng.integers(0, len(keys), k)]
        return [int(j) for j in rng.integers(0, len(self), k)]

    def load_mosaic(self, index: int, rng: np.random.Generator, hsv: np.ndarray | None = None):
        """Four images around a random centre of a 2s x 2s grey canvas, then one random affine to s x s.

        With only scale and translation in the warp (the default), the canvas is never built: each
        image's visible part is resized straight into the s x s output with the mosaic's matrix
        (same picture, a fraction of the pixel traffic).

        ``hsv``: an HSV look-up table (:func:`hsv_lut`) to apply to the result. On the fast path it is
        applied tile by tile on the smaller side of each resize (see :func:`scale_translate_into`),
        and the grey gaps get the grey that HSV makes of grey: about a quarter fewer pixels go through
        the colour conversions than with HSV on the finished s x s image (73-79 % of them at 640 on
        coco8 and the shapes set)."""
        s, hyp = self.imgsz, self.hyp
        xc, yc = (int(v) for v in rng.uniform(s / 2, 3 * s / 2, 2))
        indices = [index] + self._partners(index, rng, 3)
        crops, corners, tile_wh, tile_xy = [], [], [], []  # per tile: crop, its place on the canvas, ...
        for k, i in enumerate(indices):
            img, _, (h, w) = self.load_image(i)
            if k == 0:    # top left: its bottom-right corner on the centre
                x1a, y1a, x2a, y2a = max(xc - w, 0), max(yc - h, 0), xc, yc
                x1b, y1b, x2b, y2b = w - (x2a - x1a), h - (y2a - y1a), w, h
            elif k == 1:  # top right
                x1a, y1a, x2a, y2a = xc, max(yc - h, 0), min(xc + w, 2 * s), yc
                x1b, y1b, x2b, y2b = 0, h - (y2a - y1a), min(w, x2a - x1a), h
            elif k == 2:  # bottom left
                x1a, y1a, x2a, y2a = max(xc - w, 0), yc, xc, min(2 * s, yc + h)
                x1b, y1b, x2b, y2b = w - (x2a - x1a), 0, w, min(y2a - y1a, h)
            else:         # bottom right
                x1a, y1a, x2a, y2a = xc, yc, min(xc + w, 2 * s), min(2 * s, yc + h)
                x1b, y1b, x2b, y2b = 0, 0, min(w, x2a - x1a), min(y2a - y1a, h)
            crops.append(img[y1b:y2b, x1b:x2b])
            corners.append((x1a, y1a))
            tile_wh.append((w, h, x2b - x1b, y2b - y1b))  # image size, crop size
            tile_xy.append((x1b, y1b))                    # crop's top-left corner in the image

        # the boxes of the four tiles together, in the pixels of their crops (one NumPy pass, not four)
        labels = [self.labels[i] for i in indices]
        tile = np.repeat(np.arange(4), [len(lab) for lab in labels])  # which tile each box is in
        lab = np.concatenate(labels)
        wh = np.array(tile_wh, np.float32)[tile]
        cls = lab[:, 0].copy()
        boxes = xywhn_to_xyxy(lab[:, 1:], wh[:, 0], wh[:, 1]) - np.array(tile_xy, np.float32)[tile][:, [0, 1, 0, 1]]
        boxes = boxes.clip(0, wh[:, [2, 3, 2, 3]])  # the parts outside the canvas are cut off
        keep = (boxes[:, 2] > boxes[:, 0]) & (boxes[:, 3] > boxes[:, 1])
        cls, boxes, tile = cls[keep], boxes[keep], tile[keep]

        if not only_scale_translate(hyp):  # general warp: build the canvas, warp it once
            canvas = np.full((2 * s, 2 * s, 3), PAD_VALUE, np.uint8)
            for crop, (xa, ya) in zip(crops, corners):
                canvas[ya:ya + crop.shape[0], xa:xa + crop.shape[1]] = crop
            boxes += np.array(corners, np.float32)[tile][:, [0, 1, 0, 1]]
            img, cls, boxes = random_affine(canvas, cls, boxes, hyp, rng, border=(-s // 2, -s // 2))
            return (img if hsv is None else apply_hsv(img, hsv)), cls, boxes

        M, scale = affine_matrix(2 * s, 2 * s, s, s, hyp, rng)
        out = np.full((s, s, 3), hsv_grey(hsv), np.uint8)
        done = np.empty((4, 4))  # per tile, the mapping really done: x -> x * sx + ox, y -> y * sy + oy
        for k, (crop, (xa, ya)) in enumerate(zip(crops, corners)):
            D = scale_translate_into(out, crop, M @ np.array([[1, 0, xa], [0, 1, ya], [0, 0, 1.0]]), hsv)
            done[k] = D[0, 0], D[1, 1], D[0, 2], D[1, 2]
        d = done[tile]
        new = boxes * d[:, [0, 1, 0, 1]] + d[:, [2, 3, 2, 3]]
        new = new.clip(0, s).astype(np.float32)
        keep = box_candidates(boxes * scale, new, hyp.min_box_wh, hyp.min_area_ratio, hyp.max_aspect)
        return out, cls[keep], new[keep]

    def _load_letterboxed(self, index: int, shape: tuple[int, int]):
        """Image letterboxed into ``shape`` (h, w) without upscaling beyond ``imgsz``; boxes in its pixels."""
        img, (h0, w0), (h, w) = self.load_image(index)
        img, (gw, gh), (padw, padh) = letterbox(img, shape, scaleup=False)
        cls, boxes = self._pixel_boxes(index, w * gw, h * gh, padw, padh)
        ratio_pad = ((w * gw / w0, h * gh / h0), (padw, padh))
        return img, cls, boxes, (h0, w0), ratio_pad

    def __getitem__(self, key: int | tuple[int, bool, int]) -> dict:
        """``key``: an index, or ``(epoch, mosaic_closed, index)`` as :class:`EpochSampler` yields
        them (the epoch state travels with the index to the loader's persistent workers)."""
        epoch, closed, index = key if isinstance(key, tuple) else (self.epoch, self.mosaic_closed, key)
        s = self.imgsz
        ori_shape, ratio_pad = tuple(int(v) for v in self.shapes[index]), None
        if not self.augment:
            shape = tuple(self.batch_shapes[self.batch_index[index]]) if self.rect else (s, s)
            img, cls, boxes, ori_shape, ratio_pad = self._load_letterboxed(index, shape)
        else:
            rng = self._rng(epoch, index)
            hyp = self.hyp
            mosaic = not closed and rng.random() < hyp.mosaic
            mix = mosaic and hyp.mixup and rng.random() < hyp.mixup
            # The photometric steps come after the geometric ones (as in Ultralytics: Albumentations
            # extras, then HSV), but their random numbers are drawn first, so that when neither mixup
            # nor an extra runs in between, the mosaic can apply HSV tile by tile (load_mosaic).
            fired = self.photometric.draw(rng)
            hsv = hsv_lut(hyp, rng)
            hsv_in_mosaic = hsv is not None and self.hsv_in_mosaic and mosaic and not mix and not fired
            if mosaic:
                img, cls, boxes = self.load_mosaic(index, rng, hsv if hsv_in_mosaic else None)
                if mix:
                    img2, cls2, boxes2 = self.load_mosaic(int(rng.integers(0, len(self))), rng)
                    img, cls, boxes = mixup(img, cls, boxes, img2, cls2, boxes2, rng)
            else:
                img, cls, boxes, ori_shape, ratio_pad = self._load_letterboxed(index, (s, s))
                img, cls, boxes = random_affine(img, cls, boxes, hyp, rng)
                ratio_pad = None  # the random warp moved the pixels: no simple inverse
            img = self.photometric.apply(img, fired)
            if hsv is not None and not hsv_in_mosaic:
                img = apply_hsv(img, hsv)  # img is this sample's own array here, never a cached image
            if hyp.flipud and rng.random() < hyp.flipud:
                img, boxes = flip_ud(img, boxes, inplace=True)
            if hyp.fliplr and rng.random() < hyp.fliplr:
                img, boxes = flip_lr(img, boxes, inplace=True)

        h, w = img.shape[:2]
        chw = torch.empty((3, h, w), dtype=torch.uint8)  # HWC BGR -> CHW RGB: OpenCV writes the planes
        planes = chw.numpy()
        cv2.split(img, [planes[2], planes[1], planes[0]])
        return {
            "img": chw,
            "cls": torch.from_numpy(cls.reshape(-1, 1).astype(np.float32)),
            "bboxes": torch.from_numpy(xyxy_to_xywhn(boxes.reshape(-1, 4), w, h)),
            "im_file": self.files[index],
            "ori_shape": ori_shape,
            "ratio_pad": ratio_pad,
        }


# ---------------------------------------------------------------------------------------------
# Batching


def collate_fn(batch: list[dict]) -> dict:
    """Stack images and concatenate the boxes of a batch; ``batch_idx`` says which image a box is in."""
    imgs = [b["img"] for b in batch]
    if torch.utils.data.get_worker_info() is not None:
        # in a worker: stack straight into shared memory (as torch's default_collate does), which
        # saves copying the whole batch again when it is sent to the main process
        storage = imgs[0].untyped_storage()._new_shared(sum(x.numel() * x.element_size() for x in imgs))
        img = torch.stack(imgs, out=imgs[0].new(storage).resize_(len(imgs), *imgs[0].shape))
    else:
        # in the main process NumPy's stack is several times faster than torch.stack on uint8 here
        img = torch.from_numpy(np.stack([x.numpy() for x in imgs]))
    return {
        "img": img,
        "cls": torch.cat([b["cls"] for b in batch]),
        "bboxes": torch.cat([b["bboxes"] for b in batch]),
        "batch_idx": torch.cat([torch.full((len(b["cls"]),), i, dtype=torch.float32) for i, b in enumerate(batch)]),
        "im_file": [b["im_file"] for b in batch],
        "ori_shape": [b["ori_shape"] for b in batch],
        "ratio_pad": [b["ratio_pad"] for b in batch],
    }


def seed_worker(worker_id: int) -> None:
    """DataLoader ``worker_init_fn``: give each worker its own global ``random``/NumPy seed, derived
    from the loader's generator (so it differs per worker and per epoch, and repeats per run), and
    keep OpenCV single-threaded inside workers (the workers are the parallelism)."""
    s = torch.initial_seed() % 2**32
    random.seed(s)
    np.random.seed(s)
    cv2.setNumThreads(1)


class EpochSampler(torch.utils.data.Sampler):
    """Yields ``(epoch, mosaic_closed, index)`` for every sample of the dataset's current epoch.

    The sampler runs in the main process, where the training loop calls ``dataset.set_epoch``; sending
    the epoch state with each index lets the loader keep its workers (and their image buffers) alive
    across epochs. With ``shuffle`` the order is a permutation seeded with (seed, epoch): the same for
    the same seed and epoch whatever ran before, so a resumed run sees the same order.
    """

    def __init__(self, dataset: Dataset, shuffle: bool, seed: int):
        self.dataset, self.shuffle, self.seed = dataset, shuffle, seed

    def __len__(self) -> int:
        return len(self.dataset)

    def __iter__(self):
        epoch = getattr(self.dataset, "epoch", 0)
        closed = getattr(self.dataset, "mosaic_closed", False)
        n = len(self.dataset)
        order = np.random.default_rng([self.seed, epoch]).permutation(n) if self.shuffle else range(n)
        for i in order:
            yield epoch, closed, int(i)


def build_dataloader(dataset: DetectionDataset, batch_size: int = 16, workers: int = 0, shuffle: bool = True,
                     seed: int | None = None) -> DataLoader:
    """A DataLoader with our collate, worker seeding, an :class:`EpochSampler` (seeded shuffle;
    ``seed`` defaults to the dataset's) and persistent workers. Call ``dataset.set_epoch(epoch)``
    before iterating each epoch. The workers keep the dataset as it was when they started: build a
    new loader after changing its hyperparameters."""
    if getattr(dataset, "rect", False) and shuffle:
        raise ConfigError("rect batches need shuffle=False (the batches are sorted by aspect ratio)")
    seed = dataset.seed if seed is None else seed
    g = torch.Generator()
    g.manual_seed(seed)  # base seed of the workers' global random state (seed_worker)
    return DataLoader(dataset, batch_size=batch_size, sampler=EpochSampler(dataset, shuffle, seed),
                      num_workers=workers, collate_fn=collate_fn, worker_init_fn=seed_worker, generator=g,
                      pin_memory=torch.cuda.is_available(), persistent_workers=workers > 0)
