"""Object patches at sub-pixel scan positions: extraction, its adjoint (placement), weighted reassembly.

Conventions (every function here follows them):

- Positions ("centres") are (x, y) in object pixels, x = column, y = row, origin at object pixel (0, 0).
  A patch centred at (x, y) has its pixel (N//2, N//2) at object pixel (row y, column x); its pixel (r, c)
  samples the object at (y + r - N//2, x + c - N//2). Samples that fall outside the object read as zero.
- Sub-pixel moves (Interpolation): BILINEAR splits a centre c into floor(c) and a fraction in [0, 1) and
  mixes the four neighbouring integer patches. FOURIER splits it into nearest_pixel(c) and a fraction in
  [-0.5, 0.5) and moves the integer patch by that fraction with a phase ramp. NEAREST cuts the window at
  nearest_pixel(c) and does not move it: the object window of the forward model (forward.py), where the
  beam, not the object, takes the sub-pixel remainder.
- The rounding rule, one for every caller (simulation, model, baselines, bounds checks): nearest_pixel(c)
  = floor(c + 0.5), halves up. Not round-half-to-even: with it a move of every position by one whole pixel
  would not move every patch by one pixel (0.5 -> 0 but 1.5 -> 2), and two callers using the two rules
  disagree at exact half pixels.
- pad: the patch is cut (or placed) in a window `pad` pixels wider on each side, then cropped (or
  zero-padded), so a FOURIER shift's circular wrap-around rings mostly outside the patch; FOURIER_PAD is
  a pad that does that for the package's patch sizes.
- place_patches is the exact adjoint of extract_patches for the same interpolation and pad.
"""

from __future__ import annotations

import math
from enum import StrEnum
from typing import TypeVar

import numpy as np
import torch
from torch import Tensor
from torch.nn import functional

from ptycho_torch.errors import PhysicsError

Coordinates = TypeVar("Coordinates", Tensor, np.ndarray)

FOURIER_PAD = 2  # extra pixels around a patch so a Fourier sub-pixel move's wrap-around is cropped away


class Interpolation(StrEnum):
    """How patches are moved by sub-pixel amounts.

    BILINEAR: local, exact adjoint pair of extract/reassemble, non-negative weights; a sub-pixel move low-pass
        filters slightly, so extract(reassemble(p)) == p only at integer centres. The default.
    FOURIER: a phase ramp on the patch's own N x N window (circular within the window); extract(reassemble(p))
        == p at any centre. Exact only for content periodic in the window: otherwise the edge discontinuity
        rings inward (about 10% of the amplitude at a 16 px patch's centre, for smooth content sampled at
        x.3 / x.7), where bilinear errs by about 1%. Use it when the exact round trip matters.
    NEAREST: no sub-pixel move: the window at nearest_pixel(c), read or written as it is. The object side of
        the forward model, which moves the probe instead (forward.py; docs/findings.md, PHYS-001).
    """

    BILINEAR = "bilinear"
    FOURIER = "fourier"
    NEAREST = "nearest"


def _interpolation(value: Interpolation | str) -> Interpolation:
    try:
        return Interpolation(value)
    except ValueError:
        choices = ", ".join(repr(m.value) for m in Interpolation)
        raise PhysicsError(f"unknown interpolation {value!r}; choose one of {choices}") from None


def nearest_pixel(coordinate: Coordinates) -> Coordinates:
    """The rounding rule: the nearest pixel, halves up, floor(c + 0.5); for tensors and arrays alike."""
    shifted = coordinate + 0.5
    return torch.floor(shifted) if isinstance(shifted, Tensor) else np.floor(shifted)


# ------------------------------------------------------------------------------------------ geometry


def central_window(n: int, side: int) -> Tensor:
    """(n, n) bool: True in the central side x side square of a patch, rows and columns (n - side) // 2 on
    (the model's support, the reference's merge and stitching windows)."""
    start = (n - side) // 2
    mask = torch.zeros(n, n, dtype=torch.bool)
    mask[start : start + side, start : start + side] = True
    return mask


def pixel_range(
    coordinates: np.ndarray, n: int, *, interpolation: Interpolation | str = Interpolation.BILINEAR,
    pad: int = 0,
) -> tuple[np.ndarray, np.ndarray]:
    """(first, last) object pixel, int64 and inclusive, that an N-pixel patch at each coordinate reads
    along one axis, with `pad` extra pixels on each side. Pixels a zero weight multiplies do not count.

    The BILINEAR range (from floor(c) to ceil(c)) also bounds the FOURIER and NEAREST ones,
    nearest_pixel(c) lying between the two whatever precision the coordinate is later rounded in: checks
    that must hold for any interpolation use it."""
    method = _interpolation(interpolation)
    c = np.asarray(coordinates, dtype=np.float64)
    if method is not Interpolation.BILINEAR:
        low = high = nearest_pixel(c)
    else:
        low, high = np.floor(c), np.ceil(c)
    return (low - n // 2 - pad).astype(np.int64), (high + (n - 1 - n // 2) + pad).astype(np.int64)


def frame_shape(
    centres: np.ndarray, n: int, *, interpolation: Interpolation | str = Interpolation.BILINEAR, pad: int = 0
) -> tuple[int, int]:
    """(rows, cols) of the smallest frame from pixel (0, 0) holding every patch at centres (P, 2) = (x, y)."""
    pos = np.asarray(centres, dtype=np.float64).reshape(-1, 2)
    if pos.shape[0] == 0:
        raise PhysicsError("frame_shape needs at least one centre")
    last_col = pixel_range(pos[:, 0], n, interpolation=interpolation, pad=pad)[1].max()
    last_row = pixel_range(pos[:, 1], n, interpolation=interpolation, pad=pad)[1].max()
    return int(last_row) + 1, int(last_col) + 1


# ------------------------------------------------------------------------------------------ checks


def _batched(images: Tensor, centres: Tensor, what: str) -> tuple[Tensor, Tensor, bool]:
    """Normalise (H, W) + (P, 2) or (B, H, W) + (B, P, 2) to the batched form; report whether it was."""
    if centres.ndim == 2 and images.ndim == 2:
        return images.unsqueeze(0), centres.unsqueeze(0), False
    if centres.ndim == 3 and images.ndim == 3 and images.shape[0] == centres.shape[0]:
        return images, centres, True
    raise PhysicsError(
        f"{what}: expected (H, W) with centres (P, 2), or (B, H, W) with centres (B, P, 2); "
        f"got {tuple(images.shape)} and centres {tuple(centres.shape)}"
    )


def _check_centres(centres: Tensor) -> None:
    if centres.shape[-1] != 2 or torch.is_complex(centres) or not torch.is_floating_point(centres):
        raise PhysicsError(
            f"centres must be real floating point (..., 2) = (x, y), got {centres.dtype} "
            f"{tuple(centres.shape)}"
        )
    if not bool(torch.isfinite(centres).all()):
        raise PhysicsError("centres contain NaN or inf; every scan position must be finite")


def _check_pad(pad: int) -> None:
    if isinstance(pad, bool) or not isinstance(pad, int) or pad < 0:
        raise PhysicsError(f"pad must be an integer >= 0 (pixels on each side of the patch), got {pad!r}")


# ------------------------------------------------------------------------------------------ sampling


def _split_centres(
    centres: Tensor, method: Interpolation, real_dtype: torch.dtype
) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """(B, P, 2) -> integer (x0, y0) as long and fractional (fx, fy) in real_dtype, differentiable in the
    fractions. The split is done in the wider of the two dtypes, so float64 centres are snapped exactly as
    pixel_range snaps them."""
    wide = centres.to(torch.promote_types(centres.dtype, real_dtype))
    x, y = wide[..., 0], wide[..., 1]
    snap = torch.floor if method is Interpolation.BILINEAR else nearest_pixel
    x0, y0 = snap(x).detach(), snap(y).detach()
    return x0.long(), y0.long(), (x - x0).to(real_dtype), (y - y0).to(real_dtype)


def _tap_index(
    x0: Tensor, y0: Tensor, n: int, dx: int, dy: int, height: int, width: int
) -> tuple[Tensor, Tensor]:
    """Flat indices (B, P, N, N) of the pixels one tap reads or writes, and which of them lie inside."""
    offsets = torch.arange(n, device=x0.device) - n // 2
    rows = (y0 + dy).unsqueeze(-1) + offsets  # (B, P, N)
    cols = (x0 + dx).unsqueeze(-1) + offsets
    inside = ((rows >= 0) & (rows < height)).unsqueeze(-1) & ((cols >= 0) & (cols < width)).unsqueeze(-2)
    flat = rows.clamp(0, height - 1).unsqueeze(-1) * width + cols.clamp(0, width - 1).unsqueeze(-2)
    return flat, inside


def _bilinear_taps(fx: Tensor, fy: Tensor) -> list[tuple[int, int, Tensor]]:
    """The four (dx, dy, weight (B, P, 1, 1)) taps of bilinear interpolation at fractions in [0, 1)."""
    wx = ((1 - fx), fx)
    wy = ((1 - fy), fy)
    return [(dx, dy, (wx[dx] * wy[dy])[..., None, None]) for dy in (0, 1) for dx in (0, 1)]


def _fourier_shift(patches: Tensor, fx: Tensor, fy: Tensor) -> Tensor:
    """Move the content of (B, P, N, N) windows by (-fx, -fy) px, circularly: out[r, c] = in[r+fy, c+fx]."""
    n = patches.shape[-1]
    real_dtype = fx.dtype
    k = torch.fft.fftfreq(n, device=patches.device, dtype=real_dtype)
    ramp = torch.polar(
        torch.ones((), dtype=real_dtype, device=patches.device),
        2 * math.pi * (fy[..., None, None] * k[:, None] + fx[..., None, None] * k[None, :]),
    )
    shifted = torch.fft.ifft2(torch.fft.fft2(patches) * ramp)
    if not torch.is_complex(patches):
        shifted = shifted.real
    integer = ((fx == 0) & (fy == 0))[..., None, None]
    return torch.where(integer, patches, shifted.to(patches.dtype))  # exact where nothing moves


def fourier_shift(images: Tensor, dx: Tensor, dy: Tensor) -> Tensor:
    """Move the content of (..., N, N) windows by (dx, dy) px (shapes (...)), circularly within each window:
    out[r, c] = in(r - dy, c - dx), band-limited interpolation. Exact (a copy) where dx = dy = 0."""
    return _fourier_shift(images, -dx, -dy)


def extract_patches(
    obj: Tensor, centres: Tensor, n: int, *, interpolation: Interpolation | str = Interpolation.BILINEAR,
    pad: int = 0,
) -> Tensor:
    """Sample N x N patches of an object at sub-pixel centres.

    obj: (Ho, Wo) with centres (P, 2) -> (P, N, N); or (B, Ho, Wo) with centres (B, P, 2) -> (B, P, N, N).
    centres are (x, y) in object pixels (see the module docstring). Differentiable in obj and centres.
    At integer centres the result equals slicing exactly; pixels outside the object read as zero.
    pad: shift in a window this many pixels wider on each side, then crop to N x N.
    """
    method = _interpolation(interpolation)
    _check_centres(centres)
    _check_pad(pad)
    if n < 1:
        raise PhysicsError(f"patch size N must be >= 1, got {n}")
    images, pos, batched = _batched(obj, centres, "extract_patches")
    batch, height, width = images.shape
    flat_obj = images.reshape(batch, height * width)
    count = pos.shape[1]
    wide = n + 2 * pad

    def read(x0: Tensor, y0: Tensor, dx: int, dy: int) -> Tensor:
        flat, inside = _tap_index(x0, y0, wide, dx, dy, height, width)
        values = flat_obj.gather(1, flat.reshape(batch, -1)).reshape(batch, count, wide, wide)
        return values * inside.to(values.real.dtype)

    x0, y0, fx, fy = _split_centres(pos, method, images.real.dtype)
    if method is Interpolation.BILINEAR:
        taps = [weight * read(x0, y0, dx, dy) for dx, dy, weight in _bilinear_taps(fx, fy)]
        patches = taps[0] + taps[1] + taps[2] + taps[3]
    elif method is Interpolation.FOURIER:
        patches = _fourier_shift(read(x0, y0, 0, 0), fx, fy)
    else:
        patches = read(x0, y0, 0, 0)
    patches = patches[..., pad : pad + n, pad : pad + n] if pad else patches
    return patches if batched else patches.squeeze(0)


def reassemble_patches(
    patches: Tensor,
    centres: Tensor,
    canvas_shape: tuple[int, int],
    weights: Tensor | None = None,
    *,
    interpolation: Interpolation | str = Interpolation.BILINEAR,
    pad: int = 0,
) -> tuple[Tensor, Tensor]:
    """Place patches on a canvas at sub-pixel centres: the adjoint of extract_patches.

    patches: (P, N, N) with centres (P, 2), or (B, P, N, N) with centres (B, P, 2); complex or real.
    weights: per-pixel weights broadcastable to patches (e.g. (N, N) probe intensity); default ones.
    Returns (canvas, weight_sum), each (Hc, Wc) (or (B, Hc, Wc)): canvas = sum of shifted weights*patches,
    weight_sum = sum of shifted weights (real). canvas / weight_sum (where weight_sum > 0) is the weighted
    average over overlaps. Parts that fall outside the canvas are dropped. Differentiable.
    pad: patches and weights are zero-padded by this many pixels on each side before the shift (the
    adjoint of extract_patches' crop).
    """
    method = _interpolation(interpolation)
    _check_centres(centres)
    _check_pad(pad)
    if patches.ndim not in (3, 4) or patches.shape[-1] != patches.shape[-2]:
        raise PhysicsError(f"patches must be (P, N, N) or (B, P, N, N), got {tuple(patches.shape)}")
    height, width = (int(v) for v in canvas_shape)
    if height < 1 or width < 1:
        raise PhysicsError(f"canvas_shape must be positive (rows, cols), got {canvas_shape}")
    batched = patches.ndim == 4
    stack = patches if batched else patches.unsqueeze(0)
    pos = centres if batched else centres.unsqueeze(0)
    if pos.shape[:2] != stack.shape[:2]:
        raise PhysicsError(
            f"{tuple(stack.shape[:2])} patches but centres {tuple(pos.shape)}: one centre each"
        )
    real_dtype = stack.real.dtype if torch.is_complex(stack) else stack.dtype
    w = torch.ones((), dtype=real_dtype, device=stack.device) if weights is None else weights.to(real_dtype)
    try:
        w = torch.broadcast_to(w, stack.shape)
    except RuntimeError as exc:
        raise PhysicsError(
            f"weights {tuple(w.shape)} do not broadcast to patches {tuple(stack.shape)}"
        ) from exc
    if pad:
        stack, w = functional.pad(stack, (pad,) * 4), functional.pad(w, (pad,) * 4)
    batch, _, n, _ = stack.shape
    weighted = stack * w
    canvas = torch.zeros(batch * height * width, dtype=stack.dtype, device=stack.device)
    weight_sum = torch.zeros(batch * height * width, dtype=real_dtype, device=stack.device)
    base = (torch.arange(batch, device=stack.device) * height * width).view(batch, 1, 1, 1)

    def write(x0: Tensor, y0: Tensor, dx: int, dy: int, values: Tensor, wvalues: Tensor) -> None:
        nonlocal canvas, weight_sum
        flat, inside = _tap_index(x0, y0, n, dx, dy, height, width)
        index = (flat + base).reshape(-1)
        keep = inside.to(real_dtype)
        canvas = canvas.index_add(0, index, (values * keep).reshape(-1))
        weight_sum = weight_sum.index_add(0, index, (wvalues * keep).reshape(-1))

    x0, y0, fx, fy = _split_centres(pos, method, real_dtype)
    if method is Interpolation.BILINEAR:
        for dx, dy, tap in _bilinear_taps(fx, fy):
            write(x0, y0, dx, dy, tap * weighted, tap * w)
    elif method is Interpolation.FOURIER:
        write(x0, y0, 0, 0, _fourier_shift(weighted, -fx, -fy), _fourier_shift(w, -fx, -fy))
    else:
        write(x0, y0, 0, 0, weighted, w)
    shape = (batch, height, width)
    canvas, weight_sum = canvas.reshape(shape), weight_sum.reshape(shape)
    return (canvas, weight_sum) if batched else (canvas[0], weight_sum[0])


def place_patches(
    patches: Tensor, centres: Tensor, canvas_shape: tuple[int, int], *,
    interpolation: Interpolation | str = Interpolation.BILINEAR, pad: int = 0,
) -> Tensor:
    """The exact adjoint of extract_patches (same interpolation and pad): patches summed onto a canvas."""
    return reassemble_patches(patches, centres, canvas_shape, interpolation=interpolation, pad=pad)[0]
