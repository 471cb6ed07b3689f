"""A torch Dataset over a MemmapDatasetBridge: neighbour groups, patterns gathered lazily per batch.

One sample (a group of C = gridsize**2 positions), as the trainer consumes it:
    diffraction      (C, H, W) float32  amplitudes, channels first for the CNN
    coords_relative  (C, 2) float32     offsets of each pattern from the group centre, pixels, (x, y)
    coords_global    (C, 2) float32     absolute scan positions, object pixels, (x, y)
    coords_offsets   (1, 2) float32     the group centre, object pixels, (x, y)
    indices          (C,) int64         pattern indices into the bridge's arrays
A batch stacks these on a leading B axis. `dataset[[i, j, ...]]`, `__getitems__` and `make_loader` read a
whole batch with one fancy-index gather over sorted unique pattern indices instead of B reads.

Only indices and coordinates live in the Dataset; the diffraction memmap is reopened lazily in each
process, so DataLoader workers never receive a pickled copy of the array.
"""
from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
import torch
from torch.utils.data import BatchSampler, DataLoader, Dataset, RandomSampler, SequentialSampler

from ptycho_torch.grouping import ChannelOrder, gather_patterns, group_coords, neighbour_groups
from ptycho_torch.memmap_bridge import MemmapDatasetBridge

Sample = dict[str, torch.Tensor]


class PtychoDataset(Dataset[Sample]):
    """Groups of `gridsize**2` neighbouring patterns from `bridge` (see module docstring for fields).

    `K`, `nsamples` and `seed` are as in `ptycho_torch.grouping.neighbour_groups`; the default seed makes
    the grouping reproducible. `patterns` (sorted pattern indices) restricts the groups to those patterns:
    each group is formed among them only (the trainer's held-out split, train/data.py). `channel_order`:
    the order of a group's patterns, i.e. of the network's input channels (grouping.ChannelOrder).
    """

    def __init__(self, bridge: MemmapDatasetBridge, *, gridsize: int = 1, K: int = 7, nsamples: int = 1,
                 seed: int | None = 0, patterns: np.ndarray | None = None,
                 channel_order: ChannelOrder | str = ChannelOrder.SEED) -> None:
        self.bridge = bridge
        self.gridsize = gridsize
        chosen = np.arange(len(bridge.xcoords)) if patterns is None else np.asarray(patterns, dtype=np.int64)
        local = neighbour_groups(bridge.xcoords[chosen], bridge.ycoords[chosen], gridsize=gridsize, K=K,
                                 nsamples=nsamples, seed=seed, order=channel_order)
        self.groups = chosen[local]  # (B, C) indices into the bridge's patterns
        coords = group_coords(bridge.xcoords, bridge.ycoords, self.groups)
        # numpy, not torch: gathering rows of small arrays per batch is several times cheaper in numpy
        self._global = coords.coords_global.astype(np.float32)  # (B, C, 2)
        self._offsets = coords.coords_offsets.astype(np.float32)  # (B, 1, 2)
        self._relative = coords.coords_relative.astype(np.float32)  # (B, C, 2)

    @property
    def channels(self) -> int:
        return self.groups.shape[1]

    def __len__(self) -> int:
        return self.groups.shape[0]

    def get_batch(self, rows: Sequence[int] | np.ndarray) -> Sample:
        """Batched fields for group rows: diffraction (B, C, H, W), coords (B, C, 2), indices (B, C)."""
        rows = np.asarray(rows, dtype=np.int64)
        # take() on these small, aligned arrays is several times cheaper than fancy indexing (never use it
        # on the map itself: see grouping.gather_patterns)
        groups = self.groups.take(rows, axis=0)
        # a plain ndarray view of the map skips np.memmap's Python-level __getitem__ on every gather
        patterns = gather_patterns(self.bridge.diffraction.view(np.ndarray), groups)  # (B, C, H, W)
        return {
            "diffraction": torch.from_numpy(patterns),
            "coords_relative": torch.from_numpy(self._relative.take(rows, axis=0)),
            "coords_global": torch.from_numpy(self._global.take(rows, axis=0)),
            "coords_offsets": torch.from_numpy(self._offsets.take(rows, axis=0)),
            "indices": torch.from_numpy(groups),
        }

    def __getitem__(self, index: int | Sequence[int] | np.ndarray) -> Sample:
        if isinstance(index, (int, np.integer)):
            batch = self.get_batch([int(index)])
            return {k: v[0] for k, v in batch.items()}
        return self.get_batch(index)

    def __getitems__(self, indices: Sequence[int]) -> list[Sample]:
        """DataLoader's batched fetch: one gather for the whole batch, split into samples for collate."""
        batch = self.get_batch(indices)
        return [{k: v[i] for k, v in batch.items()} for i in range(len(indices))]


class SortedBatchSampler(BatchSampler):
    """BatchSampler whose batches list their rows in ascending order: which rows form a batch is as
    random as the base sampler makes it, and the memmap is read front to back within each batch."""

    def __iter__(self) -> Iterator[list[int]]:
        for batch in super().__iter__():
            yield sorted(batch)


def make_loader(dataset: PtychoDataset, *, batch_size: int, shuffle: bool = True, drop_last: bool = False,
                num_workers: int = 0, pin_memory: bool = False, seed: int = 0,
                **loader_kwargs: Any) -> DataLoader:
    """A DataLoader that hands whole index batches (rows ascending) to the dataset: one gather per batch,
    no re-stacking. Batches are dicts of the module docstring's fields with a leading B axis."""
    generator = torch.Generator().manual_seed(seed)
    base = RandomSampler(dataset, generator=generator) if shuffle else SequentialSampler(dataset)
    return DataLoader(dataset, sampler=SortedBatchSampler(base, batch_size=batch_size, drop_last=drop_last),
                      batch_size=None, num_workers=num_workers, pin_memory=pin_memory, **loader_kwargs)
