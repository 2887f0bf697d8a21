"""Reading images: the one decoder every data module uses (OpenCV, simplejpeg for plain JPEGs), PIL's own
``open``, EXIF orientation, and reduced-size JPEG decoding for large photos."""

from __future__ import annotations

import sys
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

from yololab.errors import DataError

try:  # optional: a faster JPEG decoder (see _decode_jpeg_fast)
    import simplejpeg
except ImportError:  # pragma: no cover
    simplejpeg = None


def read_image(path: str | Path) -> np.ndarray:
    """Decode an image to an (H, W, 3) uint8 BGR array, EXIF orientation applied.

    Grayscale, RGBA and 16-bit images come back as 8-bit BGR (alpha dropped). Reads the bytes
    with NumPy so that paths with non-ASCII characters work on every platform.
    Raises :class:`DataError` saying why an image cannot be read.
    """
    path = Path(path)
    try:
        buf = np.fromfile(path, dtype=np.uint8)
    except OSError as e:
        raise DataError(f"{path}: cannot read image: {e.strerror or e}") from None
    if buf.size == 0:
        raise DataError(f"{path}: empty file, not an image")
    img = _decode_jpeg_fast(buf)
    if img is not None:
        return img
    img = cv2.imdecode(buf, cv2.IMREAD_COLOR)  # applies EXIF orientation, converts to 3 channels
    if img is None and buf[:2].tobytes() == b"\xff\xd8" and buf[-2:].tobytes() != b"\xff\xd9":
        # A JPEG cut short: OpenCV refuses it, but given its end marker back, libjpeg decodes what
        # is there and fills the missing rows with grey (the same recovery Ultralytics does).
        img = cv2.imdecode(np.concatenate([buf, np.frombuffer(b"\xff\xd9", np.uint8)]), cv2.IMREAD_COLOR)
    if img is None:
        raise DataError(f"{path}: cannot decode image (corrupt, truncated or not an image)")
    return img


def _decode_jpeg_fast(buf: np.ndarray) -> np.ndarray | None:
    """A complete JPEG with no EXIF rotation, decoded by simplejpeg; None for anything else.

    simplejpeg calls libjpeg-turbo's SIMD decoder directly: the same pixels as ``cv2.imdecode``
    (tested bit for bit) at about half the CPU time here (0.8 vs 1.7 ms for a 640x480 photo), which
    is the largest single cost of the training loader. It neither applies EXIF orientation nor
    recovers damaged files, so rotated, truncated or corrupt JPEGs (``strict`` raises on any libjpeg
    warning), CMYK ones and every other format go to OpenCV as before.
    """
    if simplejpeg is None or buf[:2].tobytes() != b"\xff\xd8" or buf[-2:].tobytes() != b"\xff\xd9":
        return None
    if jpeg_exif_orientation(buf) not in (None, 1):
        return None
    try:
        return simplejpeg.decode_jpeg(buf, colorspace="BGR", strict=True)
    except ValueError:
        return None



def pil_open(path: str | Path) -> Image.Image:
    """PIL's own ``Image.open``, even after another package has replaced it.

    Importing ``ultralytics`` (a reference package the tests use) swaps ``PIL.Image.open`` for a
    wrapper that, on a file PIL cannot identify, tries to pip-install a HEIF plugin and then opens
    the file again. A dataset check meets such files on purpose and must neither touch the network
    nor the environment, so it calls the original function that wrapper keeps.
    """
    opener = Image.open
    patches = sys.modules.get("ultralytics.utils.patches")
    if patches is not None and getattr(opener, "__module__", "") == patches.__name__:
        opener = getattr(patches, "_image_open", opener)
    return opener(path)


def jpeg_exif_orientation(data: bytes | memoryview) -> int | None:
    """The EXIF orientation tag (1-8) of a JPEG held in memory, or None where it has none.

    Walks the marker segments up to the image data, reads the TIFF header of an ``Exif`` APP1 segment
    and looks for tag 0x0112 in its first directory (IFD0), where EXIF keeps it. Malformed EXIF is
    treated as absent; callers that need an orientation then use a decoder that reads EXIF itself.
    """
    data = memoryview(data).cast("B")
    n = len(data)
    if n < 4 or data[0] != 0xFF or data[1] != 0xD8:
        return None
    i = 2
    while i + 4 <= n:
        if data[i] != 0xFF:
            return None
        marker = data[i + 1]
        if marker == 0xFF:  # fill byte
            i += 1
            continue
        if marker == 0xDA or marker == 0xD9:  # start of scan / end of image: no more metadata
            return None
        if 0xD0 <= marker <= 0xD7 or marker == 0x01:  # markers without a length
            i += 2
            continue
        length = (data[i + 2] << 8) | data[i + 3]
        seg = data[i + 4:i + 2 + length]
        if marker == 0xE1 and bytes(seg[:6]) == b"Exif\x00\x00":
            return _tiff_orientation(bytes(seg[6:]))
        i += 2 + length
    return None


def _tiff_orientation(tiff: bytes) -> int | None:
    if len(tiff) < 8 or tiff[:2] not in (b"II", b"MM"):
        return None
    order = "little" if tiff[:2] == b"II" else "big"

    def u(off: int, size: int) -> int:
        return int.from_bytes(tiff[off:off + size], order)

    ifd = u(4, 4)
    if ifd + 2 > len(tiff):
        return None
    for k in range(u(ifd, 2)):
        entry = ifd + 2 + 12 * k
        if entry + 12 > len(tiff):
            return None
        if u(entry, 2) == 0x0112:  # Orientation, a SHORT stored in the value field
            value = u(entry + 8, 2)
            return value if 1 <= value <= 8 else None
    return None


def read_jpeg_reduced(path: str, factor: int, shape: tuple[int, int]) -> np.ndarray | None:
    """Decode a JPEG at 1/2, 1/4 or 1/8 of its size (the largest of these not above ``factor``), or
    return None when ``path`` is not a JPEG or does not decode to the expected size (the caller then
    decodes it fully, with the full reader's error messages).

    libjpeg scales in the DCT domain while decoding (OpenCV's ``IMREAD_REDUCED_COLOR_*``; PIL's
    ``draft`` does the same), so a 4000 px photo trained at 640 px costs a fraction of a full decode,
    and the smaller image is also cheaper to resize. The pixels are an average over each 2x2, 4x4 or
    8x8 block, where a straight linear resize from full size samples a few pixels and aliases: the
    training image differs slightly from Ultralytics' (which decodes fully), never its geometry.
    ``shape`` is the full (h, w) after EXIF orientation, which OpenCV applies here too.
    """
    reduce = 8 if factor >= 8 else 4 if factor >= 4 else 2 if factor >= 2 else 1
    if reduce == 1:
        return None
    try:
        buf = np.fromfile(path, dtype=np.uint8)
    except OSError:
        return None
    if buf[:2].tobytes() != b"\xff\xd8":  # not a JPEG: other decoders cannot scale while decoding
        return None
    flag = {2: cv2.IMREAD_REDUCED_COLOR_2, 4: cv2.IMREAD_REDUCED_COLOR_4, 8: cv2.IMREAD_REDUCED_COLOR_8}[reduce]
    img = cv2.imdecode(buf, flag)
    h0, w0 = shape
    if img is None or img.shape[:2] != (-(-h0 // reduce), -(-w0 // reduce)):  # libjpeg rounds sizes up
        return None
    return img
