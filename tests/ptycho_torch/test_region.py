"""The one region rule: covered pixels and their bounding box."""
from __future__ import annotations

import numpy as np
import pytest

from ptycho_torch.errors import OptionsError
from ptycho_torch.region import COVERAGE_THRESHOLD, bounding_box, covered


def test_covered_uses_the_threshold_inclusively() -> None:
    weight = np.array([[0.0, COVERAGE_THRESHOLD, 0.5], [0.09, 1.0, 2.0]])
    np.testing.assert_array_equal(covered(weight), [[False, True, True], [False, True, True]])
    np.testing.assert_array_equal(covered(weight, 0.6), [[False, False, False], [False, True, True]])
    with pytest.raises(OptionsError, match=r"coverage threshold must be a finite number in \(0, 1\]"):
        covered(weight, 0.0)


def test_bounding_box_is_the_smallest_box_holding_the_mask() -> None:
    mask = np.zeros((6, 7), bool)
    mask[2, 3] = mask[4, 1] = True
    rows, cols = bounding_box(mask)
    assert (rows, cols) == (slice(2, 5), slice(1, 4))
    with pytest.raises(ValueError, match="no pixel"):
        bounding_box(np.zeros((3, 3), bool))
