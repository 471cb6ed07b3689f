"""The noise model: the photon scale between unit-scale amplitudes and counts, Poisson counts and losses.

Conventions:
- Detector counts are Poisson with rate (A * s)^2, A the unit-scale amplitude (forward.py), s a scale;
  a stored diffraction amplitude is sqrt(counts). Poisson noise is drawn on counts, never on amplitudes.
- Two ways to choose s. intensity_scale: from the probe alone, assuming |O| ~ 1 (what a reconstruction
  knows: the trainer, the model and the baselines). photon_scale: from the noiseless amplitudes of a known
  object, so that the mean total counts per pattern is exactly the requested dose (the simulator).
- Losses are elementwise; callers reduce them.
"""

from __future__ import annotations

import math
import numbers

import numpy as np
import torch
from torch import Tensor

from ptycho_torch.errors import PhysicsError
from ptycho_torch.physics.forward import probe_modes
from ptycho_torch.physics.propagation import intensity


def _check_counts(mean_total_counts: float) -> None:
    if isinstance(mean_total_counts, bool) or not (
        isinstance(mean_total_counts, numbers.Real) and math.isfinite(mean_total_counts)
    ):
        raise PhysicsError(f"mean_total_counts must be a finite number, got {mean_total_counts!r}")
    if mean_total_counts <= 0:
        raise PhysicsError(
            f"mean_total_counts must be > 0 (mean photons per pattern), got {mean_total_counts}"
        )


def intensity_scale(probe: Tensor, mean_total_counts: float) -> float:
    """Scale s mapping unit-scale amplitudes to sqrt(counts): counts = (A * s)^2.

    With |O| ~ 1 and the orthonormal FFT, Parseval gives sum|F|^2 = sum|O P|^2 ~ sum|P|^2 (summed over the
    modes), so a pattern holds about s^2 * sum|P|^2 counts and s = sqrt(mean_total_counts / sum|P|^2).
    The object's absolute amplitude and the probe's power cannot be separated by the data; this choice
    puts the object at |O| ~ 1.
    """
    _check_counts(mean_total_counts)
    power = float(intensity(probe_modes(probe).detach()).sum())
    if not (math.isfinite(power) and power > 0):
        raise PhysicsError(
            f"probe power sum|P|^2 must be finite and > 0, got {power}; is the probe all zeros?"
        )
    return math.sqrt(mean_total_counts / power)


def photon_scale(amplitudes: np.ndarray, mean_total_counts: float) -> float:
    """Scale s that gives noiseless amplitudes (P, N, N) a mean of sum (A s)^2 over the patterns equal to
    mean_total_counts (sums in float64)."""
    _check_counts(mean_total_counts)
    power = float(np.square(amplitudes, dtype=np.float64).sum(axis=(-2, -1)).mean())
    if not (math.isfinite(power) and power > 0):
        raise PhysicsError(f"the patterns' mean power must be finite and > 0, got {power}; are they all dark?")
    return math.sqrt(mean_total_counts / power)


def poisson_amplitudes(amplitudes: np.ndarray, scale: float, rng: np.random.Generator) -> np.ndarray:
    """sqrt(counts) as float32, counts ~ Poisson((A * scale)^2) drawn from rng, for amplitudes A (..., N, N)."""
    rate = np.square(np.asarray(amplitudes, dtype=np.float64) * scale)
    return np.sqrt(rng.poisson(rate)).astype(np.float32)


def poisson_nll_counts(rate: Tensor, counts: Tensor, *, eps: float = 1e-8) -> Tensor:
    """Elementwise Poisson NLL without the counts-only term: rate - counts * log(rate + eps).

    Equals -log Poisson(counts; rate) - lgamma(counts + 1) up to eps; eps > 0 keeps it finite at rate 0.
    """
    if eps <= 0:
        raise PhysicsError(f"eps must be > 0 so log(rate + eps) is finite at rate 0, got {eps}")
    return rate - counts * torch.log(rate + eps)


def poisson_nll(
    pred_amplitude: Tensor, measured_amplitude: Tensor, scale: float | Tensor, *, eps: float = 1e-8
) -> Tensor:
    """Elementwise Poisson NLL of measured counts given predicted amplitudes.

    pred_amplitude: unit scale (the physics output); measured_amplitude: sqrt(counts), as stored;
    scale: intensity_scale(). rate = (pred_amplitude * scale)^2, counts = measured_amplitude^2.
    """
    rate = (pred_amplitude * scale).square()
    return poisson_nll_counts(rate, measured_amplitude.square(), eps=eps)


def amplitude_mae(pred_amplitude: Tensor, measured_amplitude: Tensor, scale: float | Tensor) -> Tensor:
    """Elementwise |pred - measured / scale|, compared in unit scale (same arguments as poisson_nll)."""
    return (pred_amplitude - measured_amplitude / scale).abs()
