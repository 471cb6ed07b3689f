"""Honest metrics of a complex 2-D reconstruction against the ground truth.

What the data cannot determine is removed before comparing: a sub-pixel shift (registration.py: bounded,
and only when the correlation peak is clear; the result says when it was skipped and why), the global
phase, optionally a linear phase ramp, and optionally a global amplitude scale (least squares); the result
says which were applied and by how much. Then, on the covered (scanned) region only:

- MAE and PSNR, with PSNR's data_range = max - min of the truth in the region (never a fixed peak);
- SSIM (skimage, 7x7 windows, same data_range), averaged over the region shrunk by the window radius so
  that no window sees the fill outside the region;
- the FRC curve (rings of width 1/min(H, W) cycles/pixel, edges apodized) and the spatial frequency, in
  cycles/pixel, where it first drops below 1/7; the resolved period is 1 / that frequency, in pixels. If it
  never drops below up to the Nyquist limit (0.5), the threshold is "not reached": the frequency is None
  (null in JSON), never a made-up 0.5, and a note says so.

Phase: MAE and PSNR use the circular distance wrap(recon - truth), so a 2 pi wrap never counts as an
error; SSIM and FRC compare phase images taken on one branch, [c - pi, c + pi) around the truth's mean
phase c (no truth content enters the recon's image). A truth whose phase spans more than 2 pi needs
unwrapping first; that is not done here.

What is removed is one options record, AlignOptions, validated when made; evaluate() returns an Evaluation
record (scores.py: units, and the metrics.json layout of its to_dict()). align() with the same options
returns the reconstruction exactly as evaluate() scored it (registered, phase ramp and offset removed,
amplitude scaled, cropped to the region): every figure that shows a scored reconstruction draws it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy import ndimage, optimize
from skimage.metrics import structural_similarity

from ptycho_torch import options, registration
from ptycho_torch.errors import MetricsError
from ptycho_torch.frc import FRC_THRESHOLD, NYQUIST, FRCResult, frc
from ptycho_torch.region import bounding_box
from ptycho_torch.scores import Evaluation, FRCCurves, Scores

__all__ = [
    "FRC_THRESHOLD", "NYQUIST", "AlignOptions", "Alignment", "Evaluation", "FRCCurves", "FRCResult",
    "MetricsError", "Scores", "align", "constant_baseline", "evaluate", "frc", "psnr",
]

SSIM_WINDOW = 7
NEGLIGIBLE = (
    1e-12  # a fitted correction below this (rad, rad/px, relative scale) is rounding noise: not applied
)


@dataclass(frozen=True)
class AlignOptions:
    """What evaluate() and align() remove before scoring, beyond the global phase offset (always removed).

    fit_scale: a global amplitude scale, least squares on the region (object amplitude and probe power are
        not separable by ptychography);
    remove_ramp: a linear phase ramp (_phase_ramp; removed only where it raises the agreement);
    register: a bounded sub-pixel shift, applied only on a clear correlation peak (registration.py);
    upsample_factor: the registration's sub-pixel precision, 1 / upsample_factor px.

    MetricsError when a flag is not a bool or upsample_factor not an integer >= 1.
    """

    fit_scale: bool = True
    remove_ramp: bool = True
    register: bool = True
    upsample_factor: int = 100

    def __post_init__(self) -> None:
        for name in ("fit_scale", "remove_ramp", "register"):
            options.boolean(getattr(self, name), name, error=MetricsError)
        options.integer(self.upsample_factor, "upsample_factor", minimum=1, error=MetricsError)


def psnr(recon: ArrayLike, truth: ArrayLike, data_range: float) -> float:
    """10 log10(data_range^2 / MSE); inf for a perfect match, nan when data_range is 0."""
    mse = float(np.mean((np.asarray(recon, dtype=np.float64) - np.asarray(truth, dtype=np.float64)) ** 2))
    if mse == 0.0:
        return math.inf
    if data_range <= 0:
        return math.nan
    return 10.0 * math.log10(data_range**2 / mse)


def _as_complex_image(values: ArrayLike, name: str) -> NDArray[np.complex128]:
    try:
        array = np.asarray(values, dtype=np.complex128)
    except (TypeError, ValueError) as exc:
        raise MetricsError(f"{name} must be a numeric 2-D array (complex or real): {exc}") from None
    if array.ndim != 2:
        raise MetricsError(f"{name} must be 2-D (rows, cols), got shape {array.shape}")
    return array


def _wrap(radians: NDArray[np.float64]) -> NDArray[np.float64]:
    """Map angles to [-pi, pi); exact for 0."""
    return np.mod(radians + np.pi, 2 * np.pi) - np.pi


def _fill(image: NDArray[Any], region: NDArray[np.bool_], value: complex) -> NDArray[Any]:
    return np.where(region, image, value)


def _phase_ramp(
    recon: NDArray[np.complex128], truth: NDArray[np.complex128], region: NDArray[np.bool_]
) -> tuple[float, float, NDArray[np.float64]]:
    """Linear phase ramp of truth relative to recon: (gx, gy) rad/px and the ramp image, zero at the
    region's centroid.

    The coherence C(g) = |sum over the region of truth conj(recon) exp(-i g.r)| is maximised locally
    (Nelder-Mead) from two starts, no ramp and the mean phase increment between neighbours (immune to 2 pi
    wraps and exact on clean data, but biased by pixel-scale phase noise: on a network's reconstruction it
    alone removed a ramp worth 2 rad across the field and dropped C from 0.94 to 0.57 of its bound,
    EVAL-003). A ramp is removed only when it raises C beyond rounding and C stands clear of chance
    (5 times the coherence of unrelated images, sqrt(sum |product|^2)): so removing the ramp never lowers
    the agreement with the truth, and on noise no ramp is invented.
    """
    product = np.where(region, truth * np.conj(recon), 0)
    rows, cols = np.arange(product.shape[0]), np.arange(product.shape[1])

    def coherence(g: NDArray[np.float64]) -> float:  # separable: sum_rc p[r, c] e^{-i gy r} e^{-i gx c}
        return float(abs(np.exp(-1j * g[1] * rows) @ product @ np.exp(-1j * g[0] * cols)))

    def better(value: float, than: float) -> bool:
        return value > than * (1 + 1e-9)

    increments = np.array([np.angle(np.sum(product[:, 1:] * np.conj(product[:, :-1]))),
                           np.angle(np.sum(product[1:, :] * np.conj(product[:-1, :])))])
    step = np.pi / (4 * max(product.shape))  # an eighth of a bin of the region's spectrum
    best, best_value = np.zeros(2), coherence(np.zeros(2))
    for start in (increments, np.zeros(2)):  # increments first: exact on clean data, kept unless beaten
        start_value = coherence(start)
        simplex = np.stack([start, start + [step, 0.0], start + [0.0, step]])
        fit = optimize.minimize(lambda g: -coherence(g), start, method="Nelder-Mead",
                                options={"initial_simplex": simplex, "xatol": 1e-13, "fatol": 1e-15 * start_value,
                                         "maxiter": 400})
        found, value = (fit.x, -fit.fun) if better(-fit.fun, start_value) else (start, start_value)
        found, value = _newton_polish(product, found, value)
        if better(value, best_value):
            best, best_value = found, value
    chance = 5.0 * math.sqrt(float(np.sum(np.abs(product) ** 2)))
    gx, gy = (float(g) if abs(g) > NEGLIGIBLE and best_value > chance else 0.0 for g in best)
    grid_rows, grid_cols = np.indices(recon.shape)
    return gx, gy, gx * (grid_cols - grid_cols[region].mean()) + gy * (grid_rows - grid_rows[region].mean())


def _newton_polish(product: NDArray[np.complex128], g: NDArray[np.float64], value: float, steps: int = 4
                   ) -> tuple[NDArray[np.float64], float]:
    """Newton steps on |S(g)|^2, S(g) = sum p e^{-i g.r}, from a point near its maximum (negative definite
    Hessian, steps within a bin): the gradient's zero to rounding, so that equal data give equal ramps
    whatever path found them. Where |S| would end lower (beyond rounding), the start is kept."""
    rows, cols = np.indices(product.shape)
    coords = (cols.ravel() - cols.mean(), rows.ravel() - rows.mean())
    flat = product.ravel()
    limit = np.pi / max(product.shape)
    point = g.copy()
    for _ in range(steps):
        q = flat * np.exp(-1j * (point[0] * coords[0] + point[1] * coords[1]))
        total = q.sum()
        first = np.array([np.sum(-1j * c * q) for c in coords])
        second = np.array([[np.sum(-a * b * q) for b in coords] for a in coords])
        gradient = 2 * np.real(np.conj(total) * first)
        hessian = 2 * np.real(np.conj(first)[None, :] * first[:, None] + np.conj(total) * second)
        if not np.all(np.linalg.eigvalsh(hessian) < 0):
            break
        step = np.linalg.solve(hessian, gradient)
        if not np.all(np.isfinite(step)) or np.abs(step).max() > limit:
            break
        point = point - step
    polished = float(abs(np.sum(flat * np.exp(-1j * (point[0] * coords[0] + point[1] * coords[1])))))
    return (point, polished) if polished >= value * (1 - 1e-12) else (g, value)


def _register(
    recon: NDArray[np.complex128],
    truth: NDArray[np.complex128],
    region: NDArray[np.bool_],
    upsample_factor: int,
) -> tuple[NDArray[np.complex128], NDArray[np.bool_], registration.Registration]:
    """Shift recon onto truth when registration.register finds a clear peak within its bound.

    The correlation sees recon with its phase ramp removed (a ramp would move the peak); the shift is
    applied to recon as given.
    """
    moving = _fill(recon, region, recon[region].mean())
    reference = _fill(truth, region, truth[region].mean())
    flattened = moving * np.exp(1j * _phase_ramp(moving, reference, region)[2])
    found = registration.register(reference, flattened, bounding_box_shape(region), upsample_factor)
    if not found.applied or found.shift == (0.0, 0.0):
        return recon, region, found
    shift = list(found.shift)
    # cubic splines are local, so unlike a Fourier shift nothing wraps in from the far edge
    shifted = ndimage.shift(moving.real, shift, order=3, mode="nearest") + 1j * ndimage.shift(
        moving.imag, shift, order=3, mode="nearest"
    )
    moved_region = ndimage.shift(region.astype(np.float64), shift, order=1, mode="constant", cval=0.0) > 0.999
    moved_region = ndimage.binary_erosion(moved_region, iterations=2, border_value=0)  # spline support
    return shifted, moved_region, found


def bounding_box_shape(region: NDArray[np.bool_]) -> tuple[int, int]:
    """(rows, cols) of the region's bounding box: the field a registration shift is bounded by."""
    box = bounding_box(region)
    return box[0].stop - box[0].start, box[1].stop - box[1].start


def _remove_phase(
    recon: NDArray[np.complex128],
    truth: NDArray[np.complex128],
    region: NDArray[np.bool_],
    remove_ramp: bool,
    notes: list[str],
) -> NDArray[np.complex128]:
    """Multiply recon by exp(i(ramp + offset)) fitted on region so its phase best matches the truth."""
    if remove_ramp:
        gx, gy, ramp = _phase_ramp(recon, truth, region)
        if gx or gy:
            recon = recon * np.exp(1j * ramp)
        notes.append(
            f"linear phase ramp removed: {gx:.4g} rad/px along x, {gy:.4g} rad/px along y "
            "(zero at the region's centroid)"
        )
    offset = float(np.angle(np.sum(np.where(region, truth * np.conj(recon), 0))))
    offset = offset if abs(offset) > NEGLIGIBLE else 0.0
    if offset:
        recon = recon * np.exp(1j * offset)
    notes.append(f"global phase offset removed: {offset:.4g} rad")
    return recon


def _quantity_metrics(
    recon: NDArray[np.float64],
    truth: NDArray[np.float64],
    region: NDArray[np.bool_],
    name: str,
    notes: list[str],
    error: NDArray[np.float64] | None = None,
) -> tuple[Scores, FRCResult]:
    """MAE and PSNR of `error` (default recon - truth), SSIM and FRC of the images, all on region."""
    values_t, values_r = truth[region], recon[region]
    errors = (recon - truth if error is None else error)[region]
    data_range = float(values_t.max() - values_t.min())
    if data_range == 0.0:
        notes.append(f"{name}: the truth is constant on the region, so PSNR and SSIM are undefined (nan)")
    mean_t = float(values_t.mean())
    filled_t, filled_r = _fill(truth, region, mean_t), _fill(recon, region, mean_t)
    if data_range > 0:
        _, ssim_map = structural_similarity(
            filled_t, filled_r, data_range=data_range, win_size=SSIM_WINDOW, full=True
        )
        inner = ndimage.binary_erosion(region, iterations=SSIM_WINDOW // 2, border_value=0)
        ssim = float(ssim_map[inner if inner.any() else region].mean())
    else:
        ssim = math.nan
    ring = frc(_fill(truth - mean_t, region, 0.0), _fill(recon - float(values_r.mean()), region, 0.0))
    if not ring.crossed:
        notes.append(
            f"{name}: FRC never drops below 1/7 up to the Nyquist limit (0.5 cycles/px): resolution not "
            "reached (null)"
        )
    scores = Scores(mae=float(np.mean(np.abs(errors))), psnr=psnr(errors, np.zeros_like(errors), data_range),
                    ssim=ssim, frc_resolution=ring.resolution)
    return scores, ring


@dataclass(frozen=True)
class _Fit:
    """What evaluate() removes before scoring: recon registered and phase-aligned (scale not applied),
    truth and region, all cropped to the region's box (`box`, in the input frame)."""

    recon: NDArray[np.complex128]
    truth: NDArray[np.complex128]
    region: NDArray[np.bool_]
    box: tuple[slice, slice]
    registration: registration.Registration
    scale: float


def _fit(recon: ArrayLike, truth: ArrayLike, mask: ArrayLike | None, settings: AlignOptions,
         notes: list[str]) -> _Fit:
    """Validate the inputs, then register, remove the phase ramp and offset and fit the amplitude scale on
    the covered region, in that order, as settings ask; each step appends what it did to notes."""
    recon_c = _as_complex_image(recon, "recon")
    truth_c = _as_complex_image(truth, "truth")
    if recon_c.shape != truth_c.shape:
        raise MetricsError(
            f"recon {recon_c.shape} and truth {truth_c.shape} must have the same shape; "
            "crop or stitch the reconstruction onto the truth's grid first"
        )
    covered = np.isfinite(recon_c)
    if mask is not None:
        mask_b = np.asarray(mask)
        if mask_b.shape != recon_c.shape:
            raise MetricsError(f"mask shape {mask_b.shape} differs from the images' {recon_c.shape}")
        in_mask = mask_b.astype(bool)
        covered &= in_mask
        scored, wanted = int(covered.sum()), int(in_mask.sum())
        if scored < wanted:  # the pixels left, often those nearest the scan positions, may flatter the scores
            notes.append(f"the reconstruction covers {scored} of the mask's {wanted} pixels "
                         f"({100 * scored / wanted:.1f}%); the other {wanted - scored} are not scored: compare "
                         "reconstructions on the pixels they all cover")
    if not covered.any():
        raise MetricsError(
            "no covered pixels: recon is NaN everywhere the mask allows; check mask and stitching"
        )
    if not np.isfinite(truth_c[covered]).all():
        raise MetricsError("truth has NaN or inf inside the covered region; the truth must be finite there")
    outer = bounding_box(covered)
    recon_c, truth_c, region = recon_c[outer], truth_c[outer], covered[outer]

    found = registration.not_asked()
    if settings.register:
        recon_c, region, found = _register(recon_c, truth_c, region, settings.upsample_factor)
        if found.applied:
            notes.append(f"registered: recon shifted by (dy, dx) = ({found.shift[0]:.3f}, {found.shift[1]:.3f}) "
                         f"px ({found.reason})")
        else:
            notes.append(f"registration {found.reason}")
    else:
        notes.append("no registration (register=False)")
    if region.sum() == 0:
        raise MetricsError(f"nothing of the covered region is left after registration by {list(found.shift)} px")
    inner = bounding_box(region)
    recon_c, truth_c, region = recon_c[inner], truth_c[inner], region[inner]
    if min(region.shape) < SSIM_WINDOW:
        raise MetricsError(
            f"the covered region is {region.shape} px; SSIM and FRC need at least "
            f"{SSIM_WINDOW}x{SSIM_WINDOW}; evaluate a larger scanned area"
        )

    recon_c = _remove_phase(recon_c, truth_c, region, settings.remove_ramp, notes)
    scale = 1.0
    if settings.fit_scale:
        amplitude_t, amplitude_r = np.abs(truth_c), np.abs(recon_c)
        power = float(np.sum(amplitude_r[region] ** 2))
        if power > 0:
            scale = float(np.sum(amplitude_t[region] * amplitude_r[region]) / power)
            scale = scale if abs(scale - 1.0) > NEGLIGIBLE else 1.0
            notes.append(f"amplitude scaled by {scale:.6g} (least-squares fit on the region)")
        else:
            notes.append("amplitude is zero on the region; no scale fitted")
    else:
        notes.append("no amplitude scale fitted (fit_scale=False)")
    box = tuple(slice(o.start + i.start, o.start + i.stop) for o, i in zip(outer, inner, strict=True))
    return _Fit(recon_c, truth_c, region, box, found, scale)  # type: ignore[arg-type]


@dataclass(frozen=True)
class Alignment:
    """A reconstruction put onto the truth exactly as evaluate() scores it, for display.

    recon: shifted by `shift` (when registered), times exp(i (phase ramp + global offset)) fitted on the
    region, times the fitted amplitude `scale`; truth as given. Both are cropped to the scored region's
    bounding box, `box` (slices of the input frame), and NaN outside `region`.
    """

    recon: NDArray[np.complex128]
    truth: NDArray[np.complex128]
    region: NDArray[np.bool_]
    box: tuple[slice, slice]
    shift: tuple[float, float]  # (dy, dx) px applied to recon
    scale: float

    def in_frame(self, shape: tuple[int, ...]) -> NDArray[np.complex128]:
        """The aligned recon placed back on the input frame `shape`, NaN elsewhere."""
        canvas = np.full(shape, np.nan + 0j, dtype=np.complex128)
        canvas[self.box] = self.recon
        return canvas


def align(recon: ArrayLike, truth: ArrayLike, *, mask: ArrayLike | None = None,
          options: AlignOptions = AlignOptions()) -> Alignment:
    """recon aligned onto truth as evaluate() with the same mask and options scores it; see Alignment."""
    fit = _fit(recon, truth, mask, options, [])
    nan = np.complex128(np.nan + 0j)
    return Alignment(
        recon=np.where(fit.region, fit.scale * fit.recon, nan),
        truth=np.where(fit.region, fit.truth, nan),
        region=fit.region,
        box=fit.box,
        shift=fit.registration.shift,
        scale=fit.scale,
    )


def evaluate(recon: ArrayLike, truth: ArrayLike, *, mask: ArrayLike | None = None,
             options: AlignOptions = AlignOptions()) -> Evaluation:
    """Compare a complex reconstruction (H, W) with the truth (H, W) on the covered region.

    recon may hold NaN outside its coverage; mask (H, W) bool, True = scanned, narrows the region further.
    options says what is removed before scoring. The Evaluation's registration.shift is what was applied to
    recon to register it onto truth, in pixels ((0, 0) when registration was skipped or not asked for:
    `applied` and `reason` say which and why; registration.py); an FRC resolution is None where the 1/7
    threshold is not reached (module docstring); PSNR may be inf. align() with the same mask and options
    returns the images that were scored.
    """
    notes: list[str] = []
    fit = _fit(recon, truth, mask, options, notes)
    recon_c, truth_c, region, scale = fit.recon, fit.truth, fit.region, fit.scale
    amplitude_t, amplitude_r = np.abs(truth_c), np.abs(recon_c)
    # phase images on one branch centred on the truth's mean phase; errors as circular distances
    centre = float(np.angle(np.sum(truth_c[region])))
    phase_t = centre + _wrap(np.angle(truth_c) - centre)
    phase_r = centre + _wrap(np.angle(recon_c) - centre)
    amplitude, amplitude_frc = _quantity_metrics(scale * amplitude_r, amplitude_t, region, "amplitude", notes)
    phase, phase_frc = _quantity_metrics(
        phase_r, phase_t, region, "phase", notes, error=_wrap(phase_r - phase_t)
    )
    notes.append(f"region: {int(region.sum())} px in a {region.shape[0]}x{region.shape[1]} box")
    return Evaluation(amplitude=amplitude, phase=phase, registration=fit.registration, amplitude_scale=scale,
                      notes=tuple(notes), frc=FRCCurves.of(amplitude_frc, phase_frc))


def constant_baseline(truth: ArrayLike, mask: ArrayLike | None = None, *,
                      options: AlignOptions = AlignOptions()) -> Evaluation:
    """evaluate() of a constant object (the truth's mean amplitude and mean phase) on the same region.

    Print it beside a reconstruction's metrics: a flat image can score an SSIM well above 0 where the
    truth is smooth, so a reconstruction's SSIM means little without this reference.
    Registration is skipped whatever options.register says (a constant has nothing to register).
    """
    truth_c = _as_complex_image(truth, "truth")
    region = np.isfinite(truth_c)
    if mask is not None:
        mask_b = np.asarray(mask, dtype=bool)
        if mask_b.shape != truth_c.shape:
            raise MetricsError(f"mask shape {mask_b.shape} differs from the truth's {truth_c.shape}")
        region &= mask_b
    if not region.any():
        raise MetricsError("the mask selects no finite truth pixels; nothing to compare a constant with")
    value = np.abs(truth_c[region]).mean() * np.exp(1j * np.angle(truth_c[region].sum()))
    constant = np.where(region, value, np.nan + 0j)
    result = evaluate(constant, truth_c, mask=region, options=replace(options, register=False))
    note = f"constant object |{abs(value):.4g}| exp(i {np.angle(value):.4g})"
    return replace(result, notes=(note, *result.notes))
