"""``yololab sota``: the sourced state-of-the-art table and its plots.

Commands come from the modules below, each defining ``register_cli(subparsers)``.
"""

from yololab._cli_group import register_group

MODULES = [
    "yololab.study.sota",  # validate, plot
]


def register(subparsers):
    register_group(subparsers, "sota", "State-of-the-art table: validate, plot.", MODULES)
