"""``yololab video predict``: the top-5 classes of one video, and optionally the video with its label drawn."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import torch

from yololab.video.datasets import ClipConfig, VideoClipDataset, VideoList
from yololab.video.decode import open_video
from yololab.video.task import load_video_checkpoint, normalize


def predict_video(weights: str | Path, video: str | Path, clips: int = 3, crops: int = 1, backend: str = "auto"):
    """[(class, probability)] sorted best first, from ``clips x crops`` views averaged."""
    model, meta = load_video_checkpoint(weights)
    cfg = ClipConfig(**{**meta["clip"], "backend": backend})
    ds = VideoClipDataset(VideoList([(Path(video), 0)], meta["classes"]), cfg, train=False, num_clips=clips,
                          num_crops=crops)
    views = ds.to_tensor(ds.load_views(0))  # DataError names the file when it cannot be read
    with torch.no_grad():
        probs = model(normalize(views, cfg.layout, meta["normalization"])).float().softmax(1).mean(0)
    order = probs.argsort(descending=True).tolist()
    return [(meta["classes"][i], float(probs[i])) for i in order]


def write_labelled(video: str | Path, out: str | Path, text: str, chunk: int = 64) -> Path:
    """Copy ``video`` to ``out`` (.mp4 / .avi) with ``text`` drawn in the top-left corner of every frame."""
    from yololab.video.synth import write_video

    with open_video(video) as reader:
        frames = []
        for start in range(0, reader.num_frames, chunk):
            batch = reader.read(range(start, min(start + chunk, reader.num_frames)))
            for img in batch:
                img = np.ascontiguousarray(img[: img.shape[0] // 2 * 2, : img.shape[1] // 2 * 2])
                scale = max(0.4, img.shape[0] / 400)
                (w, h), _ = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, scale, 1)
                cv2.rectangle(img, (0, 0), (w + 8, h + 10), (0, 0, 0), -1)
                cv2.putText(img, text, (4, h + 4), cv2.FONT_HERSHEY_SIMPLEX, scale, (255, 255, 255), 1, cv2.LINE_AA)
                frames.append(img)
        fps = round(reader.fps) or 25
    return write_video(out, np.stack(frames), fps=fps)
