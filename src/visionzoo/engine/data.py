"""Data loading whose position can be checkpointed, so a resumed run sees the same batches.

A shuffling ``DataLoader`` cannot be resumed exactly: its permutation comes from the global RNG and
its position is lost. :class:`ResumableSampler` draws the permutation from ``(seed, epoch)`` and keeps
``(epoch, samples yielded)`` as state; torchdata's ``StatefulDataLoader`` saves that state, and
Lightning stores the loader state inside its checkpoint.
"""

from __future__ import annotations

import torch
import torch.distributed as dist
from torch.utils.data import Dataset, Sampler
from torchdata.stateful_dataloader import StatefulDataLoader


def _rank_and_world() -> tuple[int, int]:
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


class ResumableSampler(Sampler[int]):
    """Shuffled (or sequential) indices, sharded over distributed ranks, with resumable state.

    Every rank computes the same permutation from ``(seed, epoch)`` and takes every world-size-th
    index; the tail is padded by wrapping so all ranks yield the same number of samples (as
    ``DistributedSampler`` does), or dropped when ``drop_last``.
    """

    def __init__(self, dataset_len: int, shuffle: bool = True, seed: int = 0, drop_last: bool = False,
                 rank: int | None = None, world_size: int | None = None):
        r, w = _rank_and_world()
        self.rank = r if rank is None else rank
        self.world_size = w if world_size is None else world_size
        self.n = dataset_len
        self.shuffle = shuffle
        self.seed = seed
        self.drop_last = drop_last
        self.epoch = 0
        self.yielded = 0  # samples yielded in the current epoch, on this rank
        self._resume_from = 0
        if drop_last:
            self.per_rank = self.n // self.world_size
        else:
            self.per_rank = -(-self.n // self.world_size)

    def set_epoch(self, epoch: int) -> None:
        if epoch != self.epoch:
            self.epoch = epoch
            self._resume_from = 0

    def _indices(self) -> list[int]:
        if self.shuffle:
            g = torch.Generator().manual_seed(self.seed * 1_000_003 + self.epoch)
            order = torch.randperm(self.n, generator=g).tolist()
        else:
            order = list(range(self.n))
        total = self.per_rank * self.world_size
        if total > len(order):
            order = (order * (total // max(1, len(order)) + 1))[:total]
        return order[:total][self.rank :: self.world_size]

    def __iter__(self):
        indices = self._indices()
        start, self._resume_from = self._resume_from, 0
        self.yielded = start
        for idx in indices[start:]:
            self.yielded += 1
            yield idx
        # the epoch is over: the next iteration (without set_epoch) starts a new permutation
        self.epoch += 1
        self.yielded = 0

    def __len__(self) -> int:
        return self.per_rank

    def state_dict(self) -> dict:
        return {"epoch": self.epoch, "yielded": self.yielded, "seed": self.seed}

    def load_state_dict(self, state: dict) -> None:
        self.epoch = int(state["epoch"])
        self._resume_from = int(state["yielded"])
        self.yielded = self._resume_from


def make_loader(dataset: Dataset, batch_size: int, *, shuffle: bool, seed: int = 0, drop_last: bool = False,
                num_workers: int = 0, collate_fn=None) -> StatefulDataLoader:
    sampler = ResumableSampler(len(dataset), shuffle=shuffle, seed=seed, drop_last=drop_last)
    return StatefulDataLoader(
        dataset,
        batch_size=batch_size,
        sampler=sampler,
        drop_last=drop_last,
        num_workers=num_workers,
        collate_fn=collate_fn,
        persistent_workers=num_workers > 0,
        # its own generator: creating an iterator would otherwise draw a worker base seed from the global
        # RNG, and a resumed run creates its iterator at a different point than the original run did
        generator=torch.Generator().manual_seed(seed),
    )
