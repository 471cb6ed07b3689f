"""What metrics.evaluate returns: an Evaluation record, and the JSON layout it has in metrics.json (to_dict).

Units, for amplitude and phase alike (Scores): MAE in the quantity's unit (amplitude unitless; phase in
radians, as the circular distance), PSNR in dB (inf for a perfect match, NaN where the truth is constant on
the region), SSIM unitless, FRC resolution in cycles/pixel (Nyquist 0.5, higher is finer; None where the
curve never drops below 1/7 up to Nyquist, null in JSON). FRC curves are sampled at `frequencies`
(cycles/pixel, 0 .. 0.5). Registration shifts are (dy, dx) pixels applied to the reconstruction
(registration.py).

to_dict() gives exactly the layout metrics.json has always had, so files written before and after read alike:

    {"amplitude": {"mae", "psnr", "ssim", "frc_resolution"}, "phase": {...},
     "registration": {"shift", "applied", "reason", "found_shift", "peak_correlation", "max_shift_px"},
     "amplitude_scale", "notes": [...],
     "frc": {"unit", "threshold", "frequencies", "amplitude", "phase", "amplitude_reached", "phase_reached"}}
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ptycho_torch.frc import FRC_THRESHOLD, FRCResult
from ptycho_torch.registration import Registration


@dataclass(frozen=True)
class Scores:
    """One quantity (amplitude or phase) of a reconstruction against the truth, on the scored region."""

    mae: float
    psnr: float  # dB; inf for a perfect match, NaN where the truth is constant
    ssim: float
    frc_resolution: float | None  # cycles/pixel; None: the 1/7 threshold is not reached up to Nyquist

    def to_dict(self) -> dict[str, float | None]:
        return {"mae": self.mae, "psnr": self.psnr, "ssim": self.ssim, "frc_resolution": self.frc_resolution}


@dataclass(frozen=True)
class FRCCurves:
    """The amplitude and phase FRC curves at `frequencies` (cycles/pixel), and whether each reached 1/7."""

    frequencies: tuple[float, ...]
    amplitude: tuple[float, ...]
    phase: tuple[float, ...]
    amplitude_reached: bool
    phase_reached: bool

    @classmethod
    def of(cls, amplitude: FRCResult, phase: FRCResult) -> FRCCurves:
        return cls(frequencies=tuple(amplitude.frequencies.tolist()), amplitude=tuple(amplitude.curve.tolist()),
                   phase=tuple(phase.curve.tolist()), amplitude_reached=amplitude.crossed,
                   phase_reached=phase.crossed)

    def to_dict(self) -> dict[str, Any]:
        return {"unit": "cycles/pixel", "threshold": FRC_THRESHOLD, "frequencies": list(self.frequencies),
                "amplitude": list(self.amplitude), "phase": list(self.phase),
                "amplitude_reached": self.amplitude_reached, "phase_reached": self.phase_reached}


@dataclass(frozen=True)
class Evaluation:
    """A reconstruction scored against the truth (metrics.evaluate): amplitude and phase scores, what
    registration found and did, the fitted amplitude scale (1.0 when not fitted), one note per step taken
    (in order), and the FRC curves."""

    amplitude: Scores
    phase: Scores
    registration: Registration
    amplitude_scale: float
    notes: tuple[str, ...]
    frc: FRCCurves

    def to_dict(self) -> dict[str, Any]:
        """The metrics.json layout (module docstring)."""
        return {"amplitude": self.amplitude.to_dict(), "phase": self.phase.to_dict(),
                "registration": self.registration.as_dict(), "amplitude_scale": self.amplitude_scale,
                "notes": list(self.notes), "frc": self.frc.to_dict()}
