"""Helper for CLI groups made of several modules.

A group (``yololab models``, ``yololab data``) is a sub-parser whose commands are contributed by
modules of its package. Each such module defines ``register_cli(subparsers)`` that adds its
command(s) with ``subparsers.add_parser(...)`` and sets ``func`` via ``set_defaults``. The group
lists the module names; a module that is not there yet is left out, so groups grow one file at a
time.
"""

from __future__ import annotations

import argparse
import importlib


def register_group(subparsers, name: str, help: str, modules: list[str], default_func=None):
    parser = subparsers.add_parser(name, help=help, description=help)
    parser.set_defaults(_parser=parser)
    if default_func is not None:
        parser.set_defaults(func=default_func)
    sub = parser.add_subparsers(dest="command", metavar="<command>")
    for module in modules:
        try:
            mod = importlib.import_module(module)
        except ModuleNotFoundError as e:
            if e.name == module:
                continue
            raise
        mod.register_cli(sub)
    return parser


def formatter() -> type[argparse.HelpFormatter]:
    return argparse.ArgumentDefaultsHelpFormatter
