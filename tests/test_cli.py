"""The command line: lazy (help imports no torch / OpenCV / model code), loud about broken groups, and its
stdlib-only copies of implementation choices stay equal to the implementations."""

from __future__ import annotations

import argparse
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
    commands = list(cli.build_parser()._subparsers._group_actions[0].choices)  # a group module may add several
    argvs = [["--help"]] + [[command, "--help"] for command in commands]
    run = subprocess.run([sys.executable, "-c", PROBE.format(argvs=argvs, heavy=HEAVY)], capture_output=True,
                         text=True, timeout=120)
    assert run.returncode == 0, run.stderr[-2000:]
    assert json.loads(run.stdout.strip().splitlines()[-1]) == []
    assert "usage: yololab" in run.stdout and all(command in run.stdout for command in commands)


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


def _walk(parser, path=("yololab",)):
    """(command path, parser, its one-line help in the listing above it) for every parser of the CLI."""
    yield path, parser, None
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            helps = {a.dest: a.help for a in action._choices_actions}
            for name, sub in action.choices.items():
                for item in _walk(sub, path + (name,)):
                    yield item if item[0] != path + (name,) else (item[0], item[1], helps.get(name))


def test_help_texts_are_consistent():
    """No '(default: None)' on required options or empty defaults, a default stated once, and one-line helps of
    commands written the same way (a capital, a full stop)."""
    commands = list(_walk(cli.build_parser()))
    assert len(commands) > 15
    for path, parser, listing in commands:
        text = parser.format_help()
        assert "(default: None)" not in text and "(default: False)" not in text, path
        formatter = parser._get_formatter()
        for action in parser._actions:
            shown = (formatter._get_help_string(action) or "").replace("%(default)s", "X")
            assert shown.lower().count("default") <= 1, (path, action.dest, shown)
            if action.required:
                assert "(default:" not in shown, (path, action.dest)
        if listing is not None:
            assert listing[0].isupper() and listing.endswith("."), (path, listing)


def test_progress_bars_only_on_a_terminal(monkeypatch):
    """One helper draws every bar, on stderr, only when stderr is a terminal; no module calls tqdm itself."""
    import io
    import pathlib

    from yololab.progress import progress

    class Terminal(io.StringIO):
        def isatty(self):
            return True

    monkeypatch.setattr(sys, "stderr", io.StringIO())
    assert progress(range(3)).disable  # piped, logged, captured: no bar
    monkeypatch.setattr(sys, "stderr", Terminal())
    bar = progress(range(3), desc="x")
    assert not bar.disable and list(bar) == [0, 1, 2] and "x: 100%" in sys.stderr.getvalue()
    assert progress(range(3), enabled=False).disable  # --quiet
    src = pathlib.Path(cli.__file__).parent
    direct = [str(p.relative_to(src)) for p in src.rglob("*.py")
              if p.name != "progress.py" and "tqdm" in p.read_text(encoding="utf-8")]
    assert direct == []


def test_a_missing_optional_package_is_named_with_its_install_line():
    """`make demo` installs the runtime only: `export` without onnx says what to install, not "unexpected"."""
    line = cli.error_line(ModuleNotFoundError("No module named 'onnx'", name="onnx"))
    assert line == "error: this command needs the package 'onnx', which is not installed: pip install onnx (or: pip " \
                   "install -e '.[export]')"
    assert "unexpected" in cli.error_line(ModuleNotFoundError("No module named 'yololab.nope'", name="yololab.nope"))
