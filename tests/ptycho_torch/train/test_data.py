"""The trainer's data: the seeded train / validation split, held out at every gridsize."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from ptycho_torch.errors import TrainError
from ptycho_torch.memmap_bridge import MemmapDatasetBridge
from ptycho_torch.simulate import simulate_dataset, write_npz
from ptycho_torch.train.data import held_out_sets, split_groups, split_positions


def test_split_is_by_group_seeded_and_disjoint() -> None:
    train_rows, val_rows = split_groups(50, 0.2, seed=3)
    assert len(val_rows) == 10 and len(train_rows) == 40
    assert sorted(np.concatenate([train_rows, val_rows]).tolist()) == list(range(50))
    again = split_groups(50, 0.2, seed=3)
    assert np.array_equal(again[1], val_rows)
    assert not np.array_equal(split_groups(50, 0.2, seed=4)[1], val_rows)
    assert len(split_groups(3, 0.01, seed=0)[1]) == 1  # a requested split is never empty ...
    assert len(split_groups(3, 0.0, seed=0)[1]) == 0  # ... unless none is asked for


@pytest.mark.parametrize("gridsize", [1, 2, 3])
def test_no_validation_group_shares_a_pattern_with_a_training_group(tmp_path: Path, gridsize: int) -> None:
    bridge = MemmapDatasetBridge(write_npz(tmp_path / "d.npz", simulate_dataset(100, nphotons=1e3, overlap=0.7,
                                                                             seed=0, N=16)))
    train, val = held_out_sets(bridge, gridsize=gridsize, K=12, val_fraction=0.2, seed=0)
    train_patterns = set(train.dataset.groups[train.rows].ravel().tolist())
    val_patterns = set(val.dataset.groups[val.rows].ravel().tolist())
    assert len(val) > 0 and len(train) > 0
    assert not train_patterns & val_patterns
    assert len(train_patterns | val_patterns) == 100  # every pattern is used on one side
    # the validation side is one compact region of the scan: its groups are neighbours as the training ones are
    spreads = []
    for side in (train, val):
        groups = side.dataset.groups[side.rows]
        points = np.stack([bridge.xcoords[groups], bridge.ycoords[groups]], axis=-1)  # (B, C, 2)
        spreads.append(np.hypot(*(points - points.mean(axis=1, keepdims=True)).T).max())
    assert spreads[1] <= 1.5 * spreads[0] + 1e-9, spreads


def test_groups_per_position_multiplies_the_training_groups_only(tmp_path: Path) -> None:
    bridge = MemmapDatasetBridge(write_npz(tmp_path / "d.npz", simulate_dataset(100, nphotons=1e3, overlap=0.7,
                                                                             seed=0, N=16)))
    one_train, one_val = held_out_sets(bridge, gridsize=2, K=12, val_fraction=0.2, seed=0)
    train, val = held_out_sets(bridge, gridsize=2, K=12, val_fraction=0.2, seed=0, groups_per_position=3,
                               channel_order="quadrant")
    assert len(train) == 3 * len(one_train) and len(val) == len(one_val)
    groups = train.dataset.groups[train.rows]
    assert len({frozenset(row.tolist()) for row in groups}) > len(one_train)  # the extra groups are new draws
    x, y = bridge.xcoords[groups], bridge.ycoords[groups]  # (B, 4): TL, TR, BL, BR
    assert (x[:, 1] >= x[:, 0]).all() and (x[:, 3] >= x[:, 2]).all()
    assert (y[:, :2].max(axis=1) <= y[:, 2:].min(axis=1)).all()


def test_the_split_is_seeded_and_refuses_data_too_small_for_two_sides() -> None:
    x, y = np.meshgrid(np.arange(10.0), np.arange(10.0))
    x, y = x.ravel() * 5, y.ravel() * 5
    train, val = split_positions(x, y, 0.2, seed=3)
    assert len(val) == 20 and sorted(np.concatenate([train, val]).tolist()) == list(range(100))
    assert np.array_equal(split_positions(x, y, 0.2, seed=3)[1], val)
    assert not np.array_equal(split_positions(x, y, 0.2, seed=4)[1], val)
    assert len(split_positions(x, y, 0.0, seed=0)[1]) == 0
    assert len(split_positions(x[:9], y[:9], 0.01, seed=0, channels=4)[1]) == 4  # one group at least
    with pytest.raises(TrainError, match="--val-fraction 0"):
        split_positions(x[:7], y[:7], 0.1, seed=0, channels=4)
