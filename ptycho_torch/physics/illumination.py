"""How brightly the scan lit each object pixel: the probe's intensity summed over the scan positions.

Conventions: one probe's intensity is normalised to a peak of 1 (its modes' intensities summed), so the
summed illumination reads "in units of one probe's peak", however dense the scan; placement is bilinear
(patches.reassemble_patches), the same as inference's stitching weights. region.covered turns it into the
covered region.
"""

from __future__ import annotations

import torch
from torch import Tensor

from ptycho_torch.physics.forward import probe_modes
from ptycho_torch.physics.patches import reassemble_patches
from ptycho_torch.physics.propagation import intensity

CHUNK = 1024  # positions placed per call, which bounds the memory of the expanded patches


def probe_weights(probe: Tensor) -> Tensor:
    """(N, N) real: the probe (N, N) or (M, N, N)'s intensity summed over its modes, peak 1."""
    power = intensity(probe_modes(probe))
    return power / power.max()


def illumination(probe: Tensor, centres: Tensor, object_shape: tuple[int, int]) -> Tensor:
    """(H, W) real: probe_weights(probe) placed at every centre (P, 2) = (x, y) and summed."""
    weights = probe_weights(probe)
    total = torch.zeros(tuple(object_shape), dtype=weights.dtype, device=weights.device)
    for start in range(0, centres.shape[0], CHUNK):
        part = centres[start : start + CHUNK]
        total += reassemble_patches(weights.expand(part.shape[0], *weights.shape), part, object_shape)[0]
    return total
