"""The overlap constraint of gridsize > 1: the C patches of a group describe one object, so they are merged.

Each patch i is replaced by the weighted average, on its own pixel grid, of every patch of the group that
sees the same object pixel:

    merged_i(r) = sum_j w(r + d_ij) p_j(r + d_ij) / sum_j w(r + d_ij),   d_ij = c_i - c_j

with c the (x, y) positions of the group (coords_relative), p_j(r + d) patch j read d pixels away from
pixel r (zero outside its N x N window) and w the merge weights (merge_weights):

- MergeWeights.PROBE (the default): the probe's intensity, peak 1, as the inference stitcher weighs
  patches (physics.probe_weights), plus a small floor, smoothed and brought to ~0 at the window's edge. A
  patch speaks for the object where its probe lit it. With equal weights the dark, unconstrained periphery
  of each patch is averaged into its neighbours' illuminated centres (docs/findings.md, TRAIN-004). The
  floor makes pixels that no probe lit the plain mean of the patches there, so patches still agree on them.
- MergeWeights.UNIFORM: every covering patch counts alike (the plain mean).
- MergeWeights.CENTRAL: the reference PtychoPINN's merge, the mean of the central N/2 x N/2 windows that
  cover a pixel (its patches are zero outside that window, `object.big`/`pad_object`, and the sum of the
  shifted patches is divided by the count of shifted central windows). Its edges are sharp, so it is meant
  for the model's whole-pixel merges (with positions); a Fourier move of it rings.

Sub-pixel offsets (Interpolation.FOURIER, the default): a neighbour is moved by the fraction of d_ij
exactly (a phase ramp), in a window wider than the patch so that none of it is cut off, then by the whole
pixels (slicing); bilinear interpolation blurs every such move. The weights are smooth and ~0 at the
window's edge, so their Fourier moves hardly ring. The term j = i has d = 0 and is exact whatever the
interpolation: a pixel only patch i covers keeps its value, and at whole-pixel offsets every patch holding
a pixel gets the same merged value.
"""
from __future__ import annotations

import math
from enum import StrEnum

import torch
from torch import Tensor
from torch.nn import functional

from ptycho_torch import physics
from ptycho_torch.physics import Interpolation

PAD = 4  # pixels of zeros around a patch while it is moved by a fraction of a pixel
SMALLEST_WEIGHT = 1e-9  # a weight is never 0, so an exact merge never divides by 0
FOURIER_WEIGHT = 0.05  # summed weight (of one probe's peak) from which the Fourier merge is used
WEIGHT_FLOOR = 1e-3  # added to the probe weights (peak 1): the plain mean where no probe lit the object


class MergeWeights(StrEnum):
    """How much each patch of a group counts where patches overlap (see the module docstring)."""

    PROBE = "probe"  # the probe's intensity, peak 1: a patch counts where its probe lit the object
    UNIFORM = "uniform"  # equal weights everywhere inside each patch
    CENTRAL = "central"  # the reference PtychoPINN's: equal weights in each patch's central N/2 x N/2 only


def merge_weights(probe: Tensor, kind: MergeWeights) -> Tensor:
    """(N, N) real weights of each patch's pixels, all > 0, peak 1: ones, or (PROBE) the probe's intensity
    (physics.probe_weights, as the stitcher weighs patches) + WEIGHT_FLOOR, cut to the window less
    4 sigma on each side and blurred by sigma = max(1.5, N/32) pixels: smooth, and ~0 at the window's edge,
    so that moving the weights by a fraction of a pixel (Fourier) hardly rings."""
    weights = physics.probe_weights(probe.detach().to(torch.complex64))
    if kind is MergeWeights.UNIFORM:
        return torch.ones_like(weights)
    if kind is MergeWeights.CENTRAL:
        return central_weights(weights.shape[-1], weights.shape[-1] // 2).to(weights)
    n = weights.shape[-1]
    sigma = max(1.5, n / 32)
    margin = math.ceil(4 * sigma)
    inside = torch.zeros_like(weights, dtype=torch.float64)
    inside[margin : n - margin, margin : n - margin] = 1.0
    smooth = _blur((weights.double() + WEIGHT_FLOOR) * inside, sigma).clamp_min(SMALLEST_WEIGHT)
    return (smooth / smooth.max()).to(weights.dtype)


def central_weights(n: int, side: int) -> Tensor:
    """(n, n) float32: 1 in the central side x side square (physics.central_window), SMALLEST_WEIGHT outside:
    a pixel in some patch's central window takes the mean of the central windows holding it (the reference's
    merge: the summed patches over the count of central windows), any other the plain mean."""
    return torch.where(physics.central_window(n, side), 1.0, SMALLEST_WEIGHT).float()


def _blur(image: Tensor, sigma: float) -> Tensor:
    """A Gaussian blur (sigma in pixels), circular: a product in Fourier space."""
    k = torch.fft.fftfreq(image.shape[-1], dtype=image.dtype, device=image.device)
    kernel = torch.exp(-2 * (math.pi * sigma) ** 2 * (k[:, None] ** 2 + k[None, :] ** 2))
    return torch.fft.ifft2(torch.fft.fft2(image) * kernel).real


def merge_group(patches: Tensor, coords_relative: Tensor, weights: Tensor, *,
                interpolation: Interpolation = Interpolation.FOURIER) -> Tensor:
    """Merge each group's patches: (B, C, N, N) complex, coords (B, C, 2) = (x, y), weights (N, N) > 0 ->
    (B, C, N, N). Differentiable in the patches. With C = 1 the patches are returned unchanged.
    """
    if patches.shape[1] == 1:
        return patches
    offsets = coords_relative[:, None, :, :] - coords_relative[:, :, None, :]  # (B, j, i, 2): c_i - c_j
    weighted = patches * weights  # (B, j, N, N)
    if interpolation is Interpolation.BILINEAR:
        numerator, denominator = _bilinear_moves(weighted, weights, offsets)
    else:
        numerator, denominator = _fourier_moves(weighted, weights, offsets)
    # the sums over j include j = i (not moved, exact), so the summed weight is at least the patch's own, > 0
    return numerator.sum(dim=1) / denominator.sum(dim=1)


def _fourier_moves(weighted: Tensor, weights: Tensor, offsets: Tensor) -> tuple[Tensor, Tensor]:
    """(w p_j, w) of every pair (B, j, i, N, N) read at r + d_ji: moved by the fraction of d with a phase
    ramp, in a window PAD pixels wider than the patch, then by the whole pixels (slicing, zero fill).

    A Fourier move rings where the moved map is not smooth (a patch's own content, noise at worst), and
    that ringing reaches pixels where the moved weight is almost nothing. A pair moved by a fraction of a
    pixel therefore counts only where its moved weight is at least FOURIER_WEIGHT: no ringing is ever divided
    by a tiny weight. Pairs moved by whole pixels are exact and always count.
    """
    n = weighted.shape[-1]
    whole = physics.nearest_pixel(offsets.detach())
    fraction = offsets - whole  # (B, j, i, 2) in [-0.5, 0.5)
    k = torch.fft.fftfreq(n + 2 * PAD, device=weighted.device)
    phase = torch.polar(torch.ones((), device=weighted.device), 2 * math.pi * fraction[..., None] * k)
    ramp = phase[..., 1, :, None] * phase[..., 0, None, :]  # (B, j, i, M, M): rows move by y, columns by x
    framed = functional.pad(weighted, (PAD,) * 4)[:, :, None]  # (B, j, 1, M, M)
    weight_frame = functional.pad(weights, (PAD,) * 4)
    moved = torch.fft.ifft2(torch.fft.fft2(framed) * ramp)
    moved_weights = torch.fft.ifft2(torch.fft.fft2(weight_frame.to(ramp.dtype)) * ramp).real
    # no fraction: no FFT either, whose rounding (~1e-7 of the largest value) would swamp tiny weights
    exact = (fraction == 0).all(dim=-1)[..., None, None]
    moved = _shift_whole(torch.where(exact, framed, moved), whole, n)
    moved_weights = _shift_whole(torch.where(exact, weight_frame, moved_weights), whole, n)
    count_it = exact | (moved_weights > FOURIER_WEIGHT)
    return moved * count_it, moved_weights * count_it


def _bilinear_moves(weighted: Tensor, weights: Tensor, offsets: Tensor) -> tuple[Tensor, Tensor]:
    """(w p_j, w) of every pair (B, j, i, N, N) read at r + d_ji by bilinear interpolation (non-negative
    taps: the moved values are convex combinations of the patch's pixels)."""
    batch, count, n, _ = weighted.shape
    low = torch.floor(offsets.detach())
    fx, fy = (offsets - low).unbind(dim=-1)
    frame = functional.pad(weighted, (PAD,) * 4)[:, :, None].expand(batch, count, count, n + 2 * PAD, n + 2 * PAD)
    weight_frame = functional.pad(weights, (PAD,) * 4).expand_as(frame)
    numerator = torch.zeros(batch, count, count, n, n, dtype=weighted.dtype, device=weighted.device)
    denominator = torch.zeros(batch, count, count, n, n, dtype=weights.dtype, device=weighted.device)
    for dx, dy in ((0, 0), (1, 0), (0, 1), (1, 1)):
        tap = ((fx if dx else 1 - fx) * (fy if dy else 1 - fy))[..., None, None]
        whole = low + torch.tensor([dx, dy], dtype=low.dtype, device=low.device)
        numerator = numerator + tap * _shift_whole(frame, whole, n)
        denominator = denominator + tap * _shift_whole(weight_frame, whole, n)
    return numerator, denominator


def _shift_whole(frames: Tensor, whole: Tensor, n: int) -> Tensor:
    """frames (B, j, i, M, M), M = N + 2 PAD, a patch framed by PAD pixels; whole (B, j, i, 2) = (x, y) whole
    pixels -> (B, j, i, N, N), out[r, c] = frame[PAD + r + y, PAD + c + x], zero where that is outside."""
    size = frames.shape[-1]
    steps = torch.arange(n, device=frames.device)
    rows = PAD + whole[..., 1].long()[..., None] + steps  # (B, j, i, N)
    cols = PAD + whole[..., 0].long()[..., None] + steps
    inside = ((rows >= 0) & (rows < size))[..., :, None] & ((cols >= 0) & (cols < size))[..., None, :]
    index = rows.clamp(0, size - 1)[..., :, None] * size + cols.clamp(0, size - 1)[..., None, :]
    flat = frames.reshape(*frames.shape[:-2], size * size)
    picked = flat.gather(-1, index.reshape(*index.shape[:-2], n * n)).reshape(index.shape)
    return picked * inside
