"""The noise model: the intensity and photon scales, Poisson counts, the Poisson loss."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from ptycho_torch.physics import (
    PhysicsError,
    diffraction_amplitude,
    intensity_scale,
    photon_scale,
    poisson_amplitudes,
    poisson_nll,
    poisson_nll_counts,
)
from tests.ptycho_torch.physics.samples import complex_field, disk


def test_intensity_scale_gives_the_requested_mean_counts_for_a_unit_object() -> None:
    probe = torch.tensor(disk(32, 6.0), dtype=torch.complex64) * 0.37
    nphotons = 1e5
    s = intensity_scale(probe, nphotons)
    phases = torch.polar(torch.ones(5, 32, 32), complex_field((5, 32, 32), seed=3).real)  # |O| = 1
    counts = (diffraction_amplitude(phases, probe) * s).square().sum(dim=(-2, -1))
    torch.testing.assert_close(counts, torch.full((5,), nphotons), rtol=1e-4, atol=0)
    with pytest.raises(PhysicsError, match="mean_total_counts"):
        intensity_scale(probe, 0.0)
    with pytest.raises(PhysicsError, match="all zeros"):
        intensity_scale(torch.zeros(4, 4, dtype=torch.complex64), 10.0)


def test_poisson_loss_matches_torch_poisson_up_to_the_counts_only_term() -> None:
    gen = torch.Generator().manual_seed(4)
    rate = torch.rand(200, generator=gen, dtype=torch.float64) * 50 + 0.1
    counts = torch.poisson(rate, generator=gen)
    ours = poisson_nll_counts(rate, counts, eps=1e-12)
    reference = -torch.distributions.Poisson(rate).log_prob(counts) - torch.lgamma(counts + 1)
    torch.testing.assert_close(ours, reference, rtol=1e-9, atol=1e-9)
    # the amplitude form is the same thing with rate = (A s)^2, counts = measured^2
    scale = 3.0
    via_amplitudes = poisson_nll(rate.sqrt() / scale, counts.sqrt(), scale, eps=1e-12)
    torch.testing.assert_close(via_amplitudes, ours)


def test_poisson_loss_is_finite_at_zero_rate_and_zero_counts() -> None:
    rate = torch.tensor([0.0, 0.0, 1.0], requires_grad=True)
    counts = torch.tensor([0.0, 3.0, 0.0])
    loss = poisson_nll_counts(rate, counts)
    assert torch.isfinite(loss).all()
    assert loss[0] == 0.0
    loss.sum().backward()
    assert rate.grad is not None and torch.isfinite(rate.grad).all()
    # through amplitudes, a zero prediction yields finite values and gradients too
    amplitude = torch.zeros(3, requires_grad=True)
    poisson_nll(amplitude, counts.sqrt(), 2.0).sum().backward()
    assert amplitude.grad is not None and torch.isfinite(amplitude.grad).all()
    with pytest.raises(PhysicsError, match="eps"):
        poisson_nll_counts(rate, counts, eps=0.0)


def test_photon_scale_and_poisson_amplitudes_give_the_requested_mean_counts() -> None:
    amplitudes = np.random.default_rng(0).random((400, 8, 8)).astype(np.float32)
    s = photon_scale(amplitudes, 1e4)
    expected = (amplitudes.astype(np.float64) * s) ** 2
    assert expected.sum(axis=(1, 2)).mean() == pytest.approx(1e4, rel=1e-9)
    noisy = poisson_amplitudes(amplitudes, s, np.random.default_rng(1))
    assert noisy.dtype == np.float32 and noisy.shape == amplitudes.shape
    counts = noisy.astype(np.float64) ** 2
    np.testing.assert_allclose(counts, np.round(counts), atol=1e-2)  # sqrt of integer counts
    assert counts.sum(axis=(1, 2)).mean() == pytest.approx(1e4, rel=0.01)
    np.testing.assert_array_equal(noisy, poisson_amplitudes(amplitudes, s, np.random.default_rng(1)))
    with pytest.raises(PhysicsError, match="mean_total_counts"):
        photon_scale(amplitudes, -1.0)
    with pytest.raises(PhysicsError, match="dark"):
        photon_scale(np.zeros((2, 4, 4), np.float32), 10.0)
