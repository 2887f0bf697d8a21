"""Detection on images and videos: sources in, boxes out (``yololab predict`` and the Python API).

    from yololab.deploy.predict import Predictor
    predictor = Predictor("best.pt")                  # any weights build_model reads, or .onnx / OpenVINO
    for p in predictor("photos/"):                    # an image, folder, glob, video, .txt list, or arrays
        print(p.path, p.boxes, p.scores, p.classes)   # boxes x1, y1, x2, y2 in the photo's own pixels

The pipeline is ``ultralytics predict``'s, step for step, so that in the exact mode (``mode="fp32"``) the same
weights give the same boxes, scores and classes (tests/deploy/test_predict_parity.py):

1. read the image (OpenCV / simplejpeg, EXIF orientation applied), BGR uint8;
2. letterbox: scale the long side to ``imgsz``, pad to the minimum rectangle (a multiple of the stride) when
   the images of a batch share one shape, else to ``imgsz`` x ``imgsz`` (always to the size of a static
   export; the modes that compile per input shape, OpenVINO and ONNX on the fly, keep each compiled shape, and
   after :data:`MAX_RECT_SHAPES` rectangles send photos of new shapes to the square); RGB, float32 in [0, 1];
3. the network, in the execution mode of :func:`yololab.deploy.load.load_detector` (default ``auto``: the
   fastest mode of this machine within the tolerance of docs/design.md; the meta says which);
4. :func:`yololab.detect.postprocess.postprocess`: best class per anchor above ``conf`` (0.25), per-class NMS
   at IoU ``iou`` (0.7) by ``torchvision.ops`` (across classes with ``agnostic``), ``max_det`` (300);
5. boxes mapped back through the letterbox and clipped to the image.

A corrupt or unreadable image among several is skipped with a warning; alone, it is an error.
:class:`Predictor` writes nothing; :func:`run_predict` (``yololab predict``) writes, through
:class:`PredictionWriter`, annotated images and videos, one JSON per image and optional YOLO txt labels into a run
folder, and never over an input file.
"""

from __future__ import annotations

import contextlib
import glob
import json
import os
import sys
import time
import warnings
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from yololab.data.augment import letterbox
from yololab.data.io import read_image
from yololab.data.yolo import IMAGE_SUFFIXES
from yololab.deploy.load import load_detector
from yololab.detect.postprocess import Detections, postprocess, to_image
from yololab.errors import DataError, YololabError
from yololab.fileio import atomic_path, write_bytes_atomic, write_text_atomic

# what OpenCV's FFmpeg backend reads (Ultralytics' list)
VIDEO_SUFFIXES = {".asf", ".avi", ".gif", ".m4v", ".mkv", ".mov", ".mp4", ".mpeg", ".mpg", ".ts", ".webm", ".wmv"}
CONF, IOU, MAX_DET = 0.25, 0.7, 300  # `ultralytics predict`'s defaults
MAX_RECT_SHAPES = 8  # runtimes that compile per input shape: rectangles compiled before photos go square


# ------------------------------------------------------------------------------------------------ sources

def _media(path: Path) -> bool:
    return path.suffix.lower() in IMAGE_SUFFIXES | VIDEO_SUFFIXES


def is_video(path: Path) -> bool:
    return path.suffix.lower() in VIDEO_SUFFIXES


def _list_file(path: Path) -> list[Path]:
    """The entries of a ``.txt`` list: one image, video or folder a line, relative to the list's folder."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as e:
        raise DataError(f"{path}: cannot read the list file ({getattr(e, 'strerror', None) or e})") from None
    files = []
    for n, line in enumerate(lines, 1):
        entry = line.strip()
        if not entry or entry.startswith("#"):
            continue
        p = Path(entry).expanduser()
        p = p if p.is_absolute() else Path(os.path.normpath(path.parent / p))
        if not p.exists():
            raise DataError(f"{path}, line {n}: {entry} does not exist")
        files += _folder(p) if p.is_dir() else [p]
    if not files:
        raise DataError(f"{path}: the list file names no image or video")
    return files


def _folder(path: Path) -> list[Path]:
    files = sorted(p for p in path.iterdir() if p.is_file() and _media(p))
    if not files:
        raise DataError(f"{path}: no images or videos in this folder (looked for "
                        f"{', '.join(sorted(IMAGE_SUFFIXES | VIDEO_SUFFIXES))})")
    return files


def resolve_source(source: str | os.PathLike | Sequence[str | os.PathLike]) -> list[Path]:
    """The image and video files a source names: a file, a folder (not recursive), a glob pattern, a ``.txt``
    list file, or a list of any of these. Raises :class:`DataError` naming what is missing or empty."""
    if isinstance(source, (list, tuple)):
        files = [f for s in source for f in resolve_source(s)]
        if not files:
            raise DataError("an empty list of sources")
        return files
    text = str(source)
    path = Path(text).expanduser()
    if not path.exists() and glob.has_magic(text):
        files = sorted(Path(p) for p in glob.glob(str(path), recursive=True) if Path(p).is_file() and _media(Path(p)))
        if not files:
            raise DataError(f"{text}: no image or video matches this pattern")
        return files
    if path.is_dir():
        return _folder(path)
    if not path.exists():
        raise DataError(f"{path}: no such file or folder")
    if path.suffix.lower() == ".txt":
        return _list_file(path)
    if not _media(path):
        raise DataError(f"{path}: not an image, a video or a .txt list of them (suffix {path.suffix or 'none'!r})")
    return [path]


@dataclass
class Frame:
    """One image to run on: a photo (``frame`` None) or a video frame (``frame`` its index from 0)."""

    image: np.ndarray  # (H, W, 3) uint8 BGR
    path: Path | None
    frame: int | None = None
    fps: float | None = None  # the video's frame rate
    frames: int | None = None  # the video's frame count, as its header says


def read_video(path: Path) -> Iterator[Frame]:
    """The frames of a video (OpenCV's FFmpeg backend); :class:`DataError` if it has none."""
    import cv2

    cap = cv2.VideoCapture(str(path))
    try:
        if not cap.isOpened():
            raise DataError(f"{path}: cannot open the video (not a video OpenCV's FFmpeg reads?)")
        fps = cap.get(cv2.CAP_PROP_FPS) or 25.0
        total = int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) or None
        i = 0
        while True:
            ok, img = cap.read()
            if not ok:
                break
            yield Frame(img, path, i, fps, total)
            i += 1
        if i == 0:
            raise DataError(f"{path}: a video with no frames (empty, truncated or not decodable)")
    finally:
        cap.release()


def iter_frames(files: Sequence[Path], skipped: list[str] | None = None) -> Iterator[Frame]:
    """Every image and video frame of ``files`` in order. With several files, one that cannot be read is skipped
    with a warning (and its message appended to ``skipped``); alone, it raises :class:`DataError`."""
    for path in files:
        try:
            if is_video(path):
                yield from read_video(path)
            else:
                yield Frame(read_image(path), path)
        except DataError as e:
            if len(files) == 1:
                raise
            warnings.warn(f"skipped: {e}", stacklevel=2)
            if skipped is not None:
                skipped.append(str(e))


# ------------------------------------------------------------------------------------------------ predictions

@dataclass
class Prediction:
    """The detections of one image or video frame, in its own pixels, best score first."""

    path: Path | None
    frame: int | None
    shape: tuple[int, int]  # (h, w) of the image
    boxes: torch.Tensor  # (N, 4) float32 x1, y1, x2, y2
    scores: torch.Tensor  # (N,) float32
    classes: torch.Tensor  # (N,) int64
    names: list[str] = field(repr=False)
    image: np.ndarray | None = field(default=None, repr=False)  # the BGR image (for drawing)
    fps: float | None = None  # a video frame's frame rate

    def __len__(self) -> int:
        return len(self.scores)

    def to_dict(self) -> dict:
        """JSON-able: the image, its size and every detection (class, name, confidence, box)."""
        return {"image": str(self.path) if self.path else None, "frame": self.frame, "height": self.shape[0],
                "width": self.shape[1],
                "detections": [{"class": int(c), "name": self.names[int(c)], "confidence": round(float(s), 5),
                                "box": [round(float(v), 2) for v in b]}
                               for b, s, c in zip(self.boxes.tolist(), self.scores.tolist(), self.classes.tolist())]}

    def yolo_rows(self) -> list[str]:
        """YOLO label rows with the confidence last: ``class cx cy w h conf``, normalized to the image."""
        h, w = self.shape
        rows = []
        for (x1, y1, x2, y2), s, c in zip(self.boxes.tolist(), self.scores.tolist(), self.classes.tolist()):
            rows.append(f"{c} {(x1 + x2) / 2 / w:.6f} {(y1 + y2) / 2 / h:.6f} {(x2 - x1) / w:.6f} "
                        f"{(y2 - y1) / h:.6f} {s:.5f}")
        return rows


def min_rectangle(shape: tuple[int, int], imgsz: int, stride: int) -> tuple[int, int]:
    """The (h, w) that :func:`yololab.data.augment.letterbox` pads an ``shape`` image to at ``imgsz`` with
    ``stride``: the long side ``imgsz``, the short one scaled and padded up to a multiple of ``stride``."""
    h0, w0 = shape
    r = imgsz / max(h0, w0)
    h, w = max(1, int(round(h0 * r))), max(1, int(round(w0 * r)))
    return h + (imgsz - h) % stride, w + (imgsz - w) % stride


class Predictor:
    """A detector with its pre- and post-processing: ``predictor(source) -> list[Prediction]``.

    Args:
        weights: weights file or exported model (:func:`yololab.deploy.load.load_detector`), or None.
        model: zoo name (without weights: random init) or a zoo ``nn.Module``.
        mode: execution mode for PyTorch weights: ``"auto"`` (the fastest within docs/design.md's tolerance),
            ``"fp32"`` (exact), or any of :data:`yololab.deploy.runtime.MODES`.
        imgsz: the long side of the network input (a static export uses its own size).
        conf, iou, max_det, agnostic, classes: the NMS settings (module docstring).
        batch: images per network call.
        rect: letterbox a batch of same-shape images to the minimum rectangle (Ultralytics' default).
    """

    def __init__(self, weights: str | os.PathLike | None = None, *, model=None, num_classes: int | None = None,
                 mode: str = "auto", imgsz: int = 640, conf: float = CONF, iou: float = IOU, max_det: int = MAX_DET,
                 agnostic: bool = False, classes: Sequence[int] | None = None, batch: int = 1, rect: bool = True,
                 threads: int | None = None):
        for name, value in (("conf", conf), ("iou", iou)):
            if not 0.0 <= value <= 1.0:
                raise YololabError(f"{name} must be in [0, 1], got {value}")
        for name, value in (("imgsz", imgsz), ("max_det", max_det), ("batch", batch)):
            if value < 1:
                raise YololabError(f"{name} must be a positive integer, got {value}")
        self.detector = load_detector(weights, model=model, num_classes=num_classes, mode=mode, threads=threads)
        meta = self.meta
        if classes is not None and any(not 0 <= c < meta.num_classes for c in classes):
            raise YololabError(f"classes {list(classes)}: {meta.name} has classes 0..{meta.num_classes - 1}")
        self.imgsz, self.conf, self.iou, self.max_det = imgsz, conf, iou, max_det
        self.agnostic, self.classes = agnostic, list(classes) if classes is not None else None
        self.batch, self.rect = batch, rect
        self.times = {"preprocess": 0.0, "inference": 0.0, "postprocess": 0.0}  # seconds, summed
        self.seen = 0
        self.shapes: set[tuple[int, ...]] = set()  # network input shapes used
        self._rects: set[tuple[int, int]] = set()  # minimum rectangles given to a runtime that compiles per shape

    @property
    def meta(self):
        return self.detector.meta

    # ---------------------------------------------------------------------------------------------- steps
    def input_size(self, shapes: Sequence[tuple[int, int]]) -> tuple[tuple[int, int], int | None]:
        """(letterbox target (h, w), stride for the minimum rectangle or None) for a batch of image shapes."""
        if self.meta.imgsz is not None:  # a static export takes its own size only
            return self.meta.imgsz, None
        square = (self.imgsz, self.imgsz)
        if not self.rect or len(set(shapes)) != 1:
            return square, None
        # OpenVINO, and ONNX Runtime on an export made on the fly, compile once per input shape (~1-3 s, kept):
        # the first MAX_RECT_SHAPES rectangles get their own; photos of further shapes share the square
        if self.meta.runtime == "openvino" or self.meta.mode == "onnx":
            rect = min_rectangle(shapes[0], self.imgsz, self.meta.stride)
            if rect not in self._rects and len(self._rects) >= MAX_RECT_SHAPES:
                return square, None
            self._rects.add(rect)
        return square, self.meta.stride

    def preprocess(self, images: Sequence[np.ndarray]):
        """BGR images -> (input batch, per image (gain, pad))."""
        target, stride = self.input_size([im.shape[:2] for im in images])
        import cv2

        boxed = [letterbox(im, target, stride=stride) for im in images]
        # BGR -> RGB, HWC -> CHW, uint8 -> float32 / 255 in one OpenCV pass (3x faster than numpy + torch)
        x = torch.from_numpy(cv2.dnn.blobFromImages([b[0] for b in boxed], 1 / 255, swapRB=True))
        return x, [(b[1], b[2]) for b in boxed]

    def predict_arrays(self, images: Sequence[np.ndarray]) -> list[Detections]:
        """Detections (in each image's pixels) for BGR uint8 images, in one network call."""
        t0 = time.perf_counter()
        x, geometry = self.preprocess(images)
        t1 = time.perf_counter()
        out = self.detector(x)
        t2 = time.perf_counter()
        dets = postprocess(out, self.meta.anchor_based, conf=self.conf, iou=self.iou, max_det=self.max_det,
                           multi_label=False, agnostic=self.agnostic, classes=self.classes)
        dets = [to_image(d, gain, pad, im.shape[:2]) for d, (gain, pad), im in zip(dets, geometry, images)]
        t3 = time.perf_counter()
        self.times["preprocess"] += t1 - t0
        self.times["inference"] += t2 - t1
        self.times["postprocess"] += t3 - t2
        self.seen += len(images)
        self.shapes.add(tuple(x.shape))
        return [Detections(d.boxes.float(), d.scores.float(), d.classes) for d in dets]

    # ---------------------------------------------------------------------------------------------- sources
    def stream(self, source, skipped: list[str] | None = None, keep_images: bool = False) -> Iterator[Prediction]:
        """Predictions one image / frame at a time, in source order (batched ``batch`` at a time).

        ``source``: what :func:`resolve_source` takes, or BGR arrays. ``skipped`` collects the messages of
        unreadable files that were skipped. ``keep_images``: attach each image to its prediction (for drawing).
        """
        if isinstance(source, np.ndarray) or (isinstance(source, (list, tuple)) and source
                                              and isinstance(source[0], np.ndarray)):
            arrays = [source] if isinstance(source, np.ndarray) else list(source)
            frames: Iterable[Frame] = (Frame(a, None) for a in arrays)
        else:
            frames = iter_frames(resolve_source(source), skipped)
        yield from self._run(frames, keep_images)

    def _run(self, frames: Iterable[Frame], keep_images: bool) -> Iterator[Prediction]:
        pending: list[Frame] = []
        for frame in frames:
            pending.append(frame)
            if len(pending) == self.batch:
                yield from self._predict_frames(pending, keep_images)
                pending = []
        if pending:
            yield from self._predict_frames(pending, keep_images)

    def _predict_frames(self, frames: list[Frame], keep_images: bool) -> Iterator[Prediction]:
        for f, det in zip(frames, self.predict_arrays([f.image for f in frames])):
            yield Prediction(f.path, f.frame, f.image.shape[:2], det.boxes, det.scores, det.classes,
                             self.meta.names, f.image if keep_images else None, f.fps)

    def __call__(self, source) -> list[Prediction]:
        return list(self.stream(source))

    def speed(self) -> dict[str, float]:
        """Mean milliseconds per image of each step so far."""
        n = max(self.seen, 1)
        return {k: v * 1e3 / n for k, v in self.times.items()}


# ------------------------------------------------------------------------------------------------ outputs

PALETTE = ((56, 56, 255), (151, 157, 255), (31, 112, 255), (29, 178, 255), (49, 210, 207), (10, 249, 72),
           (23, 204, 146), (134, 219, 61), (52, 147, 26), (187, 212, 0), (168, 153, 44), (255, 194, 0),
           (147, 69, 52), (255, 115, 100), (236, 24, 0), (255, 56, 132), (133, 0, 82), (255, 56, 203),
           (200, 149, 255), (199, 55, 255))  # BGR, one per class (cycled)
WRITABLE = {".bmp", ".jpeg", ".jpg", ".png", ".tif", ".tiff", ".webp"}  # what cv2.imencode writes


def draw(image: np.ndarray, p: Prediction) -> np.ndarray:
    """A copy of ``image`` with ``p``'s boxes and ``name confidence`` labels drawn on it."""
    import cv2

    out = image.copy()
    lw = max(round(sum(out.shape[:2]) / 2 * 0.003), 2)
    scale = lw / 3
    for (x1, y1, x2, y2), s, c in zip(p.boxes.round().int().tolist(), p.scores.tolist(), p.classes.tolist()):
        color = PALETTE[c % len(PALETTE)]
        cv2.rectangle(out, (x1, y1), (x2, y2), color, lw, cv2.LINE_AA)
        label = f"{p.names[c]} {s:.2f}"
        (tw, th), base = cv2.getTextSize(label, cv2.FONT_HERSHEY_SIMPLEX, scale, max(lw - 1, 1))
        top = y1 - th - base - 2 if y1 - th - base - 2 >= 0 else y1  # inside the box at the top edge
        cv2.rectangle(out, (x1, top), (x1 + tw + 2, top + th + base + 2), color, -1, cv2.LINE_AA)
        cv2.putText(out, label, (x1 + 1, top + th + 1), cv2.FONT_HERSHEY_SIMPLEX, scale, (255, 255, 255),
                    max(lw - 1, 1), cv2.LINE_AA)
    return out


class PredictionWriter:
    """Writes the outputs of ``yololab predict`` into ``run_dir``, each file atomically:

    * ``<name>``: the image with its boxes drawn (``save_images``; a video becomes ``<stem>.mp4``);
    * ``labels/<stem>.json``: the detections (:meth:`Prediction.to_dict`); a video frame ``<stem>_<frame>.json``;
    * ``labels/<stem>.txt``: YOLO rows with the confidence (``save_txt``).

    Sources with the same name get ``_2``, ``_3``... A path that is one of ``inputs`` is never written.
    """

    def __init__(self, run_dir: Path, save_images: bool = True, save_txt: bool = False,
                 inputs: Iterable[Path] = ()):
        self.run_dir, self.save_images, self.save_txt = Path(run_dir), save_images, save_txt
        self.inputs = {Path(p).resolve() for p in inputs}
        self.stems: dict[object, str] = {}
        self.written = 0
        self._video: tuple[object, object, contextlib.ExitStack] | None = None  # (source, cv2 writer, stack)

    def _stem(self, p: Prediction) -> str:
        key = p.path if p.path is not None else id(p)
        if key not in self.stems:
            base = p.path.stem if p.path is not None else f"image{len(self.stems)}"
            stem, n = base, 1
            while stem in self.stems.values():
                n += 1
                stem = f"{base}_{n}"
            self.stems[key] = stem
        return self.stems[key]

    def _target(self, path: Path) -> Path:
        if path.resolve() in self.inputs:
            raise DataError(f"{path}: is an input of this run; choose another --project / --name")
        return path

    def write(self, p: Prediction) -> None:
        stem = self._stem(p)
        label = stem if p.frame is None else f"{stem}_{p.frame}"
        labels = self.run_dir / "labels"
        write_text_atomic(self._target(labels / f"{label}.json"), json.dumps(p.to_dict()) + "\n")
        if self.save_txt:
            write_text_atomic(self._target(labels / f"{label}.txt"), "".join(r + "\n" for r in p.yolo_rows()))
        if self.save_images and p.image is not None:
            if p.frame is None:
                self._write_image(p, stem)
            else:
                self._write_frame(p, stem)

    def _write_image(self, p: Prediction, stem: str) -> None:
        import cv2

        suffix = p.path.suffix.lower() if p.path is not None and p.path.suffix.lower() in WRITABLE else ".jpg"
        ok, buf = cv2.imencode(suffix, draw(p.image, p))
        if not ok:
            raise YololabError(f"OpenCV cannot encode {stem}{suffix}")
        write_bytes_atomic(self._target(self.run_dir / f"{stem}{suffix}"), buf.tobytes())
        self.written += 1

    def _write_frame(self, p: Prediction, stem: str) -> None:
        import cv2

        if self._video is None or self._video[0] != p.path:
            self.close()
            stack = contextlib.ExitStack()
            tmp = stack.enter_context(atomic_path(self._target(self.run_dir / f"{stem}.mp4")))
            h, w = p.shape
            writer = cv2.VideoWriter(tmp, cv2.VideoWriter_fourcc(*"mp4v"), p.fps or 25.0, (w, h))
            if not writer.isOpened():
                stack.close()
                raise YololabError(f"OpenCV cannot write the video {self.run_dir / (stem + '.mp4')} (mp4v)")
            self._video = (p.path, writer, stack)
        self._video[1].write(draw(p.image, p))

    def close(self) -> None:
        """Finish the open video, if any (it then replaces its file)."""
        if self._video is not None:
            _, writer, stack = self._video
            self._video = None
            writer.release()
            stack.close()
            self.written += 1

    def abort(self) -> None:
        """Drop an unfinished video (on an error): its temporary file is removed, nothing replaced."""
        if self._video is not None:
            _, writer, stack = self._video
            self._video = None
            writer.release()
            stack.__exit__(DataError, DataError("aborted"), None)


def _summary(p: Prediction) -> str:
    counts: dict[str, int] = {}
    for c in p.classes.tolist():
        counts[p.names[c]] = counts.get(p.names[c], 0) + 1
    return ", ".join(f"{n} {name}" for name, n in counts.items()) or "no detections"


def count_frames(files: Sequence[Path]) -> int | None:
    """Images plus video frames (as the videos' headers say), for the progress bar; None if a header lacks it."""
    import cv2

    total = 0
    for path in files:
        if not is_video(path):
            total += 1
            continue
        cap = cv2.VideoCapture(str(path))
        n = int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) if cap.isOpened() else 0
        cap.release()
        if n <= 0:
            return None
        total += n
    return total


def run_predict(source, weights=None, *, model=None, project: Path = Path("runs/predict"), name: str = "predict",
                save_images: bool = True, save_txt: bool = False, quiet: bool = False, **options) -> dict:
    """``yololab predict``: run a :class:`Predictor` (``options`` are its arguments) over ``source`` and write
    the outputs into ``project/name`` (:class:`PredictionWriter`). Returns a summary (counts, speed, mode)."""
    from yololab.progress import progress, write

    files = resolve_source(source)
    run_dir = Path(project) / name
    inside = [f for f in files if run_dir.resolve() in f.resolve().parents]
    if inside:
        raise DataError(f"{inside[0]}: the source lies inside the output folder {run_dir}; choose another "
                        "--project / --name")
    predictor = Predictor(weights, model=model, **options)
    meta = predictor.meta
    say = (lambda msg: None) if quiet else write
    how = f"{meta.runtime}, mode {meta.mode}, {meta.precision}"
    say(f"{meta.name} ({meta.num_classes} classes) from {meta.source}: {how}")
    writer = PredictionWriter(run_dir, save_images=save_images, save_txt=save_txt, inputs=files)
    skipped: list[str] = []
    detections = images = 0
    bar = progress(total=count_frames(files), enabled=not quiet, desc="predict", unit="img")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the skipped files are reported below, once each
            for p in predictor.stream(files, skipped=skipped, keep_images=save_images):
                writer.write(p)
                bar.update(1)
                images += 1
                detections += len(p)
                if p.frame is None:
                    say(f"{p.path}: {p.shape[0]}x{p.shape[1]}, {_summary(p)}")
        writer.close()
    except BaseException:
        writer.abort()
        raise
    finally:
        bar.close()
    for message in skipped:
        print(f"warning: skipped {message}", file=sys.stderr)
    if images == 0:
        raise DataError(f"{source}: none of its {len(files)} files could be read")
    speed = predictor.speed()
    say(f"{images} images/frames, {detections} detections; {speed['preprocess']:.1f} ms preprocess, "
        f"{speed['inference']:.1f} ms inference, {speed['postprocess']:.1f} ms postprocess per image "
        f"({how}); results in {run_dir}")
    return {"images": images, "detections": detections, "skipped": skipped, "speed": speed, "run_dir": run_dir,
            "meta": meta}
