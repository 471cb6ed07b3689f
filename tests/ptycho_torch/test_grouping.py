"""Neighbour groups, group coordinates and the lazy grouped diffraction."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
from scipy.spatial import cKDTree

from ptycho_torch.grouping import (
    ChannelOrder,
    LazyGroupedPatterns,
    gather_patterns,
    group_coords,
    grouped_data,
    neighbour_groups,
)
from ptycho_torch.memmap_bridge import MemmapDatasetBridge
from tests.ptycho_torch.npz_samples import dataset_arrays, write_npz


def grid(n_side: int, spacing: float = 10.0) -> tuple[np.ndarray, np.ndarray]:
    yy, xx = np.mgrid[0:n_side, 0:n_side] * spacing
    return xx.ravel().astype(np.float64), yy.ravel().astype(np.float64)


class TestNeighbourGroups:
    def test_shape_seed_first_distinct_members_from_k_nearest(self) -> None:
        x, y = grid(6)
        k = 7
        groups = neighbour_groups(x, y, gridsize=2, K=k, nsamples=3, seed=1)
        assert groups.shape == (36 * 3, 4) and groups.dtype == np.int64
        np.testing.assert_array_equal(groups[:, 0], np.repeat(np.arange(36), 3))
        pts = np.stack([x, y], 1)
        kth = cKDTree(pts).query(pts, k=k + 1)[0][:, -1]  # distance to the K-th neighbour
        for row in groups:
            assert len(set(row.tolist())) == 4
            d = np.hypot(*(pts[row[1:]] - pts[row[0]]).T)
            assert (d <= kth[row[0]] + 1e-9).all()

    def test_deterministic_per_seed(self) -> None:
        x, y = grid(5)
        a = neighbour_groups(x, y, gridsize=2, seed=3)
        np.testing.assert_array_equal(a, neighbour_groups(x, y, gridsize=2, seed=3))
        assert not np.array_equal(a, neighbour_groups(x, y, gridsize=2, seed=4))

    @pytest.mark.parametrize("gridsize", [2, 3])
    def test_quadrant_order_places_a_groups_patterns_by_row_then_column(self, gridsize: int) -> None:
        x, y = grid(7)
        y = y + 0.3 * x / 10  # a slightly tilted scan: rows are not exactly level
        seeded = neighbour_groups(x, y, gridsize=gridsize, K=12, nsamples=2, seed=5)
        placed = neighbour_groups(x, y, gridsize=gridsize, K=12, nsamples=2, seed=5, order=ChannelOrder.QUADRANT)
        np.testing.assert_array_equal(np.sort(placed, axis=1), np.sort(seeded, axis=1))  # the same members
        assert not np.array_equal(placed, seeded)
        rows = placed.reshape(len(placed), gridsize, gridsize)
        assert (np.diff(x[rows], axis=2) >= 0).all()  # each row left to right
        assert (y[rows].max(axis=2)[:, :-1] <= y[rows].min(axis=2)[:, 1:]).all()  # rows top to bottom

    def test_quadrant_order_of_a_square_group_is_tl_tr_bl_br(self) -> None:
        x = np.array([10.0, 0.0, 10.0, 0.0])  # BR, TL, TR, BL (y grows downwards)
        y = np.array([10.0, 0.0, 0.0, 10.0])
        groups = neighbour_groups(x, y, gridsize=2, K=3, seed=0, order="quadrant")
        np.testing.assert_array_equal(groups, np.tile([1, 2, 3, 0], (4, 1)))
        with pytest.raises(ValueError, match="'diagonal' is not a valid ChannelOrder"):
            neighbour_groups(x, y, gridsize=2, K=3, order="diagonal")

    def test_gridsize_one(self) -> None:
        x, y = grid(3)
        np.testing.assert_array_equal(neighbour_groups(x, y, gridsize=1), np.arange(9)[:, None])
        assert neighbour_groups(x, y, gridsize=1, nsamples=2).shape == (18, 1)

    def test_duplicate_positions_never_repeat_the_seed(self) -> None:
        x = np.zeros(6)
        y = np.zeros(6)
        groups = neighbour_groups(x, y, gridsize=2, K=5, seed=0)
        for row in groups:
            assert len(set(row.tolist())) == 4

    def test_too_few_candidates_is_a_clear_error(self) -> None:
        x, y = grid(3)
        with pytest.raises(ValueError, match="raise K"):
            neighbour_groups(x, y, gridsize=3, K=4)
        with pytest.raises(ValueError, match="raise K"):
            neighbour_groups(np.arange(3.0), np.zeros(3), gridsize=2, K=7)

    def test_bad_arguments(self) -> None:
        with pytest.raises(ValueError, match="gridsize"):
            neighbour_groups(np.zeros(3), np.zeros(3), gridsize=0)


class TestCoords:
    def test_relative_is_global_minus_centre(self) -> None:
        x, y = grid(4)
        groups = neighbour_groups(x, y, gridsize=2, seed=0)
        c = group_coords(x, y, groups)
        assert c.coords_global.shape == (16, 4, 2) and c.coords_offsets.shape == (16, 1, 2)
        np.testing.assert_allclose(c.coords_relative.sum(axis=1), 0.0, atol=1e-12)
        np.testing.assert_allclose(c.coords_global[:, :, 0], x[groups])
        np.testing.assert_allclose(c.coords_global[:, :, 1], y[groups])
        np.testing.assert_allclose(c.coords_relative, c.coords_global - c.coords_offsets)


class _RecordingSource:
    """An array that records the index of every read, to count gathers."""

    def __init__(self, array: np.ndarray) -> None:
        self.array = array
        self.reads: list[Any] = []

    def __getitem__(self, index: Any) -> np.ndarray:
        self.reads.append(index)
        return self.array[index]


class TestGather:
    def test_one_sorted_gather_per_batch(self) -> None:
        data = np.arange(10 * 2 * 2, dtype=np.float32).reshape(10, 2, 2)
        source = _RecordingSource(data)
        groups = np.array([[7, 2, 2, 9], [1, 7, 0, 3]])
        out = gather_patterns(source, groups)
        assert out.shape == (2, 4, 2, 2)
        np.testing.assert_array_equal(out, data[groups])
        assert len(source.reads) == 1
        np.testing.assert_array_equal(source.reads[0], [0, 1, 2, 3, 7, 9])

    def test_sorted_unique_batch_is_gathered_directly(self) -> None:
        data = np.arange(10 * 2 * 2, dtype=np.float32).reshape(10, 2, 2)
        source = _RecordingSource(data)
        groups = np.array([[1], [4], [8]])
        np.testing.assert_array_equal(gather_patterns(source, groups), data[groups])
        assert len(source.reads) == 1
        np.testing.assert_array_equal(source.reads[0], [1, 4, 8])

    def test_unaligned_map_is_never_copied_whole(self, tmp_path: Path) -> None:
        # DATA-004: ndarray.take() on an unaligned array copies all of it first; fancy indexing does not.
        import tracemalloc

        data = np.arange(2000 * 16 * 16, dtype=np.float32).reshape(2000, 16, 16)
        raw = tmp_path / "u.bin"
        raw.write_bytes(b"\0" + data.tobytes())
        unaligned = np.memmap(raw, dtype="<f4", mode="r", offset=1, shape=data.shape)
        assert not unaligned.flags.aligned
        groups = np.array([[1, 5, 9, 1990], [7, 3, 3, 2]])
        tracemalloc.start()
        try:
            out = gather_patterns(unaligned.view(np.ndarray), groups)
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
        np.testing.assert_array_equal(out, data[groups])
        assert peak < data.nbytes / 20, f"gather allocated {peak} bytes for a {data.nbytes}-byte map"

    def test_lazy_grouped_patterns_indexing(self, tmp_path: Path) -> None:
        arrays = dataset_arrays(12, 8)
        bridge = MemmapDatasetBridge(write_npz(tmp_path / "d.npz", arrays))
        groups = neighbour_groups(bridge.xcoords, bridge.ycoords, gridsize=2, seed=0)
        lazy = LazyGroupedPatterns(bridge, groups)
        full = np.moveaxis(arrays["diffraction"][groups], 1, -1)  # (B, H, W, C)
        assert lazy.shape == full.shape == (12, 8, 8, 4) and len(lazy) == 12
        np.testing.assert_array_equal(np.asarray(lazy), full)
        np.testing.assert_array_equal(lazy[3], full[3])
        np.testing.assert_array_equal(lazy[2:5], full[2:5])
        np.testing.assert_array_equal(lazy[[5, 1]], full[[5, 1]])
        np.testing.assert_array_equal(lazy[4, :, :, 1], full[4, :, :, 1])
        np.testing.assert_array_equal(lazy[..., 0], full[..., 0])
        assert np.asarray(lazy, dtype=np.float64).dtype == np.float64

    def test_grouped_data_fields(self, tmp_path: Path) -> None:
        arrays = dataset_arrays(12, 8)
        arrays["objectGuess"] = np.ones((30, 30), np.complex64)
        bridge = MemmapDatasetBridge(write_npz(tmp_path / "d.npz", arrays))
        g = grouped_data(bridge, N=8, K=6, nsamples=2, gridsize=2, seed=0)
        assert g["diffraction"].shape == (24, 8, 8, 4)
        assert g["nn_indices"].shape == (24, 4) and g["scan_index"].shape == (24, 4)
        assert g["coords_relative"].shape == (24, 4, 2) and g["coords_offsets"].shape == (24, 1, 2)
        assert g["objectGuess"].shape == (30, 30) and g["probeGuess"].shape == (8, 8)
        assert (g["gridsize"], g["K"], g["nsamples"]) == (2, 6, 2)

    def test_wrong_pattern_size_is_a_clear_error(self, tmp_path: Path) -> None:
        bridge = MemmapDatasetBridge(write_npz(tmp_path / "d.npz", dataset_arrays(5, 8)))
        with pytest.raises(ValueError, match="N=64 does not match .* 8x8; pass N=8"):
            bridge.get_grouped_data(64, 4, 1, 1)
