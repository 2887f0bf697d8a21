"""What every ``yololab/<package>/cli.py`` uses to declare its group: standard library only.

A group module declares its commands and their arguments with argparse and imports the code a command runs
inside that command's function, so that building the whole parser (``yololab --help``) imports no torch, no
OpenCV and no model code. See docs/design.md, "Adding a command group".
"""

from __future__ import annotations

import argparse

FORMATTER = argparse.ArgumentDefaultsHelpFormatter


def add_group(subparsers, name: str, help: str, default_func=None):
    """Add the group ``name`` (``yololab <name> ...``) and return the sub-parsers its commands are added to.

    ``yololab <name>`` alone runs ``default_func`` if given, else prints the group's help.
    """
    parser = subparsers.add_parser(name, help=help, description=help, formatter_class=FORMATTER)
    parser.set_defaults(_parser=parser)
    if default_func is not None:
        parser.set_defaults(func=default_func)
    return parser.add_subparsers(dest="command", metavar="<command>")


def _integer(text: str, minimum: int, expected: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected {expected}, got {text!r}") from None
    if value < minimum:
        raise argparse.ArgumentTypeError(f"expected {expected}, got {value}")
    return value


def positive_int(text: str) -> int:
    """argparse type: an integer > 0 (sizes, counts), refused before any work starts."""
    return _integer(text, 1, "a positive integer")


def non_negative_int(text: str) -> int:
    """argparse type: an integer >= 0 (worker counts, where 0 means in-process)."""
    return _integer(text, 0, "an integer >= 0")
