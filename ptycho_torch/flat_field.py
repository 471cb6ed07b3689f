"""The beam's imprint on a network's patches, measured from the patches and divided out (`infer`'s flat field).

A network that reads one diffraction pattern and emits the object patch the beam lit learns, besides the
object, a pattern fixed in the patch's frame: the beam's shape (docs/findings.md, TRAIN-014; the study's
networks, averaged over all their patches of a scan, vary by 8% to 13% across the beam, probe-intensity
weighted, where the true patches' average varies by 1.4%). Stitched at every scan position, that pattern
becomes a grid over the whole reconstruction. The object's statistics do not depend on where in the beam a
pixel sits, so the average of many patches over a scan is flat up to the object's own mean; what is not
flat is the network's. Like a detector's flat field, it is measured from the data at hand and divided out:

    A(r)   = mean_p |patch_p(r)|,  normalised to a probe-intensity-weighted mean of 1
    phi(r) = arg mean_p patch_p(r) conj(u_p),  u_p the phase of sum_r w(r) patch_p(r) (each patch's own
             phase offset removed), centred so that its weighted mean phasor is real
    corrected patch_p(r) = patch_p(r) exp(-i phi(r)) / A(r)

w is the stitching weight (the probe's intensity). Nothing here knows the truth: the estimate comes from
the network's own patches of the scan being reconstructed. It needs many positions: from fewer than
MIN_PATCHES it is not made (the average would carry the object's structure). On the study's scans 10
patches gave most of the gain of all 546, and 100 all of it (TRAIN-014), so inference measures it on at
most SAMPLE_GROUPS groups spread evenly over the scan (sample_groups): a first pass that costs little
beside the stitching pass on a large scan.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

MIN_PATCHES = 10
SAMPLE_GROUPS = 256


def sample_groups(n_groups: int) -> np.ndarray:
    """At most SAMPLE_GROUPS of the indices 0..n_groups - 1, evenly spaced (the scan's order: spread over it)."""
    return np.unique(np.linspace(0, n_groups - 1, min(n_groups, SAMPLE_GROUPS)).round().astype(np.int64))


@dataclass(frozen=True)
class FlatField:
    """What to multiply each (N, N) patch by, and how far from flat the network's patches were."""

    correction: Tensor  # (N, N) complex64: exp(-i phi) / A
    n_patches: int
    amplitude_spread: float  # the weighted relative standard deviation of A about 1
    phase_spread_rad: float  # the weighted rms of phi

    def summary(self) -> dict[str, float | int]:
        return {"n_patches": self.n_patches, "amplitude_spread": self.amplitude_spread,
                "phase_spread_rad": self.phase_spread_rad}

    def describe(self) -> str:
        return (f"flat field from {self.n_patches} patches: the network's patches varied by "
                f"{100 * self.amplitude_spread:.1f}% in amplitude and {self.phase_spread_rad:.3f} rad in phase "
                "across the beam; divided out (--no-flat-field keeps them as they are)")


class FlatFieldEstimate:
    """Sums over patches, batch by batch: add() each batch of (P, N, N) complex patches, then result()."""

    def __init__(self, weights: Tensor) -> None:
        self.weights = weights.to(torch.float64)  # (N, N), the stitching weights
        self.amplitude_sum = torch.zeros_like(self.weights)
        self.phasor_sum = torch.zeros_like(self.weights, dtype=torch.complex128)
        self.count = 0

    def add(self, patches: Tensor) -> None:
        values = patches.to(torch.complex128)
        offset = (values * self.weights).sum((-2, -1), keepdim=True)  # (P, 1, 1)
        size = offset.abs()
        unit = torch.where(size > 0, offset / torch.where(size > 0, size, 1.0), 1.0)
        self.amplitude_sum += values.abs().sum(0)
        self.phasor_sum += (values * unit.conj()).sum(0)
        self.count += int(values.shape[0])

    def result(self) -> FlatField | None:
        """The flat field, or None from fewer than MIN_PATCHES patches or a zero weighted amplitude."""
        if self.count < MIN_PATCHES:
            return None
        w, total = self.weights, float(self.weights.sum())
        mean_amplitude = self.amplitude_sum / self.count
        level = float((mean_amplitude * w).sum()) / total
        if not level > 0:
            return None
        flat = torch.where(mean_amplitude > 0, mean_amplitude / level, 1.0)
        phase = torch.angle(self.phasor_sum)
        phase = torch.angle(torch.exp(1j * (phase - torch.angle((torch.exp(1j * phase) * w).sum()))))
        return FlatField(
            correction=(torch.exp(-1j * phase) / flat).to(torch.complex64),
            n_patches=self.count,
            amplitude_spread=math.sqrt(float(((flat - 1) ** 2 * w).sum()) / total),
            phase_spread_rad=math.sqrt(float((phase**2 * w).sum()) / total))
