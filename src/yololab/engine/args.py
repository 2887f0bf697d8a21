"""Command-line helpers for a task's ``train`` command: every TrainConfig field as a flag, ``--cfg
FILE.yaml``, and ``key=value`` arguments as ``yolo train`` takes them.

(Not named ``cli.py``: in yololab a ``cli`` module is a command group at the top of the import chain,
and this one is a library that task code below it imports.)

Usage in a task's CLI module (standard library only at import; this module imports no torch)::

    p = subparsers.add_parser("train", ...)
    p.add_argument("--data", required=True)            # the task's own flags first
    p.add_argument("--imgsz", type=int, default=640)
    add_train_args(p, {"epochs": 100, "nbs": 64})       # then the engine's, with the task's defaults
    ...
    def cmd_train(args):
        cfg = config_from_args(args)   # also fills args.imgsz etc. from --cfg / key=value
        Trainer(MyTask(cfg, data=args.data, imgsz=args.imgsz), cfg).fit()

Precedence, for the engine's settings and the task's own flags alike: built-in default < the task's
default < ``--cfg`` YAML < command line (``--flag value`` or ``key=value``; giving one setting both
ways with different values is an error). Unknown keys, bad values and non-positive sizes are
:class:`ConfigError` s naming the key (with a "did you mean"), before any work.
"""

from __future__ import annotations

import argparse
import difflib
from pathlib import Path

from yololab.engine.config import (
    AMP_MODES,
    CHANNELS_LAST,
    FIELDS,
    OPTIMIZERS,
    SCHEDULERS,
    TrainConfig,
)
from yololab.errors import ConfigError
from yololab.fileio import read_yaml

CHOICES = {"optimizer": OPTIMIZERS, "scheduler": SCHEDULERS, "amp": AMP_MODES, "channels_last": CHANNELS_LAST}
TRUE, FALSE = ("true", "yes", "on", "1"), ("false", "no", "off", "0")


def parse_bool(text: str) -> bool:
    low = str(text).strip().lower()
    if low in TRUE or low in FALSE:
        return low in TRUE
    raise ValueError(f"expected true or false, got {text!r}")


# Ultralytics train keys that map onto other settings here
ALIASES = {
    "cos_lr": lambda v: {"scheduler": "cosine"} if parse_bool(v) else {},
    "val": lambda v: {} if parse_bool(v) else {"val_interval": "0"},
}


def _converter(name: str):
    """str -> value of TrainConfig field ``name`` (raises ValueError with what was expected)."""
    kind = str(FIELDS[name].type)
    optional = "None" in kind

    def convert(text: str):
        text = str(text).strip()
        if optional and text.lower() in ("none", "null", ""):
            return None
        if name == "amp" and text.lower() in TRUE + FALSE:  # Ultralytics' amp=True / amp=False
            return "auto" if parse_bool(text) else "off"
        if name in CHOICES:
            match = {c.lower(): c for c in CHOICES[name]}.get(text.lower())
            if match is None:
                raise ValueError(f"expected one of {' | '.join(CHOICES[name])}")
            return match
        if kind.startswith("int"):
            try:
                return int(text)
            except ValueError:
                raise ValueError("expected an integer" + (" or none" if optional else "")) from None
        if kind.startswith("float"):
            try:
                return float(text)
            except ValueError:
                raise ValueError("expected a number" + (" or none" if optional else "")) from None
        if kind.startswith("bool"):
            return parse_bool(text)
        return text

    def argparse_type(text: str):
        try:
            return convert(text)
        except ValueError as e:
            raise argparse.ArgumentTypeError(f"{text!r}: {e}") from None

    argparse_type.__name__ = name  # argparse names the type in its messages
    return convert, argparse_type


def add_train_args(parser: argparse.ArgumentParser, defaults: dict | None = None) -> argparse.ArgumentParser:
    """Add every TrainConfig field as ``--flag`` (defaults: ``defaults``, then TrainConfig's), ``--cfg`` and
    positional ``KEY=VALUE`` overrides. Call it after adding the task's own flags: they then follow the
    same precedence, and :func:`config_from_args` fills them into ``args``."""
    defaults = dict(defaults or {})
    unknown = set(defaults) - set(FIELDS)
    if unknown:
        raise ValueError(f"add_train_args: no TrainConfig fields {sorted(unknown)}")
    task_defaults = {}
    for action in parser._actions:  # the task's own flags: remember their defaults, mark explicit ones
        if action.option_strings and action.dest != "help" and action.default is not argparse.SUPPRESS \
                and not action.required:
            task_defaults[action.dest] = action.default
            action.help = (action.help or "").replace("%(default)s", str(action.default))
            if "default" not in action.help.lower() and action.default is not None and action.default is not False:
                action.help += f" (default: {action.default})"  # the rule of yololab._cli_group.HelpFormatter
            action.default = argparse.SUPPRESS
    group = parser.add_argument_group("training settings (yololab.engine; also as KEY=VALUE)")
    train_defaults = {}
    for name, f in FIELDS.items():
        train_defaults[name] = default = defaults.get(name, f.default)
        flag = "--" + name.replace("_", "-")
        help_text = f.metadata["help"]
        if default is not None and default is not False and "default" not in help_text.lower():
            help_text += f" (default: {default})"  # the rule of yololab._cli_group.HelpFormatter
        if str(f.type) == "bool":
            group.add_argument(flag, action=argparse.BooleanOptionalAction, default=argparse.SUPPRESS,
                               help=help_text)
        else:
            metavar = "|".join(CHOICES[name]) if name in CHOICES else name.split("_")[-1].upper()
            group.add_argument(flag, type=_converter(name)[1], default=argparse.SUPPRESS, metavar=metavar,
                               help=help_text)
    group.add_argument("--cfg", metavar="FILE.yaml", default=argparse.SUPPRESS,
                       help="read settings from a YAML file of key: value (the command line overrides it)")
    group.add_argument("overrides", nargs="*", metavar="KEY=VALUE",
                       help="settings as `yolo train` takes them, e.g. epochs=3 lr0=0.02 cos_lr=True")
    parser.set_defaults(_train_setup=(train_defaults, task_defaults, parser))
    return parser


def parse_args(parser: argparse.ArgumentParser, argv: list[str] | None = None) -> argparse.Namespace:
    """``parser.parse_args``, except that ``KEY=VALUE`` settings may stand anywhere among the flags (argparse
    alone takes only one run of positionals). yololab's main CLI parses this way."""
    args, extra = parser.parse_known_args(argv)
    if extra:
        if not hasattr(args, "_train_setup"):
            parser.error(f"unrecognized arguments: {' '.join(extra)}")
        args.overrides = [*(getattr(args, "overrides", None) or []), *extra]  # checked by config_from_args
    return args


def _task_converter(action: argparse.Action):
    """str -> value for one of the task's own flags, the way argparse would convert it."""
    def convert(text: str):
        if action.nargs == 0:  # store_true / store_false / BooleanOptionalAction
            value = parse_bool(text)
            return (not value) if isinstance(action, argparse._StoreFalseAction) else value
        items = str(text).split(",") if action.nargs in ("+", "*") else [str(text)]
        values = [action.type(t) if action.type else t for t in items]
        for v in values:
            if action.choices is not None and v not in action.choices:
                raise ValueError(f"expected one of {' | '.join(map(str, action.choices))}")
        return values if action.nargs in ("+", "*") else values[0]
    return convert


def _read_yaml(path: Path) -> dict:
    if not path.is_file():
        raise ConfigError(f"--cfg {path}: no such file")
    data = read_yaml(path, ConfigError, f"--cfg {path}")
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"--cfg {path}: expected a mapping of key: value, found a {type(data).__name__}")
    return {str(k): ("none" if v is None else ",".join(map(str, v)) if isinstance(v, list) else str(v))
            for k, v in data.items()}


def config_from_args(args: argparse.Namespace) -> TrainConfig:
    """The TrainConfig of a parsed command line (flags, ``--cfg`` YAML, ``key=value``), validated, with
    the device checked; the task's own flags are set on ``args`` the same way."""
    train_defaults, task_defaults, parser = args._train_setup
    actions = {a.dest: a for a in parser._actions if a.dest in task_defaults}
    converters = {name: _converter(name)[0] for name in FIELDS}
    converters.update({dest: _task_converter(a) for dest, a in actions.items()})
    values = {**train_defaults, **task_defaults}

    def apply(key: str, text: str, where: str) -> list[str]:
        """Set ``values[key]`` from ``text``; returns the keys set (an alias may set another one)."""
        key = key.strip().replace("-", "_")
        if key in ALIASES:
            try:
                mapped = ALIASES[key](text)
            except ValueError as e:
                raise ConfigError(f"{where}{key}={text!r}: {e}") from None
            return [k for other, v in mapped.items() for k in apply(other, v, where)]
        if key not in converters:
            close = sorted(difflib.get_close_matches(key, list(converters) + list(ALIASES), n=2, cutoff=0.6))
            hint = f"; did you mean {' or '.join(map(repr, close))}?" if close else \
                f"; known: {', '.join(sorted(converters))}"
            raise ConfigError(f"{where}unknown setting {key!r}{hint}")
        try:
            values[key] = converters[key](text)
        except (ValueError, TypeError, argparse.ArgumentTypeError) as e:
            raise ConfigError(f"{where}{key}={text!r}: {e}") from None
        return [key]

    if hasattr(args, "cfg"):
        for key, text in _read_yaml(Path(args.cfg)).items():
            apply(key, text, f"--cfg {args.cfg}: ")
    given = {}
    items = getattr(args, "overrides", None) or []
    for item in items:  # flags argparse did not know (parse_args passes them on)
        if item.startswith("-"):
            options = [o for a in parser._actions for o in a.option_strings]
            close = difflib.get_close_matches(item.split("=")[0], options, n=1, cutoff=0.6)
            raise ConfigError(f"unknown option {item}" + (f"; did you mean {close[0]}?" if close else ""))
    for item in items:
        key, sep, text = item.partition("=")
        if not sep or not key:
            raise ConfigError(f"{item!r}: expected KEY=VALUE, e.g. epochs=10")
        for k in apply(key, text, ""):
            given[k] = values[k]
    for dest in converters:
        if hasattr(args, dest):
            if dest in given and given[dest] != getattr(args, dest):
                raise ConfigError(f"{dest} given twice: {dest}={given[dest]!r} and --{dest.replace('_', '-')} "
                                  f"{getattr(args, dest)!r}")
            values[dest] = getattr(args, dest)
    for dest in task_defaults:
        setattr(args, dest, values[dest])
    cfg = TrainConfig(**{k: values[k] for k in FIELDS}).validate()
    check_device(cfg.device)
    return cfg


def check_device(device: str | None) -> None:
    """Fail now, with one line, if ``device`` names hardware that is not there."""
    from yololab.engine import dist
    from yololab.engine.hardware import select_device

    select_device(device, dist.local_rank())
