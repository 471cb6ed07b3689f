"""The forward model: incoherent modes, finite gradients, gradcheck, the named steps, probe checks."""

from __future__ import annotations

import math

import pytest
import torch

from ptycho_torch import physics
from ptycho_torch.physics import (
    FOURIER_PAD,
    Interpolation,
    PhysicsError,
    diffraction_amplitude,
    exit_wave,
    extract_patches,
    far_field,
    forward,
    intensity,
    safe_sqrt,
)
from tests.ptycho_torch.physics.samples import complex_field


def test_incoherent_modes_add_intensities_not_fields() -> None:
    obj = complex_field((4, 16, 16), seed=1)
    modes = complex_field((2, 16, 16), seed=2)
    both = intensity(far_field(exit_wave(obj, modes)))
    separately = sum(intensity(far_field(exit_wave(obj, modes[m]))) for m in range(2))
    torch.testing.assert_close(both, separately)
    coherent = intensity(far_field(exit_wave(obj, modes.sum(0))))
    assert (both - coherent).abs().max() > 1.0
    assert both.shape == (4, 16, 16)


def test_amplitude_gradient_is_finite_where_the_far_field_is_zero() -> None:
    obj = torch.zeros(8, 8, dtype=torch.complex64, requires_grad=True)
    probe = complex_field((8, 8), seed=5)
    amplitude = diffraction_amplitude(obj, probe)
    amplitude.sum().backward()
    assert obj.grad is not None and torch.isfinite(torch.view_as_real(obj.grad)).all()
    values = torch.tensor([0.0, 1e-30, 4.0], requires_grad=True)
    safe_sqrt(values).sum().backward()
    assert values.grad is not None and torch.isfinite(values.grad).all()
    assert values.grad[2] == pytest.approx(0.25)


@pytest.mark.parametrize("interpolation", list(Interpolation))
def test_forward_model_gradients_pass_gradcheck(interpolation: Interpolation) -> None:
    obj = complex_field((12, 12), seed=6, dtype=torch.complex128).requires_grad_()
    probe = complex_field((2, 6, 6), seed=7, dtype=torch.complex128).requires_grad_()
    centres = torch.tensor([[5.3, 6.6], [6.25, 5.4]], dtype=torch.float64, requires_grad=True)

    def model(o: torch.Tensor, p: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        return forward(o, p, c, interpolation=interpolation)

    assert torch.autograd.gradcheck(model, (obj, probe, centres), eps=1e-6, atol=1e-5)


def test_forward_composes_the_named_steps() -> None:
    obj = complex_field((24, 24), seed=15)
    probe = complex_field((2, 8, 8), seed=16)
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



def test_forward_with_a_pad_is_the_padded_window_cropped() -> None:
    obj = complex_field((30, 30), seed=17)
    probe = complex_field((8, 8), seed=18)
    centres = torch.tensor([[12.5, 14.3], [15.7, 13.5]], dtype=torch.float64)
    padded = forward(obj, probe, centres, interpolation=Interpolation.FOURIER, pad=FOURIER_PAD)
    wide = extract_patches(obj, centres, 8 + 2 * FOURIER_PAD, interpolation=Interpolation.FOURIER)
    cropped = wide[:, FOURIER_PAD:-FOURIER_PAD, FOURIER_PAD:-FOURIER_PAD]
    torch.testing.assert_close(padded, diffraction_amplitude(cropped, probe))
    unpadded = forward(obj, probe, centres, interpolation=Interpolation.FOURIER)
    assert (padded - unpadded).abs().max() > 1e-3  # the window changes how a sub-pixel shift rings


def test_bad_probe_inputs_raise_clear_errors() -> None:
    with pytest.raises(PhysicsError, match="probe's size"):
        exit_wave(torch.ones(4, 5, 5, dtype=torch.complex64), torch.ones(6, 6, dtype=torch.complex64))
    with pytest.raises(PhysicsError, match="complex"):
        physics.probe_modes(torch.ones(4, 4))
