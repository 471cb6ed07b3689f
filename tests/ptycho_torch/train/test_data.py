"""The trainer's data: the seeded train / validation split of the groups."""
from __future__ import annotations

import numpy as np

from ptycho_torch.train.data import split_groups


def test_split_is_by_group_seeded_and_disjoint() -> None:
    train_rows, val_rows = split_groups(50, 0.2, seed=3)
    assert len(val_rows) == 10 and len(train_rows) == 40
    assert sorted(np.concatenate([train_rows, val_rows]).tolist()) == list(range(50))
    again = split_groups(50, 0.2, seed=3)
    assert np.array_equal(again[1], val_rows)
    assert not np.array_equal(split_groups(50, 0.2, seed=4)[1], val_rows)
    assert len(split_groups(3, 0.01, seed=0)[1]) == 1  # a requested split is never empty ...
    assert len(split_groups(3, 0.0, seed=0)[1]) == 0  # ... unless none is asked for
