"""``yololab data``: convert, check, synthesize, preview and download detection datasets.

Commands come from the modules below, each defining ``register_cli(subparsers)``.
"""

from yololab._cli_group import register_group

MODULES = [
    "yololab.data.formats",    # convert
    "yololab.data.check",      # check
    "yololab.data.synthetic",  # synth
    "yololab.data.preview",    # preview
    "yololab.data.download",   # download
]


def register(subparsers):
    register_group(subparsers, "data", "Detection datasets: convert, check, synth, preview, download.", MODULES)
