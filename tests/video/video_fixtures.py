"""Paths of the real test clips and small helpers, imported by the video tests (a unique module name)."""

from __future__ import annotations

import hashlib
from pathlib import Path

VIDEOS = (Path(__file__).resolve().parents[2] / ".." / "shared" / "data" / "videos").resolve()
AVI = VIDEOS / "clip_320x240_mpeg4.avi"  # 164 frames, 25 fps, MPEG-4 Part 2 (UCF-101's codec and size)
MP4 = VIDEOS / "clip_340x256_h264.mp4"   # 32 frames, 30 fps, H.264


def hash_tree(root: Path) -> dict[str, str]:
    """sha256 of every file below ``root``: proves that nothing there was changed."""
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}
