"""Fourier ring correlation: the curve on known cases, the resolution where it drops below the threshold, and
"not reached" (None) where it never does."""

from __future__ import annotations

import numpy as np
import pytest

from ptycho_torch.frc import frc


def test_frc_of_an_image_with_itself_is_one_and_of_independent_noise_near_zero() -> None:
    rng = np.random.default_rng(7)
    a, b = rng.standard_normal((128, 128)), rng.standard_normal((128, 128))
    same = frc(a, a)
    np.testing.assert_allclose(same.curve[1:], 1.0, atol=1e-12)
    assert not same.crossed and same.resolution is None and same.period_px is None  # not reached
    independent = frc(a, b)
    assert independent.crossed and independent.resolution < 0.05
    assert independent.frequencies[-1] == pytest.approx(0.5) and independent.frequencies[1] == pytest.approx(
        1 / 128
    )


def test_frc_resolution_tracks_the_band_limit() -> None:
    """Truth with content everywhere; recon = truth low-passed at 0.2 cycles/px plus white noise."""
    rng = np.random.default_rng(8)
    truth = rng.standard_normal((128, 128))
    spectrum = np.fft.fft2(truth)
    radius = np.hypot(np.fft.fftfreq(128)[:, None], np.fft.fftfreq(128)[None, :])
    low = np.fft.ifft2(spectrum * (radius < 0.2)).real
    recon = low + 0.2 * rng.standard_normal(truth.shape)
    result = frc(recon, truth)
    assert result.crossed and 0.17 < result.resolution < 0.23
