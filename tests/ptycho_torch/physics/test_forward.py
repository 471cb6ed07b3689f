"""The forward model: incoherent modes, finite gradients, gradcheck, the named steps, the moving beam, probe
checks."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from ptycho_torch import physics
from ptycho_torch.physics import (
    Interpolation,
    PhysicsError,
    beam_offsets,
    diffraction_amplitude,
    exit_wave,
    extract_patches,
    far_field,
    forward,
    intensity,
    safe_sqrt,
    shift_probe,
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


def test_forward_model_gradients_pass_gradcheck() -> None:
    """Full (not fast_mode) gradcheck: every Jacobian entry, in the object, both probe modes and the centres.
    The smallest case that keeps what matters: two modes, two positions with sub-pixel remainders in x and y
    rounding both ways, windows inside the object with object pixels outside every window (zero gradient)."""
    obj = complex_field((8, 8), seed=6, dtype=torch.complex128).requires_grad_()
    probe = complex_field((2, 4, 4), seed=7, dtype=torch.complex128).requires_grad_()
    centres = torch.tensor([[3.3, 4.6], [4.25, 3.4]], dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(forward, (obj, probe, centres), eps=1e-6, atol=1e-5)


def test_forward_composes_the_named_steps() -> None:
    obj = complex_field((24, 24), seed=15)
    probe = complex_field((2, 8, 8), seed=16)
    centres = torch.tensor([[10.0, 11.0], [13.5, 12.25]])
    amplitude = forward(obj, probe, centres)
    windows = extract_patches(obj, centres, 8, interpolation=Interpolation.NEAREST)
    probes = shift_probe(probe, beam_offsets(centres))  # (2, 2, 8, 8): one moved probe per position
    by_hand = safe_sqrt(intensity(far_field(windows.unsqueeze(1) * probes)))
    torch.testing.assert_close(amplitude, by_hand)
    assert amplitude.shape == (2, 8, 8) and amplitude.dtype == torch.float32
    assert math.isclose(
        float(amplitude.square().sum()),
        float((windows.unsqueeze(1) * probes).abs().square().sum()),
        rel_tol=1e-5,
    )
    torch.testing.assert_close(amplitude[0], diffraction_amplitude(windows[0], probe))  # integer: unmoved


def _periodic_probe(n: int, dx: float, dy: float) -> np.ndarray:
    """A probe band-limited and periodic over its n x n window, evaluated at (r - dy, c - dx) analytically."""
    r, c = np.mgrid[0:n, 0:n].astype(np.float64)
    r, c = r - dy, c - dx
    return (1.5 + np.cos(2 * np.pi * (c - n / 2) / n)) * (1.2 + np.sin(2 * np.pi * (r - n / 2) / n)) * np.exp(
        2j * np.pi * (2 * c + r) / n
    )


def test_the_beam_moves_over_a_fixed_object_grid() -> None:
    """The object's pixels are sampled as they are, in the window at the nearest pixel; the probe is moved by
    the sub-pixel rest, sign included: an analytic band-limited probe evaluated at (r - dy, c - dx) gives
    the same pattern to float precision, the probe moved the other way does not."""
    n = 8
    obj = complex_field((24, 26), seed=19, dtype=torch.complex128)
    centres = torch.tensor([[11.3, 12.6], [13.5, 10.25]], dtype=torch.float64)  # (x, y)
    probe = torch.from_numpy(_periodic_probe(n, 0.0, 0.0))
    amplitude = forward(obj, probe, centres).numpy()
    for i, (x, y) in enumerate(centres.tolist()):
        col, row = math.floor(x + 0.5), math.floor(y + 0.5)
        window = obj.numpy()[row - n // 2 : row + n // 2, col - n // 2 : col + n // 2]
        for sign, same in ((1, True), (-1, False)):
            moved = _periodic_probe(n, sign * (x - col), sign * (y - row))
            expected = np.abs(np.fft.fftshift(np.fft.fft2(window * moved, norm="ortho")))
            assert np.allclose(amplitude[i], expected, rtol=1e-9, atol=1e-9) is same, (i, sign)


def test_moving_object_and_positions_by_whole_pixels_changes_nothing() -> None:
    """Also at exact half pixels, where the window and the probe's shift both change with the rounding."""
    obj = complex_field((30, 30), seed=20)
    probe = complex_field((8, 8), seed=21)
    centres = torch.tensor([[10.5, 12.5], [13.5, 11.5], [12.25, 14.75]])
    here = forward(obj, probe, centres)
    there = forward(torch.roll(obj, shifts=(2, 1), dims=(0, 1)), probe, centres + torch.tensor([1.0, 2.0]))
    torch.testing.assert_close(there, here, rtol=0, atol=1e-6)


def test_shift_probe_moves_each_mode_and_copies_at_zero() -> None:
    probe = complex_field((2, 8, 8), seed=22)
    offsets = torch.tensor([[0.0, 0.0], [1.0, -2.0], [0.3, 0.4]])
    moved = shift_probe(probe, offsets)
    assert moved.shape == (3, 2, 8, 8)
    assert torch.equal(moved[0], probe)
    torch.testing.assert_close(moved[1], torch.roll(probe, shifts=(-2, 1), dims=(-2, -1)), rtol=0, atol=1e-5)
    back = shift_probe(moved[2], -offsets[2])  # the two modes, moved back
    torch.testing.assert_close(back, probe, rtol=0, atol=1e-5)
    torch.testing.assert_close(beam_offsets(torch.tensor([[2.5, -1.5], [3.7, 0.2]])),
                               torch.tensor([[-0.5, -0.5], [-0.3, 0.2]]))


def test_bad_probe_inputs_raise_clear_errors() -> None:
    with pytest.raises(PhysicsError, match="probe's size"):
        exit_wave(torch.ones(4, 5, 5, dtype=torch.complex64), torch.ones(6, 6, dtype=torch.complex64))
    with pytest.raises(PhysicsError, match="complex"):
        physics.probe_modes(torch.ones(4, 4))
