"""Mini-batch rPIE over sparse sets: the positions of a batch are updated together, and their windows never
overlap, so each gets exactly the single-position rPIE update.

For position j at c_j, with object window O_j (N, N) cut at the nearest pixel (physics.Interpolation.
NEAREST), the probe P in the data's scale moved by the sub-pixel rest, P_j = T_j P (physics.shift_probe,
the forward model of physics.forward), and measured amplitudes m_j:

    psi_j  = O_j P_j                                exit wave
    psi'_j = F^-1[ m_j F[psi_j] / |F[psi_j]| ]      the measured modulus imposed, the phase kept
    d_j    = psi'_j - psi_j
    O     += step_O * S_j^T( conj(P_j) d_j / ((1 - a) |P_j|^2 + a max |P_j|^2) )
    P     += step_P * sum_j T_j^T( conj(O_j) d_j ) / ((1 - a) E + a max E),   E = sum_j |O_j|^2

S_j^T is physics.place_patches with NEAREST (the window put back at its pixels), T_j^T the probe moved
back (the Fourier shift is unitary). a = 1 is ePIE (Maiden & Rodenburg 2009), a < 1 rPIE (Maiden, Johnson &
Li 2017). The probe update sums over the batch with the batch's summed object power, the least-squares
combination, since every position shares the probe.

Why sparse sets (common.sparse_sets), not arbitrary batches: each position then gets the exact
single-position update, which is bounded for every a. Summing overlapping updates with the
summed-illumination denominator overshot when the object patch itself was moved by sub-pixel Fourier
shifts (BASE-001: a largest eigenvalue of 2 to 4.5 on the 64 px scan, runs diverged after 30 to 180
passes). This is the sparse-set batching of GPU ptychography codes.
"""
from __future__ import annotations

import torch
from torch import Tensor

from ptycho_torch import physics
from ptycho_torch.baselines.common import Batches, PassStats
from ptycho_torch.baselines.config import ReconstructionConfig

NEAREST = physics.Interpolation.NEAREST  # the object window of the forward model: no sub-pixel move


class EPIE:
    """Holds the object (H, W) and the probe (N, N); iterate() runs one pass over all batches."""

    def __init__(self, obj: Tensor, probe: Tensor, scale: float, config: ReconstructionConfig) -> None:
        self.object = obj.clone()
        self.probe = probe.clone()  # (N, N) in the scale it was given in; the data's scale is probe * scale
        self.scale = scale
        self.config = config
        self.object_step, self.probe_step = config.steps
        self.alpha = config.pie_alpha

    def _denominator(self, power: Tensor) -> Tensor:
        """(1 - a) power + a max(power), the max over each (N, N) image."""
        return (1.0 - self.alpha) * power + self.alpha * power.amax(dim=(-2, -1), keepdim=True)

    def iterate(self, iteration: int, batches: Batches, stats: PassStats) -> None:
        """One pass: every batch (a sparse set, in a fresh random order) updates the estimate in turn."""
        for measured, centres in batches():
            self.step(measured, centres, iteration, stats)

    @torch.no_grad()
    def step(self, measured: Tensor, centres: Tensor, iteration: int, stats: PassStats) -> None:
        """measured (B, N, N) amplitudes, centres (B, 2) = (x, y) with disjoint windows; 1-based iteration."""
        cfg = self.config
        n = self.probe.shape[-1]
        offsets = physics.beam_offsets(centres)  # (B, 2)
        probes = physics.shift_probe(self.probe * self.scale, offsets).squeeze(-3)  # (B, N, N)
        windows = physics.extract_patches(self.object, centres, n, interpolation=NEAREST)  # (B, N, N)
        psi = windows * probes  # (B, N, N)
        far = physics.far_field(psi)
        modulus = far.abs()
        stats.add(modulus.square(), measured)
        tiny = torch.finfo(modulus.dtype).tiny ** 0.5
        # where the prediction is dark its phase is undefined: take the measured modulus with phase 0
        unit = torch.where(modulus > tiny, far / modulus.clamp_min(tiny), torch.ones_like(far))
        delta = physics.back_propagate(measured * unit) - psi  # (B, N, N)

        if cfg.refine_probe and iteration >= cfg.probe_start:
            object_power = (windows.real.square() + windows.imag.square()).sum(0)
            moved_back = physics.fourier_shift(windows.conj() * delta, -offsets[:, 0], -offsets[:, 1])
            change = moved_back.sum(0) / self._denominator(object_power)
            self.probe = self.probe + (self.probe_step / self.scale) * change
        probe_power = probes.real.square() + probes.imag.square()
        update = probes.conj() * delta / self._denominator(probe_power)
        shape = (self.object.shape[-2], self.object.shape[-1])
        self.object += self.object_step * physics.place_patches(update, centres, shape, interpolation=NEAREST)
