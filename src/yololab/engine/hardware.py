"""What the machine offers: the device to train on, the autocast mode, and a description for report.md."""

from __future__ import annotations

import functools
import os
import platform

import torch

from yololab.errors import ConfigError


@functools.lru_cache(maxsize=1)
def cpu_flags() -> frozenset[str]:
    """The feature flags of this CPU as the kernel reports them (Linux); empty where unknown."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("flags"):
                    return frozenset(line.split(":", 1)[1].split())
    except OSError:
        pass
    return frozenset()


def cpu_has_native_bf16() -> bool:
    """True where bfloat16 matrix math runs in hardware (AVX512-BF16 or AMX-BF16) through oneDNN.

    Elsewhere PyTorch still computes in bf16, by emulation, slower than float32: never worth it.
    ``torch.backends.cpu.get_cpu_capability()`` says only "AVX512", not whether BF16 is there, so the
    kernel's flags decide; off Linux, PyTorch's own probe of the instruction set.
    """
    if not (torch.backends.mkldnn.is_available() and torch.backends.mkldnn.enabled):
        return False
    flags = cpu_flags()
    if flags:
        return bool({"avx512_bf16", "amx_bf16"} & flags)
    probe = getattr(getattr(torch._C, "_cpu", None), "_is_avx512_bf16_supported", None)
    return bool(probe and probe())


def cpu_name() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def select_device(spec: str | None, local_rank: int = -1) -> torch.device:
    """The device for ``--device`` (cpu | cuda | cuda:N | N | N,M); under torchrun the local rank picks
    one of several. Raises :class:`ConfigError` for CUDA without CUDA, a GPU index that does not exist,
    or several GPUs without torchrun."""
    spec = None if spec is None else str(spec).strip().lower()
    if spec == "cpu" or (spec is None and not torch.cuda.is_available()):
        return torch.device("cpu")
    if not torch.cuda.is_available():
        raise ConfigError(f"device={spec}: CUDA was requested but this PyTorch sees no CUDA GPU "
                          f"(torch {torch.__version__}, CUDA build {torch.version.cuda}); use device=cpu")
    count = torch.cuda.device_count()
    if spec in (None, "cuda"):
        index = max(local_rank, 0)
    elif spec.startswith("cuda:"):
        index = int(spec[5:])
    else:
        indices = [int(i) for i in spec.split(",")]
        if len(indices) > 1 and local_rank < 0:
            raise ConfigError(f"device={spec} names {len(indices)} GPUs: launch one process per GPU with "
                              f"torchrun --nproc_per_node {len(indices)} ... (see docs/design.md, 'The training engine')")
        if local_rank >= len(indices):
            raise ConfigError(f"device={spec} lists {len(indices)} GPUs but this is local rank {local_rank}")
        index = indices[max(local_rank, 0)]
    if index >= count:
        raise ConfigError(f"device={spec}: no CUDA GPU {index} (this machine has {count})")
    return torch.device("cuda", index)


def resolve_amp(amp: str, device: torch.device) -> str:
    """``auto`` -> ``bf16`` on CPUs with native bf16 and on GPUs that support it, ``fp16`` on older GPUs,
    ``off`` on other CPUs. ``fp16`` needs CUDA (on a CPU it is emulated and GradScaler is CUDA-only)."""
    if amp == "auto":
        if device.type == "cuda":
            return "bf16" if torch.cuda.is_bf16_supported() else "fp16"
        return "bf16" if cpu_has_native_bf16() else "off"
    if amp == "fp16" and device.type != "cuda":
        raise ConfigError("amp=fp16 needs a CUDA device; on a CPU use amp=bf16 (native on AVX512-BF16 / AMX "
                          "CPUs) or amp=off")
    return amp


def cpu_share() -> int:
    """The cores of one training process: the cores it may run on, divided among torchrun's processes on this
    node (``LOCAL_WORLD_SIZE``)."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return max(1, cores // max(1, int(os.environ.get("LOCAL_WORLD_SIZE", "1"))))


def default_workers(device: torch.device) -> int:
    """Data loader workers when the run does not say (``workers=None``): 0 on a CPU device with at most 2 cores
    for the process, else 2.

    Training on a CPU, the loader's workers take cores from the compute threads (:func:`cpu_threads` keeps one
    core for them). With 2 cores that halves the compute for a loader that needs far less than a core:
    measured on the 2-core machine (yolov8n, batch 16, benchmarks/README.md "Detection training"), in-process
    loading with 2 compute threads trains 1.9x faster than 2 workers beside 1 thread at 320 px (53.2 against
    27.7 img/s) and 1.8x at 256 px (88 against 48). Ultralytics sets 0 workers on every CPU device; above 2
    cores (not measured here) yololab keeps 2, so loading overlaps compute."""
    return 0 if device.type == "cpu" and cpu_share() <= 2 else 2


def cpu_threads(workers: int) -> int | None:
    """The intra-op threads of one training process on a CPU, or None to leave PyTorch's choice.

    PyTorch takes every core; the data loader's worker processes then fight the compute threads for them, and
    OpenMP threads that wait for a busy core spin. Measured on the 2-core machine (yolov8n, 320 px, batch 16,
    2 workers, 160 images, one epoch, load ~3): 43.7 s with 2 threads, 13.4 s with 1. So a process keeps one
    core of its share for the loader when it has workers, as Ultralytics does (``min(8, cores - 1)``).
    ``OMP_NUM_THREADS``, when set, wins."""
    if os.environ.get("OMP_NUM_THREADS"):
        return None
    share = cpu_share()
    return max(1, share - 1) if workers > 0 else share


def describe(device: torch.device, amp: str) -> dict[str, str]:
    """Hardware and software facts for report.md."""
    facts = {"CPU": cpu_name(), "CPU cores": str(os.cpu_count()),
             "native bf16": "yes" if cpu_has_native_bf16() else "no",
             "torch": torch.__version__, "device": str(device), "autocast": amp}
    if device.type == "cpu":
        facts["CPU threads (per process)"] = str(torch.get_num_threads())
    if device.type == "cuda":
        facts["GPU"] = torch.cuda.get_device_name(device)
    return facts
