"""Probes for the baselines' tests."""
from __future__ import annotations

import numpy as np

from ptycho_torch.simulate import make_probe


def plain_probe(n: int, defocus_rad: float = 5.0) -> np.ndarray:
    """(n, n) complex64: a defocused circular aperture of radius n/8 (no central stop, no coma), the probe the
    baselines' tests were measured with; `simulate.make_probe`'s default is now the fly64-like ring."""
    return make_probe(n, aperture_radius_px=n / 8, defocus_rad=defocus_rad, central_stop=0.0, coma_rad=0.0)


def sharp_probe(n: int, radius: float | None = None, chirp_px: float | None = None) -> np.ndarray:
    """(n, n) complex64: a spot of radius n/4 (soft 1 px edge) with a steep quadratic phase, pi r^2 / L,
    L = 3n/8 by default: compact in real space, with a wide spectrum like the measured fly001 probe
    (61% of the spectral energy beyond radius 3n/8 for n = 32; fly001: 63%)."""
    radius = n / 4 if radius is None else radius
    length = 3 * n / 8 if chirp_px is None else chirp_px
    r = np.hypot(*(np.indices((n, n)) - n // 2))
    amplitude = 0.5 * (1 - np.tanh(r - radius))
    return (amplitude * np.exp(1j * np.pi * r**2 / length)).astype(np.complex64)


def spectral_fraction_beyond(probe: np.ndarray, radius: float) -> float:
    """Fraction of the probe's spectral energy beyond `radius` pixels of the (centred) spectrum."""
    n = probe.shape[0]
    k = np.fft.fftshift(np.fft.fftfreq(n) * n)
    energy = np.abs(np.fft.fftshift(np.fft.fft2(probe))) ** 2
    return float(energy[np.hypot(k[:, None], k[None, :]) > radius].sum() / energy.sum())
