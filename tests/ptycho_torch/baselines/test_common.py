"""What the baselines share: sparse sets of positions whose windows never overlap."""
from __future__ import annotations

import numpy as np

from ptycho_torch.baselines.common import sparse_sets
from ptycho_torch.simulate import scan_positions


def test_sparse_sets_cover_every_position_once_with_disjoint_windows() -> None:
    x, y, _ = scan_positions(100, N=64, overlap=0.7, scan="random", seed=3)
    positions = np.stack([x, y], axis=1)
    window = 64 + 4 + 1
    sets = sparse_sets(positions, window, 5, np.random.default_rng(0))
    np.testing.assert_array_equal(np.sort(np.concatenate(sets)), np.arange(100))
    assert max(len(s) for s in sets) <= 5
    for members in sets:
        gap = np.abs(positions[members, None] - positions[None, members]).max(axis=-1)
        assert (gap[~np.eye(len(members), dtype=bool)] > window).all()
