"""The one entry point: ``yololab <group> <command> --help``.

This module only parses arguments. Each group is a module with ``register(subparsers)`` that adds its
sub-parser and sets ``func`` on the parsed namespace to a callable taking that namespace. Group modules import
only the standard library at their top (a command imports what it runs, inside its function), so building the
whole parser, for ``yololab --help`` or ``yololab models --help``, imports no torch, OpenCV or model code.
Adding a group is one line in ``GROUPS`` (docs/design.md, "Adding a command group").

Every error that reaches :func:`main` is printed as one ``error: ...`` line naming the input at fault, with
exit code 2; ``--debug`` (at any level of the command) or ``YOLOLAB_DEBUG=1`` prints the traceback too.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
import traceback

from yololab import __version__
from yololab._cli_group import ArgumentParser, UsageError
from yololab.engine.args import parse_args  # train commands take KEY=VALUE settings anywhere among their flags
from yololab.errors import YololabError

# group name -> module with register(subparsers); each module imports only the standard library at its top
GROUPS = {
    "models": "yololab.models.cli",
    "data": "yololab.data.cli",
    "sota": "yololab.study.cli",
    "translate": "yololab.translate.cli",
    "demo": "yololab.demo",
    "classify": "yololab.classify.cli",
    "cam": "yololab.analysis.cam_cli",
    "detect": "yololab.detect.cli",
    "deploy": "yololab.deploy.cli",  # predict, export, features, benchmark
    "video": "yololab.video.cli",
}


def build_parser() -> argparse.ArgumentParser:
    parser = ArgumentParser(
        prog="yololab",
        description="Study, train and compare real-time vision models (YOLOv3 -> YOLO11).",
    )
    parser.add_argument("--version", action="version", version=f"yololab {__version__}")
    sub = parser.add_subparsers(dest="group", metavar="<group>")
    for module in GROUPS.values():
        importlib.import_module(module).register(sub)
    return parser


# optional packages a command may need, by module name -> what to install (`make demo` installs the runtime only)
EXPORT_EXTRA = "(or: pip install -e '.[export]')"
OPTIONAL_PACKAGES = {"onnx": f"onnx {EXPORT_EXTRA}", "onnxruntime": f"onnxruntime {EXPORT_EXTRA}",
                     "nncf": f"nncf {EXPORT_EXTRA}", "ultralytics": "ultralytics==8.4.190 --no-deps"}


def error_line(e: BaseException) -> str:
    """One line that says what went wrong and, where Python knows it, with which file."""
    if isinstance(e, (YololabError, UsageError)):
        text = str(e)
    elif isinstance(e, ModuleNotFoundError) and (e.name or "").split(".")[0] in OPTIONAL_PACKAGES:
        name = e.name.split(".")[0]
        text = f"this command needs the package {name!r}, which is not installed: pip install {OPTIONAL_PACKAGES[name]}"
    elif isinstance(e, OSError) and e.filename is not None:
        files = f"{e.filename} -> {e.filename2}" if e.filename2 is not None else str(e.filename)
        text = f"{files}: {e.strerror or type(e).__name__}"
    else:
        text = (f"{type(e).__name__}: {e} (unexpected; run again with --debug or YOLOLAB_DEBUG=1 for the "
                f"traceback, and report it)")
    return "error: " + " ".join(line.strip() for line in text.splitlines() if line.strip())


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    try:
        args = parse_args(parser, argv)
    except SystemExit as e:  # --help (0) or a bad argument (2, after the parser printed its one line)
        return int(e.code or 0)
    func = getattr(args, "func", None)
    if func is None:
        # `yololab` or `yololab models` alone: show the help of what was given
        (getattr(args, "_parser", None) or parser).print_help()
        return 0
    try:
        result = func(args)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # output piped into `head` and the reader went away: not an error of ours
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 0
    except Exception as e:
        sys.stdout.flush()
        if getattr(args, "debug", False) or os.environ.get("YOLOLAB_DEBUG", "") not in ("", "0"):
            traceback.print_exc()
        print(error_line(e), file=sys.stderr)
        return 2
    return int(result or 0)


if __name__ == "__main__":
    sys.exit(main())
