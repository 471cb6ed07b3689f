"""The trainer's data: the measured counts, the seeded train / validation split, and the loader whose batch
order depends only on (seed, epoch), so a resumed run sees the batches the interrupted one would have seen.
Patterns are gathered per batch from the memory map, never copied whole.

The split is by scan region, before grouping (held_out_sets): the validation patterns are a compact region
of the scan and groups are formed within each side, so no validation group shares a pattern with a training
group at any gridsize. (Splitting the groups themselves, split_groups, leaves each validation group of
gridsize > 1 with C - 1 patterns that training groups also hold: a loss on them is not held out.)"""
from __future__ import annotations

import itertools
from collections.abc import Iterator, Sequence

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, DistributedSampler

from ptycho_torch.dataset import PtychoDataset, Sample, SortedBatchSampler
from ptycho_torch.device import DistContext
from ptycho_torch.errors import TrainError
from ptycho_torch.memmap_bridge import MemmapDatasetBridge
from ptycho_torch.train.config import TrainConfig

COUNTS_CHUNK = 256  # patterns per read when measuring the mean total counts


def mean_total_counts(bridge: MemmapDatasetBridge, chunk: int = COUNTS_CHUNK) -> float:
    """Mean over patterns of sum(amplitude^2), read chunk by chunk from the memory map (float64 sums)."""
    data = bridge.diffraction.view(np.ndarray)
    total = 0.0
    for start in range(0, len(data), chunk):
        block = np.asarray(data[start : start + chunk], dtype=np.float64)
        total += float(np.square(block).sum())
    return total / len(data)


def split_groups(count: int, val_fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(train_rows, val_rows), each sorted: a seeded permutation of the group rows, the first part val."""
    n_val = round(count * val_fraction)
    if val_fraction > 0 and count >= 2:
        n_val = min(max(n_val, 1), count - 1)
    perm = np.random.default_rng(seed).permutation(count)
    return np.sort(perm[n_val:]), np.sort(perm[:n_val])


def split_positions(xcoords: np.ndarray, ycoords: np.ndarray, val_fraction: float, seed: int, *,
                    channels: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """(train, val) pattern indices, each sorted: val is a compact region of the scan, the round(n *
    val_fraction) positions nearest to a scan position drawn with `seed`; train is the rest. A requested
    split holds at least `channels` positions on each side (one group each); val_fraction 0 gives none."""
    n = len(xcoords)
    everything = np.arange(n, dtype=np.int64)
    if val_fraction <= 0:
        return everything, everything[:0]
    if n < 2 * channels:
        raise TrainError(f"{n} scan positions cannot be split into training and validation groups of {channels} "
                         f"patterns each; use more data or --val-fraction 0")
    n_val = min(max(round(n * val_fraction), channels), n - channels)
    points = np.stack([xcoords, ycoords], axis=1)
    centre = points[np.random.default_rng(seed).integers(n)]
    distance = np.hypot(*(points - centre).T)
    val = np.sort(np.argsort(distance, kind="stable")[:n_val]).astype(np.int64)
    return np.setdiff1d(everything, val), val


def held_out_sets(bridge: MemmapDatasetBridge, *, gridsize: int, K: int, val_fraction: float,
                  seed: int, groups_per_position: int = 1,
                  channel_order: str = "seed") -> tuple[GroupRows, GroupRows]:
    """(train, val) groups: the positions split by region (split_positions), then grouped within each side
    (PtychoDataset with `patterns`), so that no validation group shares a pattern with a training group.
    Training seeds `groups_per_position` groups at each of its positions, validation one.
    TrainError when a side cannot form groups."""
    train_patterns, val_patterns = split_positions(bridge.xcoords, bridge.ycoords, val_fraction, seed,
                                                   channels=gridsize**2)
    try:
        train = PtychoDataset(bridge, gridsize=gridsize, K=K, nsamples=groups_per_position, seed=seed,
                              patterns=train_patterns, channel_order=channel_order)
        val = (PtychoDataset(bridge, gridsize=gridsize, K=K, nsamples=1, seed=seed, patterns=val_patterns,
                             channel_order=channel_order)
               if len(val_patterns) else train)
    except ValueError as exc:
        raise TrainError(f"{bridge.path}: cannot form groups: {exc}") from None
    return (GroupRows(train, np.arange(len(train))),
            GroupRows(val, np.arange(len(val)) if len(val_patterns) else np.arange(0)))


class GroupRows(Dataset[Sample]):
    """A subset of a PtychoDataset's groups; indexed by a list of positions it returns a whole batch."""

    def __init__(self, dataset: PtychoDataset, rows: np.ndarray) -> None:
        self.dataset = dataset
        self.rows = np.asarray(rows, dtype=np.int64)

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, positions: Sequence[int]) -> Sample:  # type: ignore[override]
        return self.dataset.get_batch(self.rows[np.asarray(positions, dtype=np.int64)])


class ResumableBatches(SortedBatchSampler):
    """The epoch's batches (rows ascending within each), leaving out the first `skip`: a run resumed in the
    middle of an epoch continues with the batches the interrupted one had not run."""

    skip = 0

    def __iter__(self) -> Iterator[list[int]]:
        return itertools.islice(super().__iter__(), self.skip, None)


def make_train_loader(subset: GroupRows, config: TrainConfig, ctx: DistContext,
                      device: torch.device) -> tuple[DataLoader, DistributedSampler, ResumableBatches]:
    """One gather per batch (rows ascending); the order is a function of (seed, epoch) only."""
    sampler = DistributedSampler(subset, num_replicas=ctx.world_size, rank=ctx.rank, shuffle=True,
                                 seed=config.seed, drop_last=False)
    batches = ResumableBatches(sampler, batch_size=config.batch_size, drop_last=False)
    loader = DataLoader(subset, sampler=batches, batch_size=None, num_workers=config.num_workers,
                        pin_memory=device.type == "cuda", persistent_workers=config.num_workers > 0)
    return loader, sampler, batches


def row_batches(rows: np.ndarray, batch_size: int) -> Iterator[np.ndarray]:
    """Consecutive slices of rows, batch_size at a time (the last may be shorter)."""
    for start in range(0, len(rows), batch_size):
        yield rows[start : start + batch_size]
