"""Read chosen frames of a video without decoding (or converting) the rest.

A clip needs 8-32 frames of a video that holds hundreds. The seed plan's loader decoded every frame,
turned each into a float tensor and cached the lot; here a reader decodes forward only up to the last
frame a clip needs, converts to RGB (and resizes) only the frames it keeps, as uint8, and seeks to the
key frame before the clip when that skips enough frames to pay.

Frame ``i`` is the ``i``-th frame in display order, as OpenCV, ffmpeg and every player count them
(for AVI files with packed B-frames the container's timestamps are not in display order, so indices
never come from timestamps). Decoders, compared by ``benchmarks/video_loading.py`` (table in
``docs/video.md``):

- ``opencv``: ``cv2.VideoCapture`` grabs frames from the start (no seek: OpenCV's frame seeking is
  not exact for every codec) and retrieves only the needed ones. Fastest when a clip spans the video
  (UCF-101's TSN sampling): its FFmpeg decodes H.264 with threads, 1.5-2x faster than PyAV here.
- ``pyav``: reads the key frames from the packet index, seeks to the one at or before the clip's first
  frame and decodes from there. Fastest for short clips late in long videos (dense sampling).
- ``auto`` (default): metadata from PyAV; OpenCV when the clip starts within the first
  :data:`SEEK_MIN` frames or no key frame lets a seek skip that many, PyAV's seek otherwise.

torchcodec would be a third decoder, but its wheels need the system's FFmpeg libraries, which PyAV's
and OpenCV's wheels bring along. Frame folders (the output of ``yololab video extract-frames``) are
read the same way: :class:`FrameFolderReader` loads only the image files a clip needs.
"""

from __future__ import annotations

import bisect
from pathlib import Path

import cv2
import numpy as np

from yololab.errors import DataError

VIDEO_EXTENSIONS = (".avi", ".mp4", ".mkv", ".webm", ".mov", ".m4v", ".mpg", ".mpeg")
FRAME_EXTENSIONS = (".jpg", ".jpeg", ".png")
BACKENDS = ("auto", "pyav", "opencv")
SEEK_MIN = 48  # frames a seek must skip before auto mode uses it (below that, decoding forward is cheaper)


def _resize_short(img: np.ndarray, short_side: int | None) -> np.ndarray:
    """Resize so the shorter side is ``short_side`` (keeping the aspect ratio); None keeps the size."""
    if not short_side:
        return img
    h, w = img.shape[:2]
    s = short_side / min(h, w)
    if s == 1:
        return img
    size = (max(1, round(w * s)), max(1, round(h * s)))
    return cv2.resize(img, size, interpolation=cv2.INTER_AREA if s < 1 else cv2.INTER_LINEAR)


class VideoReader:
    """One open video file: ``num_frames``, ``fps``, ``width``, ``height`` and :meth:`read`.

    Raises :class:`DataError` naming the file when it cannot be opened, holds no video stream or no
    frame, or when a requested frame cannot be decoded (a truncated or corrupt file).
    """

    def __init__(self, path: str | Path, backend: str = "auto"):
        if backend not in BACKENDS:
            raise ValueError(f"backend must be one of {BACKENDS}, got {backend!r}")
        self.path, self.backend = Path(path), backend
        if not self.path.is_file():
            raise DataError(f"{self.path}: video file not found")
        self._container = self._cap = None
        self._keyframes: list[int] | None = None  # display indices of key frames, found on demand
        self._keyframe_pts: list[int] = []
        (self._open_opencv if backend == "opencv" else self._open_pyav)()
        if self.num_frames <= 0:
            self.close()
            raise DataError(f"{self.path}: the video holds no frame")

    # ------------------------------------------------------------------ opening
    def _open_pyav(self) -> None:
        import av

        try:
            self._container = av.open(str(self.path))
        except (av.error.FFmpegError, UnicodeDecodeError) as e:
            raise DataError(f"{self.path}: cannot open the video ({e.__class__.__name__}: {e})") from None
        if not self._container.streams.video:
            self.close()
            raise DataError(f"{self.path}: the file holds no video stream")
        self._stream = s = self._container.streams.video[0]
        s.thread_type = "AUTO"  # frame threads: H.264 decodes 1.5x faster on 2 cores
        rate = s.average_rate or s.guessed_rate
        self.fps = float(rate) if rate else 0.0
        self.width, self.height = s.codec_context.width, s.codec_context.height
        self.num_frames = s.frames or self._count_packets()

    def _open_opencv(self) -> None:
        self._cap = cv2.VideoCapture(str(self.path))
        if not self._cap.isOpened():
            self._cap = None
            raise DataError(f"{self.path}: cannot open the video (OpenCV)")
        if self.backend == "opencv":  # auto mode has PyAV's metadata (exact frame count)
            self.fps = float(self._cap.get(cv2.CAP_PROP_FPS))
            self.width = int(self._cap.get(cv2.CAP_PROP_FRAME_WIDTH))
            self.height = int(self._cap.get(cv2.CAP_PROP_FRAME_HEIGHT))
            self.num_frames = max(0, int(self._cap.get(cv2.CAP_PROP_FRAME_COUNT)))

    def _count_packets(self) -> int:
        """Frames = video packets with data (containers like WebM/MKV store no frame count); records key frames."""
        import av

        n, keys, keys_pts = 0, [], []
        try:
            self._container.seek(0, stream=self._stream)
            for pkt in self._container.demux(self._stream):
                if pkt.size == 0:
                    continue
                if pkt.is_keyframe:
                    keys.append(n)
                    keys_pts.append(pkt.pts)
                n += 1
        except av.error.FFmpegError:
            pass  # a damaged tail: keep what was read; a frame that cannot be decoded fails in read()
        self._keyframes, self._keyframe_pts = keys, keys_pts
        return n

    # ------------------------------------------------------------------ reading
    def read(self, indices, short_side: int | None = None) -> np.ndarray:
        """RGB uint8 frames ``(len(indices), H, W, 3)`` in the order of ``indices`` (repeats allowed).

        ``short_side`` resizes each kept frame so its shorter side has that many pixels.
        """
        idx = [int(i) for i in indices]
        if not idx:
            raise ValueError("no frame index given")
        if min(idx) < 0 or max(idx) >= self.num_frames:
            raise ValueError(f"{self.path}: frame indices must lie in [0, {self.num_frames}), got "
                             f"{min(idx)}..{max(idx)}")
        wanted = sorted(set(idx))
        use_pyav = self.backend == "pyav" or (self.backend == "auto" and self._start_for(wanted[0])[0] >= SEEK_MIN)
        if not use_pyav and self._cap is None:
            self._open_opencv()
        got = (self._read_pyav if use_pyav else self._read_opencv)(wanted, short_side)
        missing = [i for i in wanted if i not in got]
        if missing:
            raise DataError(f"{self.path}: frame {missing[0]} of {self.num_frames} could not be decoded "
                            f"(truncated or corrupt video)")
        return np.stack([got[i] for i in idx])

    def _read_opencv(self, wanted: list[int], short_side) -> dict[int, np.ndarray]:
        cap, got, want = self._cap, {}, set(wanted)
        cap.set(cv2.CAP_PROP_POS_FRAMES, 0)
        for i in range(wanted[-1] + 1):
            if not cap.grab():
                break
            if i in want:
                ok, bgr = cap.retrieve()
                if ok:
                    got[i] = _resize_short(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB), short_side)
        return got

    def _start_for(self, first: int) -> tuple[int, int | None]:
        """(display index, pts) of the key frame to seek to before decoding frame ``first``."""
        if first == 0 or (self.backend == "auto" and first < SEEK_MIN):
            return 0, None
        if self._keyframes is None:
            self._count_packets()
        k = bisect.bisect_right(self._keyframes, first) - 1
        if k <= 0:
            return 0, None
        return self._keyframes[k], self._keyframe_pts[k]

    def _read_pyav(self, wanted: list[int], short_side) -> dict[int, np.ndarray]:
        import av

        start, pts = self._start_for(wanted[0])
        try:
            got = self._decode_from(start, pts, wanted, short_side)
            if got is None:  # the seek did not land on the key frame (open GOP, odd index): decode from 0
                got = self._decode_from(0, None, wanted, short_side)
        except av.error.FFmpegError:
            got = {}
        return got or {}

    def _decode_from(self, start: int, pts: int | None, wanted: list[int], short_side):
        """Decode from key frame ``start`` (display index) to the last wanted frame; None if the seek missed."""
        c, s = self._container, self._stream
        c.seek(pts if pts is not None else 0, stream=s, backward=True, any_frame=False)
        want, got, i = set(wanted), {}, start
        for frame in c.decode(s):
            if i == start and pts is not None and frame.pts != pts:
                return None
            if i in want:
                got[i] = _resize_short(self._to_rgb(frame), short_side)
            i += 1
            if i > wanted[-1]:
                break
        return got

    @staticmethod
    def _to_rgb(frame) -> np.ndarray:
        # FFmpeg's swscale, as OpenCV uses it: both decoders give the same pixels
        return frame.to_ndarray(format="rgb24")

    def close(self) -> None:
        if self._container is not None:
            self._container.close()
            self._container = None
        if self._cap is not None:
            self._cap.release()
            self._cap = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


class FrameFolderReader:
    """A folder of frame images (``00001.jpg``, ... in name order), read like a :class:`VideoReader`."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        if not self.path.is_dir():
            raise DataError(f"{self.path}: frame folder not found")
        self.files = sorted(p for p in self.path.iterdir() if p.suffix.lower() in FRAME_EXTENSIONS)
        self.num_frames = len(self.files)
        if not self.files:
            raise DataError(f"{self.path}: the frame folder holds no .jpg/.png image")
        self.fps = 0.0
        first = self._load(0)
        self.height, self.width = first.shape[:2]

    def _load(self, i: int) -> np.ndarray:
        bgr = cv2.imread(str(self.files[i]), cv2.IMREAD_COLOR)
        if bgr is None:
            raise DataError(f"{self.files[i]}: not a readable image")
        return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)

    def read(self, indices, short_side: int | None = None) -> np.ndarray:
        idx = [int(i) for i in indices]
        if min(idx) < 0 or max(idx) >= self.num_frames:
            raise ValueError(f"{self.path}: frame indices must lie in [0, {self.num_frames})")
        got = {i: _resize_short(self._load(i), short_side) for i in sorted(set(idx))}
        return np.stack([got[i] for i in idx])

    def close(self) -> None:
        pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def open_video(path: str | Path, backend: str = "auto") -> VideoReader | FrameFolderReader:
    """A reader for a video file or a folder of extracted frames."""
    return FrameFolderReader(path) if Path(path).is_dir() else VideoReader(path, backend)
