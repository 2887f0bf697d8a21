"""The training engine: one loop for every task (see docs/design.md, "The training engine").

A task subclasses :class:`Task`; ``Trainer(task, cfg).fit()`` trains it. This package knows no task.
Its names load lazily, so that ``yololab.engine.args`` (standard library only) can be imported by a
task's CLI module without loading torch.
"""

import importlib

_EXPORTS = {"Task": "yololab.engine.task", "TrainConfig": "yololab.engine.config",
            "Trainer": "yololab.engine.trainer"}
__all__ = ["Task", "TrainConfig", "Trainer", "dist"]


def __getattr__(name: str):
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    if name == "dist":
        return importlib.import_module("yololab.engine.dist")
    raise AttributeError(f"module 'yololab.engine' has no attribute {name!r}")
