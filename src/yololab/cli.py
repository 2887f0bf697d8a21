"""The one entry point: ``yololab <group> <command> --help``.

This module only parses arguments. Each group lives beside the code it drives and exposes
``register(subparsers)``, which adds its sub-parser and sets ``func`` on the parsed namespace to a
callable taking that namespace. Groups are listed in ``GROUPS``; adding one is one line here.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys

from yololab import __version__
from yololab.errors import YololabError

# group name -> module with register(subparsers)
GROUPS = {
    "models": "yololab.models.cli",
    "data": "yololab.data.cli",
    "sota": "yololab.study.cli",
    "demo": "yololab.demo",
    "classify": "yololab.classify.cli",
    "cam": "yololab.classify.cam_cli",
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="yololab",
        description="Study, train and compare real-time vision models (YOLOv3 -> YOLO11).",
    )
    parser.add_argument("--version", action="version", version=f"yololab {__version__}")
    sub = parser.add_subparsers(dest="group", metavar="<group>")
    for name, module in GROUPS.items():
        try:
            mod = importlib.import_module(module)
        except ModuleNotFoundError as e:  # a group whose module is not written yet
            if e.name == module:
                continue
            raise
        mod.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    func = getattr(args, "func", None)
    if func is None:
        # `yololab` or `yololab models` alone: show the help of what was given
        (getattr(args, "_parser", None) or parser).print_help()
        return 0
    try:
        result = func(args)
    except YololabError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # output piped into `head` and the reader went away: not an error of ours
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 0
    return int(result or 0)


if __name__ == "__main__":
    sys.exit(main())
