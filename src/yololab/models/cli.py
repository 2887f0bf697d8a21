"""``yololab models``: list, summarize, draw and compare the model zoo.

With no command, ``yololab models`` prints the zoo table (same as ``yololab models list``).
Commands come from the modules below, each defining ``register_cli(subparsers)``.
"""

from yololab._cli_group import register_group

MODULES = [
    "yololab.models.inspect",   # list, summary, compare
    "yololab.models.diagrams",  # diagram
    "yololab.models.weights",   # convert-weights
]


def register(subparsers):
    def default(args):
        from yololab.models.inspect import cmd_list

        return cmd_list(args)

    register_group(subparsers, "models", "The YOLO model zoo: list, summary, diagram, compare.", MODULES,
                   default_func=default)
