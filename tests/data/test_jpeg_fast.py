"""The fast JPEG path of read_image: same pixels as OpenCV, and OpenCV wherever it would differ."""

import io

import cv2
import numpy as np
from PIL import Image

from helpers import shared_data
from yololab.data import io as data_io
from yololab.data.io import jpeg_exif_orientation, read_image



def _jpeg(arr: np.ndarray, orientation: int | None = None) -> bytes:
    im = Image.fromarray(arr)
    out = io.BytesIO()
    if orientation is None:
        im.save(out, "JPEG", quality=90)
    else:
        exif = Image.Exif()
        exif[0x0112] = orientation
        im.save(out, "JPEG", quality=90, exif=exif.tobytes())
    return out.getvalue()


def test_exif_orientation_parser():
    rgb = np.random.default_rng(0).integers(0, 255, (24, 40, 3), np.uint8)
    assert jpeg_exif_orientation(_jpeg(rgb)) is None
    for o in (1, 3, 6, 8):
        assert jpeg_exif_orientation(_jpeg(rgb, o)) == o
    assert jpeg_exif_orientation(b"not a jpeg") is None
    assert jpeg_exif_orientation(b"\xff\xd8\xff\xe1\x00\x10Exif\x00\x00II*\x00\xff\xff") is None  # malformed EXIF


def test_fast_path_gives_opencv_pixels(tmp_path, monkeypatch):
    rng = np.random.default_rng(1)
    files = sorted(shared_data("coco8", "images").glob("*/*.jpg"))
    for k, (arr, o) in enumerate([(rng.integers(0, 255, (37, 53, 3), np.uint8), None),
                                  (rng.integers(0, 255, (37, 53), np.uint8), None),  # grayscale JPEG
                                  (rng.integers(0, 255, (37, 53, 3), np.uint8), 6),  # rotated by EXIF
                                  (rng.integers(0, 255, (37, 53, 3), np.uint8), 1)]):
        p = tmp_path / f"{k}.jpg"
        p.write_bytes(_jpeg(arr, o))
        files.append(p)
    truncated = tmp_path / "cut.jpg"
    truncated.write_bytes(files[-1].read_bytes()[:-200])
    files.append(truncated)

    calls = []
    real = data_io._decode_jpeg_fast
    monkeypatch.setattr(data_io, "_decode_jpeg_fast", lambda buf: calls.append(real(buf) is not None) or real(buf))
    for f in files:
        ours = read_image(f)
        buf = np.fromfile(f, np.uint8)
        ref = cv2.imdecode(buf, cv2.IMREAD_COLOR)
        if ref is None:  # the truncated file: read_image recovers it through OpenCV
            ref = cv2.imdecode(np.concatenate([buf, np.frombuffer(b"\xff\xd9", np.uint8)]), cv2.IMREAD_COLOR)
        assert ours.shape == ref.shape and np.array_equal(ours, ref), f
    # the plain JPEGs took the fast path; the EXIF-rotated and the truncated one did not
    assert calls[-5:] == [True, True, False, True, False]
