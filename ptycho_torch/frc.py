"""Fourier ring correlation of two images, and the resolution where it first drops below a threshold.

Rings are 1/min(H, W) cycles/pixel wide, from 0 (DC) to the Nyquist limit 0.5; means are removed and edges
apodized (Tukey, 0.5). The resolution is the spatial frequency, in cycles/pixel, where the curve first drops
below the threshold (1/7 by default), interpolated between rings; the resolved period is 1 / resolution
pixels. A curve that never drops below up to Nyquist has not reached the threshold: its resolution is None,
never a made-up Nyquist value, since the data cannot tell how much finer it would go.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy.signal.windows import tukey

from ptycho_torch.errors import MetricsError

FRC_THRESHOLD = 1.0 / 7.0
NYQUIST = 0.5  # cycles/pixel


@dataclass(frozen=True)
class FRCResult:
    """Fourier ring correlation: curve (K,) at frequencies (K,) in cycles/pixel, 0 (DC) .. Nyquist."""

    frequencies: NDArray[np.float64]
    curve: NDArray[np.float64]
    resolution: float | None  # cycles/pixel where the curve first drops below the threshold; None: not reached
    crossed: bool  # False: never dropped below up to Nyquist (the threshold is not reached)
    threshold: float = FRC_THRESHOLD

    @property
    def period_px(self) -> float | None:
        """Smallest resolved period in pixels, 1 / resolution; None when the threshold is not reached."""
        return None if self.resolution is None else 1.0 / self.resolution


def frc(
    image_a: ArrayLike, image_b: ArrayLike, *, threshold: float = FRC_THRESHOLD, apodize: bool = True
) -> FRCResult:
    """FRC of two same-shape 2-D images (real or complex). Means are removed; edges apodized (Tukey 0.5)."""
    a, b = np.asarray(image_a), np.asarray(image_b)
    if a.ndim != 2 or a.shape != b.shape:
        raise MetricsError(f"FRC needs two 2-D images of one shape, got {a.shape} and {b.shape}")
    height, width = a.shape
    a = a - a.mean()
    b = b - b.mean()
    if apodize:
        window = np.outer(tukey(height, 0.5), tukey(width, 0.5))
        a, b = a * window, b * window
    fa, fb = np.fft.fft2(a), np.fft.fft2(b)
    step = 1.0 / min(height, width)
    radius = np.hypot(np.fft.fftfreq(height)[:, None], np.fft.fftfreq(width)[None, :])
    rings = np.rint(radius / step).astype(np.int64).ravel()
    count = math.floor(NYQUIST / step + 1e-9) + 1
    keep = rings < count
    rings = rings[keep]
    cross = np.bincount(rings, (fa * np.conj(fb)).real.ravel()[keep], minlength=count)
    power_a = np.bincount(rings, np.abs(fa).ravel()[keep] ** 2, minlength=count)
    power_b = np.bincount(rings, np.abs(fb).ravel()[keep] ** 2, minlength=count)
    denominator = np.sqrt(power_a * power_b)
    curve = np.divide(cross, denominator, out=np.zeros(count), where=denominator > 0)
    frequencies = np.arange(count) * step
    below = np.flatnonzero(curve[1:] < threshold) + 1
    if below.size == 0:
        return FRCResult(frequencies, curve, None, crossed=False, threshold=threshold)
    k = int(below[0])
    if k == 1:  # DC carries no information after mean removal; nothing to interpolate from
        return FRCResult(frequencies, curve, float(frequencies[1]), crossed=True, threshold=threshold)
    fraction = (curve[k - 1] - threshold) / (curve[k - 1] - curve[k])
    return FRCResult(
        frequencies, curve, float(frequencies[k - 1] + fraction * step), crossed=True, threshold=threshold
    )
