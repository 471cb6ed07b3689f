"""Registration of a reconstruction onto the truth: a bounded shift, applied only when the correlation is clear.

A reconstruction may sit a little off the truth's frame (a sub-pixel offset of its positions, a drift the data
cannot fix), so metrics.evaluate may shift it back before scoring. A weak reconstruction correlates with the
truth about as well at a wrong shift as at the right one, and an unbounded search then locks onto a spurious
peak tens of pixels away (30-75 px were measured in an earlier study), which corrupts every score. So:

- the correlation is the normalised cross-correlation |sum conj(recon shifted) * truth| / (|recon| |truth|)
  of the mean-free images (the recon's phase ramp removed first), over every circular shift, via the FFT;
- the peak is clear when it reaches MIN_PEAK_CORRELATION and nothing outside its own lobe (the connected
  region around it where the correlation is at least half the peak, within the shift bound of it) reaches
  1 / PEAK_CONTRAST of it: a periodic object, or a weak reconstruction, has rivals and is not registered;
- the shift may be at most MAX_SHIFT_FRACTION of the scored region's smaller side (at least 1 px);
- when both hold, the shift is refined to sub-pixel precision (skimage's upsampled cross-correlation) and
  applied; otherwise registration is skipped, and the result says why.

Shifts are (dy, dx) in pixels, what is applied to the reconstruction to put it onto the truth.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray
from scipy import ndimage
from skimage.registration import phase_cross_correlation

MAX_SHIFT_FRACTION = 0.1  # of the scored region's smaller side
MIN_PEAK_CORRELATION = 0.3  # below this the reconstruction explains < 10% of the truth's variance
PEAK_CONTRAST = 1.5  # the peak must beat every correlation outside its lobe by this factor


@dataclass(frozen=True)
class Registration:
    """What registration found and did. shift: applied to the reconstruction ([0, 0] when skipped);
    found: the correlation's best shift (integer px) within the whole field; peak: the normalised correlation
    there (None when not computed); applied: whether the shift was used; reason: why, in words."""

    shift: tuple[float, float]
    found: tuple[float, float]
    peak: float | None
    max_shift_px: float
    applied: bool
    reason: str

    def as_dict(self) -> dict[str, object]:
        return {"shift": list(self.shift), "applied": self.applied, "reason": self.reason,
                "found_shift": list(self.found), "peak_correlation": self.peak,
                "max_shift_px": self.max_shift_px}


def not_asked() -> Registration:
    return Registration((0.0, 0.0), (0.0, 0.0), None, 0.0, False, "not asked (register=False)")


def max_shift(shape: tuple[int, ...]) -> float:
    """The largest shift accepted for a scored region of this (rows, cols) box."""
    return max(1.0, MAX_SHIFT_FRACTION * min(shape))


def correlation(reference: NDArray[np.complex128], moving: NDArray[np.complex128]) -> NDArray[np.float64]:
    """|normalised circular cross-correlation| of the mean-free images; entry (dy, dx) (wrapped) scores
    moving shifted by (dy, dx) against reference."""
    a, b = reference - reference.mean(), moving - moving.mean()
    norm = float(np.linalg.norm(a) * np.linalg.norm(b))
    if norm == 0.0:
        return np.zeros(reference.shape)
    return np.abs(np.fft.ifft2(np.fft.fft2(a) * np.conj(np.fft.fft2(b)))) / norm


def _peak(surface: NDArray[np.float64], radius: float) -> tuple[tuple[int, int], float, float]:
    """((dy, dx) of the peak, wrapped as skimage wraps it, its value, the highest value outside its lobe: the
    connected region around it where the surface is at least half the peak, cut to `radius` px of it)."""
    index = np.unravel_index(int(np.argmax(surface)), surface.shape)
    value = float(surface[index])
    centre = (surface.shape[0] // 2, surface.shape[1] // 2)
    rolled = np.roll(surface, (centre[0] - index[0], centre[1] - index[1]), axis=(0, 1))
    labels, _ = ndimage.label(rolled >= 0.5 * value)
    rows, cols = np.indices(surface.shape)
    near = np.hypot(rows - centre[0], cols - centre[1]) <= radius
    outside = rolled[~((labels == labels[centre]) & near)]
    second = float(outside.max()) if outside.size else 0.0
    shift = tuple(int(i) - s if i > s // 2 else int(i) for i, s in zip(index, surface.shape, strict=True))
    return (shift[0], shift[1]), value, second


def register(reference: NDArray[np.complex128], moving: NDArray[np.complex128], region_shape: tuple[int, ...],
             upsample_factor: int) -> Registration:
    """The shift that puts `moving` onto `reference` (both filled outside the region and mean-free inside),
    or a skipped Registration saying why (module docstring)."""
    bound = max_shift(region_shape)
    found, value, second = _peak(correlation(reference, moving), bound)
    found_f = (float(found[0]), float(found[1]))
    if not value >= MIN_PEAK_CORRELATION:
        return Registration((0.0, 0.0), found_f, value, bound, False,
                            f"skipped: no clear correlation peak (peak {value:.3f} < {MIN_PEAK_CORRELATION})")
    if second * PEAK_CONTRAST > value:
        return Registration((0.0, 0.0), found_f, value, bound, False,
                            f"skipped: no clear correlation peak (peak {value:.3f}, another {second:.3f} "
                            f"outside its lobe; needs a factor {PEAK_CONTRAST})")
    if math.hypot(*found_f) > bound:
        return Registration((0.0, 0.0), found_f, value, bound, False,
                            f"skipped: the best shift ({found[0]}, {found[1]}) px exceeds the bound of "
                            f"{bound:.1f} px ({MAX_SHIFT_FRACTION:g} of the region's smaller side)")
    refined, _, _ = phase_cross_correlation(reference - reference.mean(), moving - moving.mean(),
                                            upsample_factor=upsample_factor, normalization=None)
    shift = (float(refined[0]), float(refined[1]))
    if math.hypot(shift[0] - found_f[0], shift[1] - found_f[1]) > 1.0:  # refinement found another peak
        shift = found_f
    return Registration(shift, found_f, value, bound, True,
                        f"applied: clear peak {value:.3f} (next outside its lobe {second:.3f}), within "
                        f"{bound:.1f} px")
