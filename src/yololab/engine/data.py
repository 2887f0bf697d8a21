"""Loaders whose batches depend only on (seed, epoch, index): what makes resume bit-exact and DDP shard.

A task's ``train_loader(epoch)`` may return any sized iterable; these helpers make the usual one:

* :class:`EpochSampler` / :func:`distributed_sampler`: the order of epoch ``e`` is a permutation seeded
  with ``(seed, e)``, the same whatever ran before; process ``r`` of ``w`` takes every ``w``-th index
  from ``r`` (as ``torch.utils.data.DistributedSampler`` does), so step ``k``'s batches of all
  processes together are the single-process batch ``k`` of ``w`` times the size.
* :func:`epoch_loader`: a DataLoader over that sampler whose workers are seeded from ``(seed, epoch)``
  and the worker id (global ``random``, NumPy and torch states), never from the global torch RNG.
  Datasets that draw augmentations from a generator seeded with ``(seed, epoch, index)`` are
  independent of the worker count as well.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sized

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, Sampler

from yololab.engine import dist


class EpochSampler(Sampler[int]):
    """Indices of one epoch for one process: seeded permutation (or identity), sharded by rank.

    With ``drop_last`` each process gets ``n // world`` indices; otherwise the permutation is padded by
    repeating its start so that every process gets ``ceil(n / world)`` (DistributedSampler's rule).
    """

    def __init__(self, n: int, shuffle: bool = True, seed: int = 0, epoch: int = 0, rank: int | None = None,
                 world_size: int | None = None, drop_last: bool = False):
        self.n, self.shuffle, self.seed, self.epoch, self.drop_last = n, shuffle, seed, epoch, drop_last
        self.rank = dist.rank() if rank is None else rank
        self.world = dist.world_size() if world_size is None else world_size
        self.per_rank = n // self.world if drop_last else -(-n // self.world)

    def __len__(self) -> int:
        return self.per_rank

    def __iter__(self):
        order = np.random.default_rng([self.seed, self.epoch]).permutation(self.n) if self.shuffle \
            else np.arange(self.n)
        total = self.per_rank * self.world
        if total > self.n:
            order = np.concatenate([order, order[: total - self.n]])
        yield from order[self.rank:total:self.world].tolist()


def distributed_sampler(dataset: Sized | int, shuffle: bool = True, seed: int = 0, epoch: int = 0,
                        drop_last: bool = False) -> EpochSampler:
    """This process's :class:`EpochSampler` over ``dataset`` (or ``n`` items) for ``epoch``."""
    n = dataset if isinstance(dataset, int) else len(dataset)
    return EpochSampler(n, shuffle=shuffle, seed=seed, epoch=epoch, drop_last=drop_last)


def _seed_worker(worker_id: int) -> None:
    """Seed global ``random`` and NumPy in a worker from its torch seed (the loader's base seed + id)."""
    s = torch.initial_seed() % 2**32
    random.seed(s)
    np.random.seed(s)


def epoch_loader(dataset: Dataset, batch_size: int, epoch: int, seed: int = 0, shuffle: bool = True,
                 workers: int = 0, collate_fn: Callable | None = None, drop_last: bool = False,
                 pin_memory: bool = False) -> DataLoader:
    """A DataLoader for epoch ``epoch`` of this process: :func:`distributed_sampler` order, batches of
    ``batch_size``, workers seeded from ``(seed, epoch, worker id)``."""
    generator = torch.Generator()
    generator.manual_seed(int(np.random.SeedSequence([seed, epoch]).generate_state(1)[0]))
    sampler = distributed_sampler(dataset, shuffle=shuffle, seed=seed, epoch=epoch)
    return DataLoader(dataset, batch_size=batch_size, sampler=sampler, num_workers=workers,
                      collate_fn=collate_fn, drop_last=drop_last, worker_init_fn=_seed_worker,
                      generator=generator, pin_memory=pin_memory)
