"""The train/test split of one scan: disjoint patch windows, inside the object."""
from __future__ import annotations

import numpy as np
import pytest

from ptycho_torch.study.config import DataSpec
from ptycho_torch.study.split import scan_split


@pytest.mark.parametrize(("overlap", "scan"), [(0.7, "grid"), (0.2, "grid"), (0.5, "random")])
def test_train_and_test_patch_windows_never_share_a_pixel(overlap: float, scan: str) -> None:
    data = DataSpec(N=32, object_size=256, test_fraction=0.3, scan=scan)
    split = scan_split(data, overlap, seed=3)
    assert split.n_train > 0 and split.n_test > 0
    assert not (split.train & split.test).any()
    rounded = np.floor(split.xcoords + 0.5)
    # a window covers [c - N/2, c + N/2): disjoint when the centres are N apart (one more for the bilinear tap)
    assert rounded[split.train].max() + data.N + 1 <= rounded[split.test].min()
    assert split.n_train + split.n_test + split.n_dropped == len(split.xcoords)
    lo = data.N // 2 + 2
    assert split.xcoords.min() >= lo and split.xcoords.max() <= data.object_size - lo
