"""Physics: Parseval, an analytic Airy pattern, gradients, the Poisson loss, modes, patch geometry."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy.special import j1

from ptycho_torch import physics
from ptycho_torch.physics import (
    Interpolation,
    PhysicsError,
    diffraction_amplitude,
    exit_wave,
    extract_patches,
    far_field,
    forward,
    intensity,
    intensity_scale,
    poisson_nll,
    poisson_nll_counts,
    reassemble_patches,
    safe_sqrt,
)


def _complex(shape: tuple[int, ...], seed: int, dtype: torch.dtype = torch.complex64) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    return torch.randn(shape, generator=gen, dtype=dtype)


def _disk(n: int, radius: float, supersample: int = 8) -> np.ndarray:
    """Anti-aliased disk (area fraction per pixel) centred at pixel (n//2, n//2)."""
    yy, xx = np.mgrid[:n, :n] - n // 2
    sub = (np.arange(supersample) + 0.5) / supersample - 0.5
    acc = np.zeros((n, n))
    for dy in sub:
        for dx in sub:
            acc += (yy + dy) ** 2 + (xx + dx) ** 2 <= radius**2
    return acc / supersample**2


def test_parseval_holds_for_the_far_field() -> None:
    psi = _complex((3, 2, 16, 16), seed=0, dtype=torch.complex128)
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
    aperture = torch.tensor(_disk(n, radius), dtype=torch.complex128)
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


def test_incoherent_modes_add_intensities_not_fields() -> None:
    obj = _complex((4, 16, 16), seed=1)
    modes = _complex((2, 16, 16), seed=2)
    both = intensity(far_field(exit_wave(obj, modes)))
    separately = sum(intensity(far_field(exit_wave(obj, modes[m]))) for m in range(2))
    torch.testing.assert_close(both, separately)
    coherent = intensity(far_field(exit_wave(obj, modes.sum(0))))
    assert (both - coherent).abs().max() > 1.0
    assert both.shape == (4, 16, 16)


def test_intensity_scale_gives_the_requested_mean_counts_for_a_unit_object() -> None:
    probe = torch.tensor(_disk(32, 6.0), dtype=torch.complex64) * 0.37
    nphotons = 1e5
    s = intensity_scale(probe, nphotons)
    phases = torch.polar(torch.ones(5, 32, 32), _complex((5, 32, 32), seed=3).real)  # |O| = 1
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


def test_amplitude_gradient_is_finite_where_the_far_field_is_zero() -> None:
    obj = torch.zeros(8, 8, dtype=torch.complex64, requires_grad=True)
    probe = _complex((8, 8), seed=5)
    amplitude = diffraction_amplitude(obj, probe)
    amplitude.sum().backward()
    assert obj.grad is not None and torch.isfinite(torch.view_as_real(obj.grad)).all()
    values = torch.tensor([0.0, 1e-30, 4.0], requires_grad=True)
    safe_sqrt(values).sum().backward()
    assert values.grad is not None and torch.isfinite(values.grad).all()
    assert values.grad[2] == pytest.approx(0.25)


@pytest.mark.parametrize("interpolation", list(Interpolation))
def test_forward_model_gradients_pass_gradcheck(interpolation: Interpolation) -> None:
    obj = _complex((12, 12), seed=6, dtype=torch.complex128).requires_grad_()
    probe = _complex((2, 6, 6), seed=7, dtype=torch.complex128).requires_grad_()
    centres = torch.tensor([[5.3, 6.6], [6.25, 5.4]], dtype=torch.float64, requires_grad=True)

    def model(o: torch.Tensor, p: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        return forward(o, p, c, interpolation=interpolation)

    assert torch.autograd.gradcheck(model, (obj, probe, centres), eps=1e-6, atol=1e-5)


def test_reassemble_gradients_pass_gradcheck() -> None:
    patches = _complex((2, 5, 5), seed=8, dtype=torch.complex128).requires_grad_()
    centres = torch.tensor([[4.3, 5.6], [6.7, 4.2]], dtype=torch.float64, requires_grad=True)

    def canvas(p: torch.Tensor, c: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return reassemble_patches(p, c, (11, 12))

    assert torch.autograd.gradcheck(canvas, (patches, centres), eps=1e-6, atol=1e-5)


@pytest.mark.parametrize("interpolation", list(Interpolation))
def test_integer_centres_equal_slicing_exactly(interpolation: Interpolation) -> None:
    obj = _complex((30, 40), seed=9)
    centres = torch.tensor([[20.0, 15.0], [4.0, 4.0], [35.0, 26.0]])  # (x, y); the last two touch edges
    patches = extract_patches(obj, centres, 8, interpolation=interpolation)
    assert patches.shape == (3, 8, 8) and patches.dtype == torch.complex64
    assert torch.equal(patches[0], obj[11:19, 16:24])  # rows y-4..y+3, columns x-4..x+3
    assert torch.equal(patches[1], obj[0:8, 0:8])
    assert torch.equal(patches[2, :, :], obj[22:30, 31:39])
    assert patches[1][4, 4] == obj[4, 4]  # pixel (N//2, N//2) sits at (row y, column x)


def test_samples_outside_the_object_are_zero() -> None:
    obj = torch.ones(10, 10, dtype=torch.complex64)
    patch = extract_patches(obj, torch.tensor([[1.0, 2.0]]), 8)[0]
    assert torch.equal(patch[:, :3], torch.zeros(8, 3, dtype=torch.complex64))  # columns -3..-1
    assert torch.equal(patch[:2, :], torch.zeros(2, 8, dtype=torch.complex64))  # rows -2..-1
    assert torch.equal(patch[2:, 3:], torch.ones(6, 5, dtype=torch.complex64))


def test_subpixel_extraction_of_a_linear_ramp_is_exact_for_bilinear() -> None:
    rows, cols = torch.meshgrid(torch.arange(20.0), torch.arange(24.0), indexing="ij")
    obj = torch.complex(2 * cols + 0.5 * rows, -cols)
    x, y = 10.3, 9.6
    patch = extract_patches(obj, torch.tensor([[x, y]]), 6)[0]
    r, c = torch.meshgrid(torch.arange(6.0) - 3 + y, torch.arange(6.0) - 3 + x, indexing="ij")
    torch.testing.assert_close(patch, torch.complex(2 * c + 0.5 * r, -c))


@pytest.mark.parametrize(
    ("interpolation", "centre"),
    [
        (Interpolation.BILINEAR, (14.0, 12.0)),
        (Interpolation.FOURIER, (14.0, 12.0)),
        (Interpolation.FOURIER, (14.37, 11.71)),
    ],
)
def test_extract_of_reassembled_single_patch_returns_it(
    interpolation: Interpolation, centre: tuple[float, float]
) -> None:
    patch = _complex((1, 10, 10), seed=10)
    centres = torch.tensor([centre])
    canvas, weight = reassemble_patches(patch, centres, (26, 30), interpolation=interpolation)
    average = torch.where(weight > 1e-6, canvas / weight.clamp_min(1e-6), 0)
    back = extract_patches(average, centres, 10, interpolation=interpolation)
    torch.testing.assert_close(back, patch, rtol=0, atol=2e-6)


def test_bilinear_reassembly_is_the_adjoint_of_extraction() -> None:
    obj = _complex((20, 22), seed=11, dtype=torch.complex128)
    patches = _complex((3, 7, 7), seed=12, dtype=torch.complex128)
    centres = torch.tensor([[5.2, 7.9], [12.5, 10.1], [18.7, 3.3]], dtype=torch.float64)
    lhs = torch.vdot(extract_patches(obj, centres, 7).flatten(), patches.flatten())
    canvas, _ = reassemble_patches(patches, centres, (20, 22))
    rhs = torch.vdot(obj.flatten(), canvas.flatten())
    torch.testing.assert_close(lhs, rhs)


def test_reassembly_averages_overlaps_with_weights() -> None:
    value = torch.tensor([1.0 + 1j, 3.0 - 1j], dtype=torch.complex64)
    patches = value.view(2, 1, 1) * torch.ones(2, 4, 4, dtype=torch.complex64)
    centres = torch.tensor([[4.0, 4.0], [6.0, 4.0]])  # overlap on columns 4..5
    canvas, weight = reassemble_patches(patches, centres, (9, 10))
    assert weight[4, 4] == 2.0 and weight[4, 2] == 1.0 and weight[0, 0] == 0.0
    assert canvas[4, 4] / weight[4, 4] == (value[0] + value[1]) / 2
    weights = torch.stack([torch.full((4, 4), 3.0), torch.full((4, 4), 1.0)])
    canvas, weight = reassemble_patches(patches, centres, (9, 10), weights)
    assert weight[4, 4] == 4.0
    torch.testing.assert_close(canvas[4, 4] / weight[4, 4], (3 * value[0] + value[1]) / 4)


def test_batched_extraction_matches_per_item_calls() -> None:
    objs = _complex((2, 16, 18), seed=13)
    centres = torch.tensor([[[6.5, 7.25], [9.0, 8.0]], [[10.1, 5.9], [7.7, 9.3]]])
    batched = extract_patches(objs, centres, 6)
    assert batched.shape == (2, 2, 6, 6)
    for b in range(2):
        torch.testing.assert_close(batched[b], extract_patches(objs[b], centres[b], 6))
    canvas, weight = reassemble_patches(batched, centres, (16, 18))
    assert canvas.shape == (2, 16, 18) and weight.shape == (2, 16, 18) and weight.dtype == torch.float32
    torch.testing.assert_close(canvas[1], reassemble_patches(batched[1], centres[1], (16, 18))[0])


def test_bad_inputs_raise_clear_errors() -> None:
    obj = _complex((16, 16), seed=14)
    with pytest.raises(PhysicsError, match=r"\(x, y\)"):
        extract_patches(obj, torch.zeros(3, 3), 4)
    with pytest.raises(PhysicsError, match="finite"):
        extract_patches(obj, torch.tensor([[float("nan"), 1.0]]), 4)
    with pytest.raises(PhysicsError, match="unknown interpolation 'cubic'"):
        extract_patches(obj, torch.zeros(1, 2), 4, interpolation="cubic")
    with pytest.raises(PhysicsError, match="expected"):
        extract_patches(obj, torch.zeros(2, 1, 2), 4)
    with pytest.raises(PhysicsError, match="probe's size"):
        exit_wave(torch.ones(4, 5, 5, dtype=torch.complex64), torch.ones(6, 6, dtype=torch.complex64))
    with pytest.raises(PhysicsError, match="complex"):
        physics.probe_modes(torch.ones(4, 4))
    with pytest.raises(PhysicsError, match="broadcast"):
        reassemble_patches(torch.ones(2, 4, 4), torch.zeros(2, 2), (8, 8), torch.ones(3, 3))


def test_forward_composes_the_named_steps() -> None:
    obj = _complex((24, 24), seed=15)
    probe = _complex((2, 8, 8), seed=16)
    centres = torch.tensor([[10.0, 11.0], [13.5, 12.25]])
    amplitude = forward(obj, probe, centres)
    by_hand = diffraction_amplitude(extract_patches(obj, centres, 8), probe)
    torch.testing.assert_close(amplitude, by_hand)
    assert amplitude.shape == (2, 8, 8) and amplitude.dtype == torch.float32
    assert math.isclose(
        float(amplitude.square().sum()),
        float((extract_patches(obj, centres, 8).unsqueeze(1) * probe).abs().square().sum()),
        rel_tol=1e-5,
    )
