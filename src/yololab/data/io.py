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
