"""The command line: lazy (help imports no torch / OpenCV / model code), loud about broken groups, and its
stdlib-only copies of implementation choices stay equal to the implementations."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from yololab import cli

HEAVY = ("torch", "torchvision", "cv2", "numpy", "PIL", "yaml", "matplotlib", "yololab.models.base",
         "yololab.checkpoint", "yololab.data.dataset")

PROBE = """
import json, sys
from yololab.cli import build_parser
parser = build_parser()
for argv in {argvs!r}:
    try:
        parser.parse_args(argv)
    except SystemExit:
        pass
print(json.dumps(sorted(m for m in sys.modules if m in {heavy!r} or m.startswith({heavy!r}))))
"""


def test_help_of_every_group_imports_nothing_heavy():
    """`yololab --help` and `yololab <group> --help` build the whole parser: no torch, cv2, numpy, model code."""
    argvs = [["--help"]] + [[group, "--help"] for group in cli.GROUPS]
    run = subprocess.run([sys.executable, "-c", PROBE.format(argvs=argvs, heavy=HEAVY)], capture_output=True,
                         text=True, timeout=120)
    assert run.returncode == 0, run.stderr[-2000:]
    assert json.loads(run.stdout.strip().splitlines()[-1]) == []
    assert "usage: yololab" in run.stdout and all(group in run.stdout for group in cli.GROUPS)


def test_every_command_has_help(capsys):
    parser = cli.build_parser()
    groups = parser._subparsers._group_actions[0].choices
    for name, group in groups.items():
        with pytest.raises(SystemExit) as e:
            parser.parse_args([name, "--help"])
        assert e.value.code == 0
        commands = [a for a in group._actions if isinstance(a, type(parser._subparsers._group_actions[0]))]
        for command in (commands[0].choices if commands else {}):
            with pytest.raises(SystemExit) as e:
                parser.parse_args([name, command, "--help"])
            assert e.value.code == 0, (name, command)
    assert "convert-weights" in capsys.readouterr().out


def test_a_mistyped_group_module_fails_loudly(monkeypatch):
    monkeypatch.setitem(cli.GROUPS, "typo", "yololab.no_such_module")
    with pytest.raises(ModuleNotFoundError, match="yololab.no_such_module"):
        cli.build_parser()


def test_numeric_options_are_validated_before_any_work(capsys):
    assert cli.main(["models", "summary", "yolov8n", "--imgsz", "-3"]) == 2
    assert "expected a positive integer, got -3" in capsys.readouterr().err


def test_cli_choices_match_the_implementations():
    from yololab.analysis.blocks import BLOCKS
    from yololab.analysis.diagrams import FORMATS
    from yololab.analysis.explain import IDEAS
    from yololab.data import cli as data_cli
    from yololab.data.download import DATASETS
    from yololab.data.formats import READERS, WRITERS
    from yololab.data.synthetic import CLASSES
    from yololab.models import cli as models_cli
    from yololab.study import cli as study_cli
    from yololab.study.sota import METRICS

    assert models_cli.DIAGRAM_FORMATS == FORMATS
    assert models_cli.DIAGRAM_BLOCKS == tuple(BLOCKS)
    assert models_cli.EXPLAIN_IDEAS == IDEAS
    assert set(data_cli.CONVERT_FROM) == set(READERS) and set(data_cli.CONVERT_TO) == set(WRITERS)
    assert set(data_cli.DOWNLOADS) == set(DATASETS)
    assert list(data_cli.SHAPES) == CLASSES
    assert study_cli.TASKS == tuple(METRICS)
