"""Poisson maximum likelihood by preconditioned nonlinear conjugate gradients, gradients by autograd.

The objective is the Poisson negative log-likelihood of all measured counts c = m^2 (m the stored
amplitudes) under the predicted rates s^2 |F[O_j P_j]|^2 (O_j the object window at the nearest pixel, P_j
the probe moved by the sub-pixel rest: physics.forward's model), summed over every pattern and detector pixel
(physics.poisson_nll_counts), accumulated in float64: the sum is dominated by -c log c, and in float32 its
rounding swamps the change a late step makes. One iteration:

1. one pass over the data, batch by batch, accumulating the objective and its gradient g (autograd through
   physics' extract_patches and shift_probe -> exit wave -> far_field -> intensity);
2. a preconditioned Polak-Ribiere (PR+) direction, the illumination being the preconditioner (as in LSQ-ML,
   Odstrcil, Menzel & Guizar-Sicairos 2018, with rPIE's regularised denominator):
       z_O = g_O / ((1 - a) D + a max D),       D = sum_j S_j^T |s P_j|^2     (object)
       z_P = k g_P / ((1 - a) E + a max E),     E = sum_j |s O_j|^2   (probe, when refined; k = probe_step)
       d = -z + beta d_prev,  beta = max(0, <g, z - z_prev> / <g_prev, z_prev>)
3. a backtracking line search on the whole objective (forward passes only): the first trial step is twice
   the last accepted one (object_step at the start), then the minimiser of the quadratic through the
   objective, its slope and the failed trial, until the Armijo condition holds. The objective never rises.

Warm-up: the Poisson gradient carries the factor 1 - c / rate per detector pixel, huge where the starting
object predicts almost nothing but photons were counted; those few pixels then cap the step length and the
first passes barely move. For the first `ml_warmup` iterations that factor is damped by rate / (rate +
gamma c), gamma falling linearly from 1 to 0 (gamma = 1 is the diagonal Newton step of the Poisson NLL in
the detector amplitude; the line search then measures its slope with the damped gradient, but still
demands a real decrease of the objective). After the warm-up the gradient is the exact Poisson gradient, so the iteration
converges to the maximum-likelihood estimate. Measured on the 36-position noiseless test case, 100
iterations: amplitude MAE 0.042 without warm-up, 0.015 with 30 (docs/findings.md, BASE-002).

The probe joins at iteration config.probe_start, which restarts the conjugation. batch_size only bounds
the memory a pass needs; every iteration sees every pattern.
"""
from __future__ import annotations

import math

import torch
from torch import Tensor

from ptycho_torch import physics
from ptycho_torch.baselines.common import Batches, PassStats
from ptycho_torch.baselines.config import ReconstructionConfig

NEAREST = physics.Interpolation.NEAREST  # the object window of the forward model: no sub-pixel move

ARMIJO = 1e-4  # sufficient decrease: f(t) <= f(0) + ARMIJO * t * slope
MAX_TRIALS = 12  # after this many failed steps the direction is useless: restart along -z next iteration
SHRINK_LIMITS = (0.1, 0.5)  # a quadratic-fit step is kept within these fractions of the failed trial


class MaximumLikelihood:
    """Holds object (H, W) and probe (N, N, the scale it was given in); iterate() does one CG iteration."""

    def __init__(self, obj: Tensor, probe: Tensor, scale: float, config: ReconstructionConfig) -> None:
        self.object = obj.clone()
        self.probe = probe.clone()
        self.scale = scale
        self.config = config
        self.alpha = config.pie_alpha
        self.trial, self.probe_weight = config.steps
        self.previous: tuple[list[Tensor], list[Tensor], list[Tensor]] | None = None  # g, z, d
        self.evaluations = 0  # forward-only passes spent in line searches

    def _rates(self, obj: Tensor, probe: Tensor, centres: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """(predicted counts (B, N, N), object windows (B, N, N), moved probes (B, 1, N, N))."""
        windows = physics.extract_patches(obj, centres, probe.shape[-1], interpolation=NEAREST)
        probes = physics.shift_probe(probe, physics.beam_offsets(centres))  # (B, 1, N, N)
        far = physics.far_field(windows.unsqueeze(-3) * probes)  # (B, 1, N, N)
        return self.scale**2 * physics.intensity(far), windows, probes

    @staticmethod
    def _nll(rate: Tensor, measured: Tensor) -> Tensor:
        """The Poisson NLL of the measured pixels; a held-out pixel (NaN, holdout.py) counts nothing."""
        valid = measured.isfinite()
        counts = torch.where(valid, measured, 0.0).double().square()
        return (physics.poisson_nll_counts(rate.double(), counts) * valid).sum()

    def _objective(self, obj: Tensor, probe: Tensor, batches: Batches) -> float:
        with torch.no_grad():
            parts = [self._nll(self._rates(obj, probe, c)[0], m) for m, c in batches()]
        return float(torch.stack(parts).sum())  # one readback per pass

    def _gradient(
        self, batches: Batches, refine: bool, gamma: float, stats: PassStats
    ) -> tuple[float, list[Tensor], list[Tensor]]:
        """(objective, gradients [g_O, g_P if refine], preconditioner powers [D, E if refine]), one pass."""
        obj = self.object.detach().requires_grad_(True)
        probe = self.probe.detach().requires_grad_(refine)
        shape = (obj.shape[-2], obj.shape[-1])
        lit = torch.zeros(shape, dtype=torch.float32, device=obj.device)
        seen = torch.zeros(probe.shape, dtype=torch.float32, device=obj.device)
        parts: list[Tensor] = []
        for measured, centres in batches():
            rate, windows, probes = self._rates(obj, probe, centres)
            loss = self._nll(rate, measured)
            if gamma > 0:
                damping = (rate / (rate + gamma * measured.nan_to_num(0.0).square()).clamp_min(1e-30)).detach()
                rate.register_hook(lambda grad, damping=damping: grad * damping)
            loss.backward()
            parts.append(loss.detach())
            stats.add(rate, measured)
            with torch.no_grad():
                power = self.scale**2 * physics.intensity(probes)  # (B, N, N)
                lit += physics.place_patches(power, centres, shape, interpolation=NEAREST)
                if refine:
                    seen += self.scale**2 * (windows.real.square() + windows.imag.square()).sum(0)
        grads = [_grad(obj)] + ([_grad(probe)] if refine else [])
        return float(torch.stack(parts).sum()), grads, [lit, seen][: len(grads)]

    def _precondition(self, gradient: Tensor, power: Tensor) -> Tensor:
        return gradient / ((1.0 - self.alpha) * power + self.alpha * power.max())

    def iterate(self, iteration: int, batches: Batches, stats: PassStats) -> None:
        """One CG iteration over all patterns; iteration is 1-based."""
        cfg = self.config
        refine = cfg.refine_probe and iteration >= cfg.probe_start
        gamma = max(0.0, 1.0 - (iteration - 1) / cfg.ml_warmup) if cfg.ml_warmup else 0.0
        value, grads, powers = self._gradient(batches, refine, gamma, stats)
        with torch.no_grad():
            z = [self._precondition(g, p) for g, p in zip(grads, powers, strict=True)]
            if refine:
                z[1] = self.probe_weight * z[1]
            directions = [-zi for zi in z]
            if self.previous is not None and len(self.previous[0]) == len(grads):
                old_g, old_z, old_d = self.previous
                denominator = sum(_dot(a, b) for a, b in zip(old_g, old_z, strict=True))
                numerator = sum(_dot(g, zn - zo) for g, zn, zo in zip(grads, z, old_z, strict=True))
                beta = max(0.0, numerator / denominator) if denominator > 0 else 0.0
                directions = [d + beta * od for d, od in zip(directions, old_d, strict=True)]
            slope = sum(_dot(g, d) for g, d in zip(grads, directions, strict=True))
            if not slope < 0:  # conjugation spoilt the direction (rounding): restart along -z
                directions = [-zi for zi in z]
                slope = -sum(_dot(g, zi) for g, zi in zip(grads, z, strict=True))
            if not slope < 0:
                self.previous = None
                return  # a zero gradient: nothing left to improve
            self.previous = (grads, z, directions)
            self._line_search(value, slope, directions, refine, batches)

    def _line_search(
        self, value: float, slope: float, directions: list[Tensor], refine: bool, batches: Batches
    ) -> None:
        t = self.trial
        for _ in range(MAX_TRIALS):
            new_object = self.object + t * directions[0]
            new_probe = self.probe + t * directions[1] if refine else self.probe
            trial_value = self._objective(new_object, new_probe, batches)
            self.evaluations += 1
            if math.isfinite(trial_value) and trial_value <= value + ARMIJO * t * slope:
                self.object, self.probe = new_object, new_probe
                self.trial = 2.0 * t
                return
            curvature = trial_value - value - slope * t
            fit = -slope * t * t / (2.0 * curvature) if math.isfinite(curvature) and curvature > 0 else 0.0
            low, high = SHRINK_LIMITS
            t = min(max(fit, low * t), high * t)
        self.previous = None  # no step found along this direction: forget the conjugation
        self.trial = t


def _grad(leaf: Tensor) -> Tensor:
    return leaf.grad if leaf.grad is not None else torch.zeros_like(leaf)


def _dot(a: Tensor, b: Tensor) -> float:
    """Re sum(conj(a) b) in float64: with torch's complex gradients, the directional derivative."""
    return float((a.conj() * b).real.sum(dtype=torch.float64))
