"""Progress bars: one helper, so that every long job behaves the same way.

A bar is drawn on stderr only when stderr is a terminal, so logs, CI output and piped tables stay clean
(tqdm's own ``disable=None`` rule); ``enabled=False`` turns it off outright (``--quiet``, library calls).
Messages printed while a bar runs go through :func:`write`, so they do not tear the bar.
"""

from __future__ import annotations

import sys


def progress(iterable=None, *, enabled: bool = True, **kwargs):
    """A tqdm bar over ``iterable`` (or a manual one with ``total=``): shown only on a terminal."""
    from tqdm import tqdm

    return tqdm(iterable, disable=None if enabled else True, file=kwargs.pop("file", sys.stderr), **kwargs)


def write(message: str) -> None:
    """Print a line to stdout without breaking a bar that is being drawn on stderr."""
    from tqdm import tqdm

    tqdm.write(message, file=sys.stdout)
