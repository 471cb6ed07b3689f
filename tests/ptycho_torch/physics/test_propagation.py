"""Propagation: Parseval, the zero frequency's pixel, an analytic Airy pattern, back-propagation."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy.special import j1

from ptycho_torch.physics import back_propagate, exit_wave, far_field, intensity
from tests.ptycho_torch.physics.samples import complex_field, disk


def test_parseval_holds_for_the_far_field() -> None:
    psi = complex_field((3, 2, 16, 16), seed=0, dtype=torch.complex128)
    farfield = far_field(psi)
    torch.testing.assert_close(
        farfield.abs().square().sum(dim=(-2, -1)), psi.abs().square().sum(dim=(-2, -1)), rtol=1e-12, atol=0
    )


def test_zero_frequency_is_at_the_centre_pixel() -> None:
    flat = torch.ones(16, 16, dtype=torch.complex64)
    farfield = far_field(flat).abs()
    assert farfield[8, 8] == pytest.approx(16.0, rel=1e-6)  # ortho: sum/sqrt(N*N)
    assert farfield.sum() == pytest.approx(16.0, rel=1e-5)


def test_circular_aperture_gives_an_airy_pattern() -> None:
    n, radius = 128, 8.0
    aperture = torch.tensor(disk(n, radius), dtype=torch.complex128)
    plane_wave = torch.ones(n, n, dtype=torch.complex128)
    measured = intensity(far_field(exit_wave(plane_wave, aperture))).numpy()
    measured /= measured[n // 2, n // 2]

    yy, xx = np.mgrid[:n, :n] - n // 2
    rho = np.hypot(yy, xx)
    v = np.maximum(2 * np.pi * radius * rho / n, 1e-12)
    airy = np.where(rho > 0, (2 * j1(v) / v) ** 2, 1.0)
    bins = np.round(rho).astype(int).ravel()
    counts = np.bincount(bins)
    profile = np.bincount(bins, measured.ravel()) / counts
    expected = np.bincount(bins, airy.ravel()) / counts
    assert np.abs(profile[:30] - expected[:30]).max() < 5e-3

    first_dark_ring = 3.8317 * n / (2 * np.pi * radius)  # first zero of J1, in detector pixels
    assert int(np.argmin(profile[:15])) == round(first_dark_ring)
    assert profile[round(first_dark_ring)] < 2e-3


def test_back_propagation_inverts_the_far_field() -> None:
    psi = complex_field((2, 3, 16, 16), seed=20, dtype=torch.complex128)
    torch.testing.assert_close(back_propagate(far_field(psi)), psi, rtol=1e-12, atol=1e-12)
    other = complex_field((2, 3, 16, 16), seed=21, dtype=torch.complex128)
    # unitary: back-propagation is also the adjoint
    torch.testing.assert_close(torch.vdot(far_field(psi).flatten(), other.flatten()),
                               torch.vdot(psi.flatten(), back_propagate(other).flatten()))
