"""Patch geometry: slicing at integer centres, sub-pixel moves, the adjoint pair, the rounding rule, the
Fourier pad, the frame that holds a scan."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from ptycho_torch.physics import (
    FOURIER_PAD,
    Interpolation,
    PhysicsError,
    extract_patches,
    frame_shape,
    nearest_pixel,
    pixel_range,
    place_patches,
    reassemble_patches,
)
from tests.ptycho_torch.physics.samples import complex_field


def test_reassemble_gradients_pass_gradcheck() -> None:
    patches = complex_field((2, 5, 5), seed=8, dtype=torch.complex128).requires_grad_()
    centres = torch.tensor([[4.3, 5.6], [6.7, 4.2]], dtype=torch.float64, requires_grad=True)

    def canvas(p: torch.Tensor, c: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return reassemble_patches(p, c, (11, 12))

    assert torch.autograd.gradcheck(canvas, (patches, centres), eps=1e-6, atol=1e-5)


@pytest.mark.parametrize("interpolation", list(Interpolation))
def test_integer_centres_equal_slicing_exactly(interpolation: Interpolation) -> None:
    obj = complex_field((30, 40), seed=9)
    centres = torch.tensor([[20.0, 15.0], [4.0, 4.0], [35.0, 26.0]])  # (x, y); the last two touch edges
    patches = extract_patches(obj, centres, 8, interpolation=interpolation)
    assert patches.shape == (3, 8, 8) and patches.dtype == torch.complex64
    assert torch.equal(patches[0], obj[11:19, 16:24])  # rows y-4..y+3, columns x-4..x+3
    assert torch.equal(patches[1], obj[0:8, 0:8])
    assert torch.equal(patches[2, :, :], obj[22:30, 31:39])
    assert patches[1][4, 4] == obj[4, 4]  # pixel (N//2, N//2) sits at (row y, column x)


def test_nearest_cuts_the_window_at_the_nearest_pixel_and_places_it_back_there() -> None:
    obj = complex_field((30, 40), seed=25)
    centres = torch.tensor([[20.4, 15.5], [9.6, 10.3]])  # (x, y): nearest pixels (20, 16) and (10, 10)
    patches = extract_patches(obj, centres, 8, interpolation=Interpolation.NEAREST)
    assert torch.equal(patches[0], obj[12:20, 16:24]) and torch.equal(patches[1], obj[6:14, 6:14])
    canvas, weight = reassemble_patches(patches, centres, (30, 40), interpolation=Interpolation.NEAREST)
    assert torch.equal(canvas[12:20, 16:24], obj[12:20, 16:24]) and float(weight.sum()) == 2 * 64


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
    patch = complex_field((1, 10, 10), seed=10)
    centres = torch.tensor([centre])
    canvas, weight = reassemble_patches(patch, centres, (26, 30), interpolation=interpolation)
    average = torch.where(weight > 1e-6, canvas / weight.clamp_min(1e-6), 0)
    back = extract_patches(average, centres, 10, interpolation=interpolation)
    torch.testing.assert_close(back, patch, rtol=0, atol=2e-6)


def test_bilinear_reassembly_is_the_adjoint_of_extraction() -> None:
    obj = complex_field((20, 22), seed=11, dtype=torch.complex128)
    patches = complex_field((3, 7, 7), seed=12, dtype=torch.complex128)
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
    objs = complex_field((2, 16, 18), seed=13)
    centres = torch.tensor([[[6.5, 7.25], [9.0, 8.0]], [[10.1, 5.9], [7.7, 9.3]]])
    batched = extract_patches(objs, centres, 6)
    assert batched.shape == (2, 2, 6, 6)
    for b in range(2):
        torch.testing.assert_close(batched[b], extract_patches(objs[b], centres[b], 6))
    canvas, weight = reassemble_patches(batched, centres, (16, 18))
    assert canvas.shape == (2, 16, 18) and weight.shape == (2, 16, 18) and weight.dtype == torch.float32
    torch.testing.assert_close(canvas[1], reassemble_patches(batched[1], centres[1], (16, 18))[0])


def test_bad_inputs_raise_clear_errors() -> None:
    obj = complex_field((16, 16), seed=14)
    with pytest.raises(PhysicsError, match=r"\(x, y\)"):
        extract_patches(obj, torch.zeros(3, 3), 4)
    with pytest.raises(PhysicsError, match="finite"):
        extract_patches(obj, torch.tensor([[float("nan"), 1.0]]), 4)
    with pytest.raises(PhysicsError, match="unknown interpolation 'cubic'"):
        extract_patches(obj, torch.zeros(1, 2), 4, interpolation="cubic")
    with pytest.raises(PhysicsError, match="expected"):
        extract_patches(obj, torch.zeros(2, 1, 2), 4)
    with pytest.raises(PhysicsError, match="broadcast"):
        reassemble_patches(torch.ones(2, 4, 4), torch.zeros(2, 2), (8, 8), torch.ones(3, 3))


def test_the_rounding_rule_takes_halves_up() -> None:
    halves = np.array([-1.5, -0.5, 0.5, 1.5, 2.5, 10.5])
    np.testing.assert_array_equal(nearest_pixel(halves), [-1, 0, 1, 2, 3, 11])
    torch.testing.assert_close(nearest_pixel(torch.tensor(halves)),
                               torch.tensor([-1.0, 0.0, 1.0, 2.0, 3.0, 11.0], dtype=torch.float64))
    np.testing.assert_array_equal(nearest_pixel(np.array([2.49, 2.51, -0.51])), [2, 3, -1])


def test_fourier_patches_follow_a_whole_pixel_move_at_half_pixel_centres() -> None:
    """Moving the object and every centre by one pixel must give the same patches. Round-half-to-even
    breaks this at exact half pixels (10.5 -> 10 but 11.5 -> 12): the window and the shift both change."""
    obj = complex_field((30, 30), seed=22)
    centres = torch.tensor([[10.5, 12.5], [13.5, 11.5], [12.25, 14.75]])
    here = extract_patches(obj, centres, 8, interpolation=Interpolation.FOURIER)
    moved_obj = torch.roll(obj, shifts=(1, 1), dims=(0, 1))
    there = extract_patches(moved_obj, centres + 1.0, 8, interpolation=Interpolation.FOURIER)
    torch.testing.assert_close(there, here, rtol=0, atol=1e-6)


@pytest.mark.parametrize("interpolation", list(Interpolation))
def test_a_pad_cuts_in_a_wider_window_and_place_is_its_adjoint(interpolation: Interpolation) -> None:
    obj = complex_field((24, 26), seed=23, dtype=torch.complex128)
    patches = complex_field((3, 6, 6), seed=24, dtype=torch.complex128)
    centres = torch.tensor([[8.3, 9.5], [12.5, 11.7], [15.1, 14.9]], dtype=torch.float64)
    pad = FOURIER_PAD
    got = extract_patches(obj, centres, 6, interpolation=interpolation, pad=pad)
    wide = extract_patches(obj, centres, 6 + 2 * pad, interpolation=interpolation)
    torch.testing.assert_close(got, wide[:, pad:-pad, pad:-pad])
    placed = place_patches(patches, centres, (24, 26), interpolation=interpolation, pad=pad)
    torch.testing.assert_close(torch.vdot(got.flatten(), patches.flatten()),
                               torch.vdot(obj.flatten(), placed.flatten()))
    ring = torch.nn.functional.pad(torch.ones(3, 6, 6, dtype=torch.float64), (pad,) * 4)
    canvas, weight = reassemble_patches(patches, centres, (24, 26), interpolation=interpolation, pad=pad)
    wide_canvas, wide_weight = reassemble_patches(torch.nn.functional.pad(patches, (pad,) * 4), centres,
                                                  (24, 26), ring, interpolation=interpolation)
    torch.testing.assert_close(canvas, wide_canvas)
    torch.testing.assert_close(weight, wide_weight)
    with pytest.raises(PhysicsError, match="pad must be an integer >= 0"):
        extract_patches(obj, centres, 6, pad=-1)


def test_pixel_range_follows_each_interpolation() -> None:
    c = np.array([10.0, 10.5, 11.5, 10.2, 10.7])
    first, last = pixel_range(c, 8, interpolation=Interpolation.FOURIER, pad=2)
    np.testing.assert_array_equal(first, [4, 5, 6, 4, 5])  # nearest pixel - N/2 - pad
    np.testing.assert_array_equal(last, [15, 16, 17, 15, 16])  # nearest pixel + N/2 - 1 + pad
    first, last = pixel_range(c, 8, interpolation=Interpolation.NEAREST)  # the window at the nearest pixel
    np.testing.assert_array_equal(first, [6, 7, 8, 6, 7])
    np.testing.assert_array_equal(last, [13, 14, 15, 13, 14])
    first, last = pixel_range(c, 8)  # bilinear: from floor(c) to ceil(c)
    np.testing.assert_array_equal(first, [6, 6, 7, 6, 6])
    np.testing.assert_array_equal(last, [13, 14, 15, 14, 14])


@pytest.mark.parametrize(("interpolation", "pad"), [(Interpolation.BILINEAR, 0), (Interpolation.FOURIER, 2)])
def test_frame_shape_is_the_smallest_frame_holding_every_patch(interpolation: Interpolation, pad: int) -> None:
    centres = np.array([[10.2, 20.3], [12.4, 5.5], [7.5, 9.5]])  # sub-pixel where the frame ends
    rows, cols = frame_shape(centres, 8, interpolation=interpolation, pad=pad)
    expected = (25, 17) if interpolation is Interpolation.BILINEAR else (26, 18)
    assert (rows, cols) == expected  # ceil(20.3) + 3 + 1, ceil(12.4) + 3 + 1; round(.) + 3 + 2 + 1
    for shape, inside in (((rows, cols), True), ((rows - 1, cols), False), ((rows, cols - 1), False)):
        ones = torch.ones(shape, dtype=torch.complex128)
        patches = extract_patches(ones, torch.tensor(centres), 8, interpolation=interpolation, pad=pad)
        assert torch.allclose(patches, torch.ones_like(patches), atol=1e-12) is inside, shape
    with pytest.raises(PhysicsError, match="at least one centre"):
        frame_shape(np.zeros((0, 2)), 8)
