"""TrainConfig: every setting of a training run that the engine reads, with its help text and checks.

Defaults follow Ultralytics' ``default.yaml`` where it has the setting (lr0, momentum, warmup ...);
each task passes its own defaults to :func:`yololab.engine.args.add_train_args`. This module imports
only the standard library, so a task's CLI can build its parser without loading torch.
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass, field

from yololab.errors import ConfigError

OPTIMIZERS = ("SGD", "Adam", "AdamW", "auto")
SCHEDULERS = ("linear", "cosine", "inverse_sqrt", "onecycle", "constant")
AMP_MODES = ("auto", "bf16", "fp16", "off")
CHANNELS_LAST = ("auto", "on", "off")
DEVICE_RE = re.compile(r"^(cpu|cuda|cuda:\d+|\d+(,\d+)*)$")


@dataclass
class TrainConfig:
    # run folder
    project: str | None = field(default=None, metadata={"help": "parent folder of the run (default runs/<task>)"})
    name: str | None = field(default=None, metadata={
        "help": "run folder name (default 'train'; train2, train3 ... when it exists, unless --exist-ok)"})
    exist_ok: bool = field(default=False, metadata={"help": "write into an existing run folder"})
    resume: str | None = field(default=None, metadata={
        "help": "continue a run: its folder or its weights/last.pt (the run's saved settings are used)"})
    # length and batches
    epochs: int = field(default=100, metadata={"help": "training epochs"})
    batch: int = field(default=16, metadata={"help": "batch size per process"})
    nbs: int | None = field(default=None, metadata={
        "help": "nominal batch: gradients are accumulated over round(nbs / (batch * processes)) batches "
                "before each optimizer step (none: no accumulation)"})
    workers: int | None = field(default=None, metadata={
        "help": "data loader worker processes per training process (none: 0 on a CPU with at most 2 cores per "
                "process, where loading in the training process is faster, else 2)"})
    # optimizer
    optimizer: str = field(default="auto", metadata={
        "help": "SGD (Nesterov) | Adam | AdamW | auto (the task's choice from the run length)"})
    lr0: float = field(default=0.01, metadata={"help": "initial learning rate"})
    lrf: float = field(default=0.01, metadata={"help": "final learning rate as a fraction of lr0"})
    momentum: float = field(default=0.937, metadata={"help": "SGD momentum / Adam beta1"})
    beta2: float = field(default=0.999, metadata={"help": "Adam / AdamW beta2"})
    weight_decay: float = field(default=0.0005, metadata={
        "help": "weight decay of weights (not of norms and biases)"})
    nesterov: bool = field(default=True, metadata={"help": "Nesterov momentum for SGD"})
    # schedule
    scheduler: str = field(default="linear", metadata={
        "help": "learning-rate schedule after warmup: linear | cosine | inverse_sqrt | onecycle | constant"})
    warmup_epochs: float = field(default=3.0, metadata={"help": "warmup length in epochs (fractions allowed)"})
    warmup_steps: int | None = field(default=None, metadata={
        "help": "warmup length in batches (overrides --warmup-epochs)"})
    warmup_momentum: float = field(default=0.8, metadata={"help": "momentum at the start of warmup"})
    warmup_bias_lr: float = field(default=0.1, metadata={"help": "bias learning rate at the start of warmup"})
    # numerics
    clip_grad: float = field(default=10.0, metadata={"help": "max gradient norm (0: no clipping)"})
    amp: str = field(default="auto", metadata={
        "help": "autocast: auto (bf16 on CPUs and GPUs with native bf16, fp16 + GradScaler on older GPUs) | "
                "bf16 | fp16 | off"})
    channels_last: str = field(default="auto", metadata={
        "help": "channels-last memory format: auto (on for models with 2-D convolutions) | on | off"})
    ema: bool = field(default=True, metadata={"help": "keep an exponential moving average of the weights"})
    ema_decay: float = field(default=0.9999, metadata={"help": "EMA decay"})
    ema_tau: float = field(default=2000.0, metadata={
        "help": "EMA warm-up: decay * (1 - exp(-updates / tau))"})
    # reproducibility and devices
    seed: int = field(default=0, metadata={"help": "random seed"})
    deterministic: bool = field(default=True, metadata={"help": "use deterministic algorithms"})
    device: str | None = field(default=None, metadata={
        "help": "cpu | cuda | N | N,M (GPU indices; several need torchrun); default: GPU 0 if any, else cpu"})
    sync_bn: bool = field(default=False, metadata={"help": "SyncBatchNorm across processes (DDP)"})
    # validation, stopping, saving
    val_interval: int = field(default=1, metadata={
        "help": "validate every N epochs (0: only after the last epoch)"})
    patience: int = field(default=100, metadata={
        "help": "stop after this many epochs without a better fitness (0: never)"})
    save_period: int = field(default=0, metadata={"help": "also keep weights/epochN.pt every N epochs (0: off)"})
    save_interval_steps: int = field(default=0, metadata={
        "help": "also write weights/last.pt every N optimizer steps (0: only at epoch ends)"})
    time: float | None = field(default=None, metadata={
        "help": "stop after this many hours of training (this invocation)"})
    max_steps: int | None = field(default=None, metadata={"help": "stop after this many optimizer steps"})

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    def validate(self) -> TrainConfig:
        """Check every value; raise :class:`ConfigError` naming the first bad one. Returns self."""
        def bad(name: str, expected: str):
            raise ConfigError(f"{name}={getattr(self, name)!r}: expected {expected}")

        for name in ("epochs", "batch"):
            if not isinstance(getattr(self, name), int) or getattr(self, name) < 1:
                bad(name, "a positive integer")
        for name in ("nbs", "warmup_steps", "max_steps"):
            value = getattr(self, name)
            if value is not None and (not isinstance(value, int) or value < (0 if name == "warmup_steps" else 1)):
                bad(name, "a positive integer or none" if name != "warmup_steps" else "an integer >= 0 or none")
        for name in ("workers", "val_interval", "patience", "save_period", "save_interval_steps", "seed"):
            value = getattr(self, name)
            if not (value is None and name == "workers") and (not isinstance(value, int) or value < 0):
                bad(name, "an integer >= 0" + (" or none" if name == "workers" else ""))
        for name in ("lr0", "lrf", "ema_tau"):
            if not getattr(self, name) > 0:
                bad(name, "a number > 0")
        for name in ("weight_decay", "warmup_epochs", "warmup_bias_lr", "clip_grad"):
            if not getattr(self, name) >= 0:
                bad(name, "a number >= 0")
        for name in ("momentum", "beta2", "ema_decay"):
            if not 0 <= getattr(self, name) < 1:
                bad(name, "a number in [0, 1)")
        if not 0 <= self.warmup_momentum <= 1:
            bad("warmup_momentum", "a number in [0, 1]")
        if self.time is not None and not self.time > 0:
            bad("time", "a number of hours > 0 or none")
        choices = {"optimizer": OPTIMIZERS, "scheduler": SCHEDULERS, "amp": AMP_MODES,
                   "channels_last": CHANNELS_LAST}
        for name, allowed in choices.items():
            if getattr(self, name) not in allowed:
                bad(name, "one of " + " | ".join(allowed))
        if self.device is not None and not DEVICE_RE.match(str(self.device)):
            bad("device", "cpu | cuda | N | N,M (GPU indices)")
        return self


FIELDS = {f.name: f for f in dataclasses.fields(TrainConfig)}
