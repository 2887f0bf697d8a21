"""What every ``yololab/<package>/cli.py`` uses to declare its group: standard library only.

A group module declares its commands and their arguments with argparse and imports the code a command runs
inside that command's function, so that building the whole parser (``yololab --help``) imports no torch, no
OpenCV and no model code. See docs/design.md, "Adding a command group" and "CLI conventions".

Bad input is refused before any work, as one ``error: ...`` line and exit code 2:

* argparse types check each value as it is parsed: :func:`positive_int`, :func:`non_negative_int`,
  :func:`positive_float`, :func:`probability`, :func:`input_file`, :func:`input_path`, :func:`output_file`,
  :func:`output_dir`, :func:`url`;
* :func:`refuse_to_replace`, called first thing in a command function, refuses to replace existing outputs
  unless the user passed ``--overwrite`` (:func:`add_overwrite`) or ``--exist-ok`` for a run folder.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Callable, Iterable
from pathlib import Path
from urllib.parse import urlparse


class UsageError(Exception):
    """Command-line input refused after parsing (an output that exists, say): one error line, exit 2."""


class ArgumentParser(argparse.ArgumentParser):
    """argparse with one-line errors and a ``--debug`` flag accepted at every level.

    A parse error prints ``error: <command>: <problem> (see <command> --help)`` and exits with 2, without the
    usage block, so that every refusal of the CLI is one line. Sub-parsers inherit the class.
    """

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if self.add_help:  # every parser the CLI builds (argparse makes none without help)
            self.add_argument("--debug", action="store_true", default=argparse.SUPPRESS,
                              help="on an error, show the full traceback (or set YOLOLAB_DEBUG=1)")

    def error(self, message: str):
        self.exit(2, f"error: {self.prog}: {message} (see `{self.prog} --help`)\n")


class HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Show ``(default: X)`` only where it says something: not for required options, flags, ``None``
    defaults, or help texts that already state their default."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        if (action.required or any(action.default is d for d in (None, False, argparse.SUPPRESS))
                or "default" in text.lower()):
            return text
        return super()._get_help_string(action)


FORMATTER = HelpFormatter


def add_group(subparsers, name: str, help: str, default_func=None):
    """Add the group ``name`` (``yololab <name> ...``) and return the sub-parsers its commands are added to.

    ``yololab <name>`` alone runs ``default_func`` if given, else prints the group's help.
    """
    parser = subparsers.add_parser(name, help=help, description=help, formatter_class=FORMATTER)
    parser.set_defaults(_parser=parser)
    if default_func is not None:
        parser.set_defaults(func=default_func)
    return parser.add_subparsers(dest="command", metavar="<command>")


# ---------------------------------------------------------------------------------------------
# argparse types: numbers
# ---------------------------------------------------------------------------------------------


def _number(text: str, kind: type, ok: Callable[[float], bool], expected: str):
    try:
        value = kind(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected {expected}, got {text!r}") from None
    if not ok(value):
        raise argparse.ArgumentTypeError(f"expected {expected}, got {value}")
    return value


def positive_int(text: str) -> int:
    """argparse type: an integer > 0 (sizes, counts, dpi, epochs)."""
    return _number(text, int, lambda v: v >= 1, "a positive integer")


def non_negative_int(text: str) -> int:
    """argparse type: an integer >= 0 (retries, worker counts where 0 means in-process)."""
    return _number(text, int, lambda v: v >= 0, "an integer >= 0")


def positive_float(text: str) -> float:
    """argparse type: a finite number > 0 (learning rates, timeouts)."""
    return _number(text, float, lambda v: 0 < v < float("inf"), "a positive number")


def probability(text: str) -> float:
    """argparse type: a number in [0, 1] (augmentation probabilities, thresholds, fractions)."""
    return _number(text, float, lambda v: 0 <= v <= 1, "a number in [0, 1]")


# ---------------------------------------------------------------------------------------------
# argparse types: paths
# ---------------------------------------------------------------------------------------------


def _blocking_parent(path: Path) -> Path | None:
    """The first existing ancestor of ``path`` if it is not a folder (nothing can be created below it)."""
    for parent in path.absolute().parents:
        if parent.exists():
            return None if parent.is_dir() else parent
    return None


def input_file(text: str) -> Path:
    """argparse type: a file that exists."""
    path = Path(text).expanduser()
    if path.is_dir():
        raise argparse.ArgumentTypeError(f"{text} is a folder, expected a file")
    if not path.is_file():
        raise argparse.ArgumentTypeError(f"{text} does not exist")
    return path


def input_path(text: str) -> Path:
    """argparse type: a file or folder that exists (a dataset given by its data.yaml or its folder)."""
    path = Path(text).expanduser()
    if not path.exists():
        raise argparse.ArgumentTypeError(f"{text} does not exist")
    return path


def output_dir(text: str) -> Path:
    """argparse type: a folder to write into: new, or an existing folder (never an existing file)."""
    path = Path(text).expanduser()
    if path.exists() and not path.is_dir():
        raise argparse.ArgumentTypeError(f"{text} exists and is a file, expected a folder")
    blocker = _blocking_parent(path)
    if blocker is not None:
        raise argparse.ArgumentTypeError(f"{text}: {blocker} is a file, so no folder can be made there")
    return path


def output_file(*suffixes: str) -> Callable[[str], Path]:
    """argparse type factory: a file to write (never an existing folder), ending in one of ``suffixes`` if given.

    ``type=output_file(".png", ".svg", ".pdf")``; the suffix is compared without case.
    """
    allowed = tuple(s.lower() for s in suffixes)

    def parse(text: str) -> Path:
        path = Path(text).expanduser()
        if path.is_dir():
            raise argparse.ArgumentTypeError(f"{text} is a folder, expected a file name")
        if allowed and path.suffix.lower() not in allowed:
            raise argparse.ArgumentTypeError(f"{text}: expected a file name ending in {', '.join(allowed)}")
        blocker = _blocking_parent(path)
        if blocker is not None:
            raise argparse.ArgumentTypeError(f"{text}: {blocker} is a file, so no folder can be made there")
        return path

    parse.__name__ = "output file"  # argparse names the type in some messages
    return parse


def url(text: str) -> str:
    """argparse type: an http(s):// or file:// address."""
    parts = urlparse(text)
    if parts.scheme not in ("http", "https", "file") or (parts.scheme != "file" and not parts.netloc):
        raise argparse.ArgumentTypeError(f"expected an http://, https:// or file:// address, got {text!r}")
    return text


# ---------------------------------------------------------------------------------------------
# outputs that exist
# ---------------------------------------------------------------------------------------------


def add_overwrite(parser: argparse.ArgumentParser, what: str) -> None:
    """The ``--overwrite`` flag, the one spelling every command uses (run folders use ``--exist-ok``)."""
    parser.add_argument("--overwrite", action="store_true", help=f"replace {what} if already there")


def refuse_to_replace(paths: Iterable[str | os.PathLike], allowed: bool, flag: str = "--overwrite") -> None:
    """Raise :class:`UsageError` if any of ``paths`` exists and ``allowed`` is false; call it before any work.

    A folder counts as existing when it holds anything: an empty folder is replaced silently.
    """
    if allowed:
        return
    existing = [Path(p) for p in paths
                if Path(p).is_file() or Path(p).is_symlink() or (Path(p).is_dir() and any(Path(p).iterdir()))]
    if existing:
        more = f" (and {len(existing) - 1} more of the outputs)" if len(existing) > 1 else ""
        raise UsageError(f"{existing[0]} exists{more}; pass {flag} to replace it, or choose another output")
