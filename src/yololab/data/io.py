"""Small file-reading helpers shared by the data modules."""

from __future__ import annotations

import sys
from pathlib import Path

from PIL import Image


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
