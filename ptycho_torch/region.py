"""The reconstructed region: which object pixels count as scanned, one rule for every method.

A pixel is covered when the summed probe intensity of all scan positions over it, normalised to a peak of
1 for one probe, reaches COVERAGE_THRESHOLD. Inference (stitching), the iterative baselines, the study's
scoring region and the CLI all use this rule, so "the region" means the same pixels everywhere.
Torch-free on purpose: the CLI reads the default without importing torch.
"""
from __future__ import annotations

import numpy as np

from ptycho_torch import options

COVERAGE_THRESHOLD = 0.1  # of one probe's peak intensity; below it a pixel is too dimly lit to be recovered


def check_threshold(threshold: float, name: str = "coverage threshold") -> float:
    """The threshold as a float in (0, 1]; OptionsError (a ValueError) naming `name` otherwise."""
    return options.number(threshold, name, above=0, maximum=1)


def covered(weight: np.ndarray, threshold: float = COVERAGE_THRESHOLD) -> np.ndarray:
    """bool mask of the pixels whose summed, peak-normalised probe intensity `weight` reaches `threshold`."""
    return np.asarray(weight) >= check_threshold(threshold)


def bounding_box(mask: np.ndarray) -> tuple[slice, slice]:
    """The smallest (rows, cols) slices holding every True pixel of a 2-D mask (which must have one)."""
    rows, cols = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
    if rows.size == 0:
        raise ValueError("the mask selects no pixel, so it has no bounding box")
    return slice(int(rows[0]), int(rows[-1]) + 1), slice(int(cols[0]), int(cols[-1]) + 1)
