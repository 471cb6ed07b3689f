"""Mini-batch rPIE over sparse sets: the positions of a batch are updated together, and their windows never
overlap, so each gets exactly the single-position rPIE update.

For position j with object patch O_j (N, N) (physics.extract_patches, sub-pixel shift included), probe P
in the data's scale and measured amplitudes m_j:

    psi_j  = O_j P                                exit wave
    psi'_j = F^-1[ m_j F[psi_j] / |F[psi_j]| ]    the measured modulus imposed, the phase kept
    d_j    = psi'_j - psi_j
    O     += step_O * S_j^T( conj(P) d_j / ((1 - a) |P|^2 + a max |P|^2) )
    P     += step_P * sum_j conj(O_j) d_j / ((1 - a) E + a max E),   E = sum_j |O_j|^2

S_j^T is physics.place_patches, the adjoint of extract_patches. a = 1 is ePIE (Maiden & Rodenburg
2009), a < 1 rPIE (Maiden, Johnson & Li 2017). The probe update sums over the batch with the batch's
summed object power, the least-squares combination, since every position shares the probe.

Why sparse sets (common.sparse_sets), not arbitrary batches: with a sub-pixel Fourier shift, S_j^T mixes
pixels, and summing overlapping updates with the summed-illumination denominator
sum_j S_j^T conj(P) d_j / sum_j S_j^T |P|^2 overshoots: power iteration on the linearised update
measured a largest eigenvalue of 2 to 4.5 (above 2 diverges) for a = 0.1 on the 64 px simulated scan, and
runs diverged after 30 to 180 passes. Per-position updates on disjoint windows are bounded by 1 for every
a, because the shifted-and-cropped extraction satisfies S_j S_j^T = I. This is the sparse-set batching of
GPU ptychography codes.
"""
from __future__ import annotations

import torch
from torch import Tensor

from ptycho_torch import physics
from ptycho_torch.baselines.common import Batches, PassStats
from ptycho_torch.baselines.config import ReconstructionConfig


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
        return (1.0 - self.alpha) * power + self.alpha * power.max()

    def iterate(self, iteration: int, batches: Batches, stats: PassStats) -> None:
        """One pass: every batch (a sparse set, in a fresh random order) updates the estimate in turn."""
        for measured, centres in batches():
            self.step(measured, centres, iteration, stats)

    @torch.no_grad()
    def step(self, measured: Tensor, centres: Tensor, iteration: int, stats: PassStats) -> None:
        """measured (B, N, N) amplitudes, centres (B, 2) = (x, y) with disjoint windows; 1-based iteration."""
        cfg = self.config
        probe = self.probe * self.scale
        patches = physics.extract_patches(self.object, centres, probe.shape[-1], interpolation=cfg.interpolation,
                                          pad=cfg.pad)  # (B, N, N)
        psi = physics.exit_wave(patches, probe).squeeze(-3)  # (B, N, N)
        far = physics.far_field(psi)
        modulus = far.abs()
        stats.add(modulus.square(), measured)
        tiny = torch.finfo(modulus.dtype).tiny ** 0.5
        # where the prediction is dark its phase is undefined: take the measured modulus with phase 0
        unit = torch.where(modulus > tiny, far / modulus.clamp_min(tiny), torch.ones_like(far))
        delta = physics.back_propagate(measured * unit) - psi  # (B, N, N)

        if cfg.refine_probe and iteration >= cfg.probe_start:
            object_power = (patches.real.square() + patches.imag.square()).sum(0)
            change = (patches.conj() * delta).sum(0) / self._denominator(object_power)
            self.probe = self.probe + (self.probe_step / self.scale) * change
        probe_power = probe.real.square() + probe.imag.square()
        update = probe.conj() * delta / self._denominator(probe_power)
        shape = (self.object.shape[-2], self.object.shape[-1])
        self.object += self.object_step * physics.place_patches(update, centres, shape,
                                                                interpolation=cfg.interpolation, pad=cfg.pad)
