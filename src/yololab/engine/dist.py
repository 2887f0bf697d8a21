"""Distributed data parallel (DDP) the torchrun way: one process per device, set up from the environment.

``torchrun --nproc_per_node N ...`` (or ``python -m torch.distributed.run``) starts N copies of the
command with ``WORLD_SIZE``, ``RANK`` and ``LOCAL_RANK`` set; :func:`init` joins them into one process
group (NCCL for CUDA, gloo for CPU). Without those variables everything here is a no-op for a single
process, so tasks can call :func:`rank` / :func:`world_size` unconditionally.
"""

from __future__ import annotations

import datetime
import os

import torch
import torch.distributed as tdist
from torch import nn


def world_size() -> int:
    if tdist.is_available() and tdist.is_initialized():
        return tdist.get_world_size()
    return int(os.environ.get("WORLD_SIZE", 1))


def rank() -> int:
    if tdist.is_available() and tdist.is_initialized():
        return tdist.get_rank()
    return int(os.environ.get("RANK", 0))


def local_rank() -> int:
    """This process's index on its machine, -1 outside torchrun."""
    return int(os.environ.get("LOCAL_RANK", -1))


def is_main() -> bool:
    """True on the process that logs, validates and saves (rank 0)."""
    return rank() == 0


def launched() -> bool:
    """True when torchrun started this process as one of several."""
    return int(os.environ.get("WORLD_SIZE", 1)) > 1


def init(device: torch.device) -> bool:
    """Join the process group if torchrun launched several processes and nobody did yet; returns
    whether this call created it (and so should destroy it at the end)."""
    if not launched() or tdist.is_initialized():
        return False
    backend = "nccl" if device.type == "cuda" else "gloo"
    if device.type == "cuda":
        torch.cuda.set_device(device)
    # validation runs on rank 0 while the others wait: allow far longer than the default 10-30 minutes
    tdist.init_process_group(backend, timeout=datetime.timedelta(hours=3))
    return True


def cleanup() -> None:
    if tdist.is_available() and tdist.is_initialized():
        tdist.destroy_process_group()


def barrier() -> None:
    if tdist.is_available() and tdist.is_initialized():
        tdist.barrier()


def all_reduce_sum(t: torch.Tensor) -> torch.Tensor:
    """Sum ``t`` over all processes, in place (identity for one process)."""
    if tdist.is_available() and tdist.is_initialized():
        tdist.all_reduce(t, op=tdist.ReduceOp.SUM)
    return t


def gather_object(obj) -> list | None:
    """``[obj of rank 0, obj of rank 1, ...]`` on rank 0, None on the others; ``[obj]`` for one process."""
    if not (tdist.is_available() and tdist.is_initialized()):
        return [obj]
    out = [None] * tdist.get_world_size() if tdist.get_rank() == 0 else None
    tdist.gather_object(obj, out, dst=0)
    return out


def broadcast_object(obj, src: int = 0):
    """``obj`` of rank ``src`` on every process."""
    if not (tdist.is_available() and tdist.is_initialized()):
        return obj
    box = [obj]
    tdist.broadcast_object_list(box, src=src)
    return box[0]


def wrap(model: nn.Module, device: torch.device, sync_bn: bool = False,
         find_unused_parameters: bool = False) -> nn.Module:
    """``model`` wrapped in DistributedDataParallel (with SyncBatchNorm if asked); unchanged for one process."""
    if not (tdist.is_available() and tdist.is_initialized()):
        return model
    if sync_bn:
        model = nn.SyncBatchNorm.convert_sync_batchnorm(model)
    ids = [device.index] if device.type == "cuda" else None
    return nn.parallel.DistributedDataParallel(model, device_ids=ids, find_unused_parameters=find_unused_parameters)


def unwrap(model: nn.Module) -> nn.Module:
    """The module inside a DDP wrapper (or the model itself)."""
    return model.module if isinstance(model, nn.parallel.DistributedDataParallel) else model
