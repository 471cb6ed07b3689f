"""Neighbour groups: sets of C = gridsize**2 nearby scan positions that the network sees together.

Only indices are computed and stored; patterns are gathered from the (memory-mapped) diffraction lazily,
one sorted fancy-index read per batch.

Conventions (docs/specs/data_contracts.md#grouped-data):
    nn_indices       (B, C) int64; B = N * nsamples; row b starts with its seed position b // nsamples,
                     followed by C-1 distinct positions drawn from the seed's K nearest neighbours
                     (neighbour_groups with ChannelOrder.QUADRANT reorders each row by place)
    coords_global    (B, C, 2) float64, absolute (x, y) scan positions in object pixels
    coords_offsets   (B, 1, 2) float64, the group centre (mean of coords_global over C)
    coords_relative  (B, C, 2) float64, coords_global - coords_offsets (pixels, (x, y), + sign)
    diffraction      (B, H, W, C) float32, channels last; a LazyGroupedPatterns view
"""
from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Protocol

import numpy as np
from scipy.spatial import cKDTree


class PatternSource(Protocol):
    """What grouping needs from a dataset (MemmapDatasetBridge satisfies it)."""

    xcoords: np.ndarray
    ycoords: np.ndarray
    probeGuess: np.ndarray
    scan_index: np.ndarray

    @property
    def diffraction(self) -> np.ndarray: ...

    @property
    def objectGuess(self) -> np.ndarray | None: ...


class ChannelOrder(StrEnum):
    """The order of a group's C positions, which is the order of the network's input channels."""

    SEED = "seed"  # the seed position first, then its neighbours in the order drawn
    QUADRANT = "quadrant"  # by place: gridsize rows top to bottom, each left to right (TL, TR, BL, BR at C = 4)


def order_by_place(groups: np.ndarray, xcoords: np.ndarray, ycoords: np.ndarray, gridsize: int) -> np.ndarray:
    """(B, C) groups with each row's positions reordered by place: sorted by y into gridsize rows of
    gridsize, each row sorted by x (ties keep their order). Image rows grow downwards: row 0 is the top."""
    count = groups.shape[0]
    by_y = np.argsort(ycoords[groups], axis=1, kind="stable").reshape(count, gridsize, gridsize)
    x_in_rows = np.take_along_axis(xcoords[groups].reshape(count, -1), by_y.reshape(count, -1), axis=1)
    by_x = np.argsort(x_in_rows.reshape(count, gridsize, gridsize), axis=2, kind="stable")
    order = np.take_along_axis(by_y, by_x, axis=2).reshape(count, -1)
    return np.take_along_axis(groups, order, axis=1)


def neighbour_groups(xcoords: np.ndarray, ycoords: np.ndarray, *, gridsize: int, K: int = 7,
                     nsamples: int = 1, seed: int | None = None,
                     order: ChannelOrder | str = ChannelOrder.SEED) -> np.ndarray:
    """(B, C) int64 groups, B = N * nsamples, C = gridsize**2; see the module docstring for the rule. With
    order QUADRANT each row is then reordered by place (order_by_place): its seed is no longer first."""
    order = ChannelOrder(order)
    if gridsize < 1 or nsamples < 1:
        raise ValueError(f"gridsize and nsamples must be >= 1 (got gridsize={gridsize}, nsamples={nsamples})")
    n, c = len(xcoords), gridsize * gridsize
    seeds = np.repeat(np.arange(n, dtype=np.int64), nsamples)
    if c == 1:
        return seeds[:, None]
    k = min(K, n - 1)
    if k < c - 1:
        raise ValueError(f"gridsize {gridsize} needs groups of {c} positions: K={K} nearest neighbours of "
                         f"{n} positions leave only {k} candidates; raise K to >= {c - 1} or lower gridsize")
    points = np.stack([xcoords, ycoords], axis=1)
    _, nbrs = cKDTree(points).query(points, k=k + 1)
    # With duplicate positions the seed need not come first among its own neighbours: drop it wherever it is.
    not_self = nbrs != np.arange(n)[:, None]
    self_last = np.argsort(~not_self, axis=1, kind="stable")
    candidates = np.take_along_axis(nbrs, self_last, axis=1)[:, :k].astype(np.int64)
    rng = np.random.default_rng(seed)
    picks = np.argsort(rng.random((len(seeds), k)), axis=1)[:, : c - 1]
    others = np.take_along_axis(candidates[seeds], picks, axis=1)
    groups = np.concatenate([seeds[:, None], others], axis=1)
    return order_by_place(groups, xcoords, ycoords, gridsize) if order is ChannelOrder.QUADRANT else groups


@dataclass(frozen=True)
class GroupCoords:
    """coords_global (B, C, 2), coords_offsets (B, 1, 2), coords_relative (B, C, 2); float64, (x, y)."""

    coords_global: np.ndarray
    coords_offsets: np.ndarray
    coords_relative: np.ndarray


def group_coords(xcoords: np.ndarray, ycoords: np.ndarray, groups: np.ndarray) -> GroupCoords:
    glob = np.stack([xcoords[groups], ycoords[groups]], axis=-1).astype(np.float64)
    centre = glob.mean(axis=1, keepdims=True)
    return GroupCoords(glob, centre, glob - centre)


def gather_patterns(diffraction: np.ndarray, groups: np.ndarray) -> np.ndarray:
    """(b, C, H, W) float32 for (b, C) groups: one fancy-index read with sorted unique indices."""
    flat = groups.reshape(-1)
    def take(index: np.ndarray) -> np.ndarray:
        # Fancy indexing, never ndarray.take: take() first copies a whole unaligned array (an .npz mapped in
        # place is usually unaligned), i.e. the entire memmap.
        return np.asarray(diffraction[index])

    if flat.size and np.all(flat[1:] > flat[:-1]):  # already sorted and unique: gather straight into place
        block = take(flat)
        return block.reshape(*groups.shape, *block.shape[1:])
    unique, inverse = np.unique(flat, return_inverse=True)
    block = take(unique)
    return block[inverse.reshape(-1)].reshape(*groups.shape, *block.shape[1:])


class LazyGroupedPatterns:
    """Array-like (B, H, W, C) float32 over a diffraction source; reads only the rows you index.

    `np.asarray(obj)` materialises everything (B * H * W * C * 4 bytes); index it instead.
    """

    def __init__(self, source: PatternSource, groups: np.ndarray) -> None:
        self._source = source
        self.groups = groups
        h, w = source.diffraction.shape[1:]
        self.shape = (groups.shape[0], h, w, groups.shape[1])
        self.dtype = np.dtype(np.float32)
        self.ndim = 4

    def __len__(self) -> int:
        return self.shape[0]

    def gather(self, rows: np.ndarray) -> np.ndarray:
        """(b, H, W, C) for the given group rows."""
        return np.moveaxis(gather_patterns(self._source.diffraction, self.groups[rows]), 1, -1)

    def __getitem__(self, key: Any) -> np.ndarray:
        first, rest = (key[0], key[1:]) if isinstance(key, tuple) else (key, ())
        if first is Ellipsis or first is None:
            return np.asarray(self)[key]
        rows = np.arange(len(self))[first]
        block = self.gather(np.atleast_1d(rows))
        out = block[0] if rows.ndim == 0 else block
        return out[rest] if rest else out

    def __array__(self, dtype: Any = None, copy: bool | None = None) -> np.ndarray:
        out = self.gather(np.arange(len(self)))
        return out if dtype is None else out.astype(dtype)

    def __repr__(self) -> str:
        return f"LazyGroupedPatterns(shape={self.shape}, dtype=float32)"


def grouped_data(source: PatternSource, *, N: int, K: int = 7, nsamples: int = 1, gridsize: int = 1,
                 seed: int | None = None) -> dict[str, Any]:
    """The grouped view of a dataset: indices, coordinates and a lazy (B, H, W, C) diffraction.

    N is the pattern width; it must match the data. Keys: diffraction, nn_indices, coords_global,
    coords_offsets, coords_relative, scan_index (B, C), probeGuess, objectGuess, gridsize, K, nsamples.
    """
    h, w = source.diffraction.shape[1:]
    if (h, w) != (N, N):
        raise ValueError(f"N={N} does not match the dataset's patterns of {h}x{w}; pass N={w} "
                         "(grouping needs square N x N patterns)")
    groups = neighbour_groups(source.xcoords, source.ycoords, gridsize=gridsize, K=K, nsamples=nsamples,
                              seed=seed)
    coords = group_coords(source.xcoords, source.ycoords, groups)
    return {
        "diffraction": LazyGroupedPatterns(source, groups),
        "nn_indices": groups,
        "coords_global": coords.coords_global,
        "coords_offsets": coords.coords_offsets,
        "coords_relative": coords.coords_relative,
        "scan_index": source.scan_index[groups],
        "probeGuess": source.probeGuess,
        "objectGuess": source.objectGuess,
        "gridsize": gridsize,
        "K": K,
        "nsamples": nsamples,
    }
