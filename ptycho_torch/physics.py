"""Ptychographic forward model: patches -> exit wave -> far field -> intensity; Poisson noise model.

Conventions (every function here follows them):

- Object, patches and probe are complex (complex64 in use; complex128 works, e.g. for gradcheck).
- Positions are (x, y) in object pixels, x = column, y = row. A patch centred at (x, y) has its pixel
  (N//2, N//2) at object pixel (row y, column x); its pixel (r, c) samples the object at
  (y + r - N//2, x + c - N//2). Samples that fall outside the object read as zero.
- Far field: F = fftshift(fft2(psi, norm="ortho")), so Parseval holds: sum|F|^2 == sum|psi|^2 and the zero
  frequency sits at detector pixel (N//2, N//2).
- Probe modes: a probe of shape (M, N, N) holds M mutually incoherent modes; (N, N) is one mode. The
  intensities of the modes add, never their fields.
- Amplitudes here are in "unit" scale (object and probe as given). Detector counts are (A * s)^2 with
  s = intensity_scale(probe, nphotons); a stored diffraction amplitude is sqrt(counts) = A * s.
"""

from __future__ import annotations

import math
import numbers
from enum import StrEnum

import torch
from torch import Tensor

from ptycho_torch.errors import PhysicsError


class Interpolation(StrEnum):
    """How patches are moved by sub-pixel amounts.

    BILINEAR: local, exact adjoint pair of extract/reassemble, non-negative weights; a sub-pixel move low-pass
        filters slightly, so extract(reassemble(p)) == p only at integer centres. The default.
    FOURIER: a phase ramp on the patch's own N x N window (circular within the window); extract(reassemble(p))
        == p at any centre. Exact only for content periodic in the window: otherwise the edge discontinuity
        rings inward (about 10% of the amplitude at a 16 px patch's centre, for smooth content sampled at
        x.3 / x.7), where bilinear errs by about 1%. Use it when the exact round trip matters.
    """

    BILINEAR = "bilinear"
    FOURIER = "fourier"


# ----------------------------------------------------------------------------------------------------------
# The far-field model
# ----------------------------------------------------------------------------------------------------------


def _interpolation(value: Interpolation | str) -> Interpolation:
    try:
        return Interpolation(value)
    except ValueError:
        choices = ", ".join(repr(m.value) for m in Interpolation)
        raise PhysicsError(f"unknown interpolation {value!r}; choose one of {choices}") from None


def probe_modes(probe: Tensor) -> Tensor:
    """Return the probe as modes: (N, N) -> (1, N, N); (M, N, N) unchanged. Raises PhysicsError otherwise."""
    if not torch.is_complex(probe):
        raise PhysicsError(f"probe must be complex (complex64), got dtype {probe.dtype}")
    if probe.ndim == 2:
        return probe.unsqueeze(0)
    if probe.ndim == 3:
        return probe
    raise PhysicsError(
        f"probe must have shape (N, N) or (M, N, N) for M incoherent modes, got {tuple(probe.shape)}"
    )


def exit_wave(object_patches: Tensor, probe: Tensor) -> Tensor:
    """Exit wave of each probe mode: (..., N, N) object patches * (M?, N, N) probe -> (..., M, N, N)."""
    modes = probe_modes(probe)
    if object_patches.shape[-2:] != modes.shape[-2:]:
        raise PhysicsError(
            f"object patches are {tuple(object_patches.shape[-2:])} pixels but the probe is "
            f"{tuple(modes.shape[-2:])}; extract patches of the probe's size"
        )
    return object_patches.unsqueeze(-3) * modes


def far_field(psi: Tensor) -> Tensor:
    """Fraunhofer propagation over the last two axes: fftshift(fft2(psi, norm="ortho")), same shape."""
    return torch.fft.fftshift(torch.fft.fft2(psi, norm="ortho"), dim=(-2, -1))


def intensity(field: Tensor) -> Tensor:
    """Incoherent sum over the mode axis: (..., M, N, N) complex -> (..., N, N) real, sum_m |F_m|^2."""
    return (field.real.square() + field.imag.square()).sum(dim=-3)


def safe_sqrt(values: Tensor) -> Tensor:
    """sqrt for non-negative values whose gradient is 0 (not inf/NaN) where the value is 0."""
    tiny = torch.finfo(values.dtype).tiny ** 0.5  # sqrt(tiny) keeps 1/(2 sqrt(x)) finite in float32
    positive = values > tiny
    return torch.where(positive, torch.sqrt(torch.where(positive, values, torch.ones_like(values))), 0.0)


def diffraction_amplitude(object_patches: Tensor, probe: Tensor) -> Tensor:
    """Predicted far-field amplitude (unit scale) of object patches (..., N, N) under probe (M?, N, N).

    Returns (..., N, N) real: sqrt(sum over modes |fftshift(fft2(O * P_m))|^2).
    """
    psi = exit_wave(object_patches, probe)  # (..., M, N, N)
    return safe_sqrt(intensity(far_field(psi)))  # (..., N, N)


def forward(
    obj: Tensor,
    probe: Tensor,
    centres: Tensor,
    *,
    interpolation: Interpolation | str = Interpolation.BILINEAR,
) -> Tensor:
    """Full forward model: object (B?, Ho, Wo) scanned at centres (B?, P, 2) -> amplitudes (B?, P, N, N).

    The named steps: extract patches -> exit wave -> far field -> intensity -> amplitude (unit scale).
    """
    n = probe_modes(probe).shape[-1]
    patches = extract_patches(obj, centres, n, interpolation=interpolation)  # (B?, P, N, N)
    psi = exit_wave(patches, probe)  # (B?, P, M, N, N)
    farfield = far_field(psi)
    return safe_sqrt(intensity(farfield))  # (B?, P, N, N)


# ----------------------------------------------------------------------------------------------------------
# Scale and noise model
# ----------------------------------------------------------------------------------------------------------


def intensity_scale(probe: Tensor, mean_total_counts: float) -> float:
    """Scale s mapping unit-scale amplitudes to sqrt(counts): counts = (A * s)^2.

    With |O| ~ 1 and the orthonormal FFT, Parseval gives sum|F|^2 = sum|O P|^2 ~ sum|P|^2 (summed over the
    modes), so a pattern holds about s^2 * sum|P|^2 counts and s = sqrt(mean_total_counts / sum|P|^2).
    The object's absolute amplitude and the probe's power cannot be separated by the data; this choice
    puts the object at |O| ~ 1.
    """
    if isinstance(mean_total_counts, bool) or not (
        isinstance(mean_total_counts, numbers.Real) and math.isfinite(mean_total_counts)
    ):
        raise PhysicsError(f"mean_total_counts must be a finite number, got {mean_total_counts!r}")
    if mean_total_counts <= 0:
        raise PhysicsError(
            f"mean_total_counts must be > 0 (mean photons per pattern), got {mean_total_counts}"
        )
    power = float(intensity(probe_modes(probe).detach()).sum())
    if not (math.isfinite(power) and power > 0):
        raise PhysicsError(
            f"probe power sum|P|^2 must be finite and > 0, got {power}; is the probe all zeros?"
        )
    return math.sqrt(mean_total_counts / power)


def poisson_nll_counts(rate: Tensor, counts: Tensor, *, eps: float = 1e-8) -> Tensor:
    """Elementwise Poisson NLL without the counts-only term: rate - counts * log(rate + eps).

    Equals -log Poisson(counts; rate) - lgamma(counts + 1) up to eps; eps > 0 keeps it finite at rate 0.
    """
    if eps <= 0:
        raise PhysicsError(f"eps must be > 0 so log(rate + eps) is finite at rate 0, got {eps}")
    return rate - counts * torch.log(rate + eps)


def poisson_nll(
    pred_amplitude: Tensor, measured_amplitude: Tensor, scale: float | Tensor, *, eps: float = 1e-8
) -> Tensor:
    """Elementwise Poisson NLL of measured counts given predicted amplitudes.

    pred_amplitude: unit scale (the physics output); measured_amplitude: sqrt(counts), as stored;
    scale: intensity_scale(). rate = (pred_amplitude * scale)^2, counts = measured_amplitude^2.
    """
    rate = (pred_amplitude * scale).square()
    return poisson_nll_counts(rate, measured_amplitude.square(), eps=eps)


def amplitude_mae(pred_amplitude: Tensor, measured_amplitude: Tensor, scale: float | Tensor) -> Tensor:
    """Elementwise |pred - measured / scale|, compared in unit scale (same arguments as poisson_nll)."""
    return (pred_amplitude - measured_amplitude / scale).abs()


# ----------------------------------------------------------------------------------------------------------
# Sub-pixel patch extraction and reassembly
# ----------------------------------------------------------------------------------------------------------


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


def _split_centres(centres: Tensor, rounding: str) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """(B, P, 2) -> integer (x0, y0) as long and fractional (fx, fy), differentiable in the fractions."""
    x, y = centres[..., 0], centres[..., 1]
    snap = torch.floor if rounding == "floor" else torch.round
    x0, y0 = snap(x).detach(), snap(y).detach()
    return x0.long(), y0.long(), x - x0, y - y0


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


def extract_patches(
    obj: Tensor, centres: Tensor, n: int, *, interpolation: Interpolation | str = Interpolation.BILINEAR
) -> Tensor:
    """Sample N x N patches of an object at sub-pixel centres.

    obj: (Ho, Wo) with centres (P, 2) -> (P, N, N); or (B, Ho, Wo) with centres (B, P, 2) -> (B, P, N, N).
    centres are (x, y) in object pixels (see the module docstring). Differentiable in obj and centres.
    At integer centres the result equals slicing exactly; pixels outside the object read as zero.
    """
    method = _interpolation(interpolation)
    _check_centres(centres)
    if n < 1:
        raise PhysicsError(f"patch size N must be >= 1, got {n}")
    images, pos, batched = _batched(obj, centres, "extract_patches")
    batch, height, width = images.shape
    flat_obj = images.reshape(batch, height * width)
    count = pos.shape[1]

    def read(x0: Tensor, y0: Tensor, dx: int, dy: int) -> Tensor:
        flat, inside = _tap_index(x0, y0, n, dx, dy, height, width)
        values = flat_obj.gather(1, flat.reshape(batch, -1)).reshape(batch, count, n, n)
        return values * inside.to(values.real.dtype)

    if method is Interpolation.BILINEAR:
        x0, y0, fx, fy = _split_centres(pos.to(images.real.dtype), "floor")
        taps = [weight * read(x0, y0, dx, dy) for dx, dy, weight in _bilinear_taps(fx, fy)]
        patches = taps[0] + taps[1] + taps[2] + taps[3]
    else:
        x0, y0, fx, fy = _split_centres(pos.to(images.real.dtype), "round")
        patches = _fourier_shift(read(x0, y0, 0, 0), fx, fy)
    return patches if batched else patches.squeeze(0)


def reassemble_patches(
    patches: Tensor,
    centres: Tensor,
    canvas_shape: tuple[int, int],
    weights: Tensor | None = None,
    *,
    interpolation: Interpolation | str = Interpolation.BILINEAR,
) -> tuple[Tensor, Tensor]:
    """Place patches on a canvas at sub-pixel centres: the adjoint of extract_patches.

    patches: (P, N, N) with centres (P, 2), or (B, P, N, N) with centres (B, P, 2); complex or real.
    weights: per-pixel weights broadcastable to patches (e.g. (N, N) probe intensity); default ones.
    Returns (canvas, weight_sum), each (Hc, Wc) (or (B, Hc, Wc)): canvas = sum of shifted weights*patches,
    weight_sum = sum of shifted weights (real). canvas / weight_sum (where weight_sum > 0) is the weighted
    average over overlaps. Parts that fall outside the canvas are dropped. Differentiable.
    """
    method = _interpolation(interpolation)
    _check_centres(centres)
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
    batch, _, n, _ = stack.shape
    real_dtype = stack.real.dtype if torch.is_complex(stack) else stack.dtype
    w = torch.ones((), dtype=real_dtype, device=stack.device) if weights is None else weights.to(real_dtype)
    try:
        w = torch.broadcast_to(w, stack.shape)
    except RuntimeError as exc:
        raise PhysicsError(
            f"weights {tuple(w.shape)} do not broadcast to patches {tuple(stack.shape)}"
        ) from exc
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

    if method is Interpolation.BILINEAR:
        x0, y0, fx, fy = _split_centres(pos.to(real_dtype), "floor")
        for dx, dy, tap in _bilinear_taps(fx, fy):
            write(x0, y0, dx, dy, tap * weighted, tap * w)
    else:
        x0, y0, fx, fy = _split_centres(pos.to(real_dtype), "round")
        write(x0, y0, 0, 0, _fourier_shift(weighted, -fx, -fy), _fourier_shift(w, -fx, -fy))
    shape = (batch, height, width)
    canvas, weight_sum = canvas.reshape(shape), weight_sum.reshape(shape)
    return (canvas, weight_sum) if batched else (canvas[0], weight_sum[0])
