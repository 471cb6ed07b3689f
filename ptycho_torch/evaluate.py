"""`ptycho-torch evaluate`: score a reconstruction against the ground truth, beside a constant object.

Inputs: --recon, an .npz holding one complex 2-D array (`object` if present, else the only complex 2-D
array; an optional bool `coverage` of the same shape narrows the region) or an .npy of one; --truth, an
.npz with `objectGuess` (a dataset written by `ptycho-torch simulate`) or an .npy. Both in one pixel frame.

Writes metrics.json (Report.to_dict(): the layout of `ptycho_torch.metrics.evaluate`'s record, scores.py:
{"amplitude": {"mae", "psnr", "ssim", "frc_resolution"}, "phase": {...}, "registration", "amplitude_scale",
"notes", "frc"}, plus "baseline": the same scores for a constant object on the same region, and "inputs")
and comparison.png (truth and reconstruction, amplitude and phase, as scored: metrics.align with the same
options, cropped to the scored region). JSON is written with allow_nan, so an infinite PSNR reads `Infinity`; an FRC resolution that was not
reached is null. Prints both sets of scores side by side ("not reached" for such an FRC) and whether
registration was applied or skipped, and why.
"""
from __future__ import annotations

import io
import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ptycho_torch import metrics
from ptycho_torch.atomic_io import atomic_write_bytes
from ptycho_torch.errors import EvaluateError
from ptycho_torch.metrics import AlignOptions
from ptycho_torch.recon_file import load_recon, read_arrays
from ptycho_torch.scores import Evaluation

METRICS_NAME = "metrics.json"
FIGURE_NAME = "comparison.png"
QUANTITIES = ("amplitude", "phase")
SCORES = ("mae", "psnr", "ssim", "frc_resolution")
BASELINE_WHAT = "constant object (the truth's mean amplitude and phase) on the same region"
DEFAULT_OPTIONS = AlignOptions()  # every correction on, as without --no-* flags


@dataclass(frozen=True)
class Report:
    """A reconstruction file scored against a truth file: its Evaluation, a constant object's on the same
    region (the reference), and the inputs (paths, covered pixels, the options used)."""

    scores: Evaluation
    baseline: Evaluation
    recon: str
    truth: str
    covered_pixels: int
    options: AlignOptions

    def to_dict(self) -> dict[str, Any]:
        """metrics.json: the scores' layout (scores.py) + "baseline" + "inputs"."""
        baseline = self.baseline
        return {**self.scores.to_dict(),
                "baseline": {"what": BASELINE_WHAT, "amplitude": baseline.amplitude.to_dict(),
                             "phase": baseline.phase.to_dict(), "amplitude_scale": baseline.amplitude_scale},
                "inputs": {"recon": self.recon, "truth": self.truth, "covered_pixels": self.covered_pixels,
                           "fit_scale": self.options.fit_scale, "remove_ramp": self.options.remove_ramp,
                           "register": self.options.register}}


def load_truth(path: str | Path) -> np.ndarray:
    """The truth (H, W) complex: `objectGuess` of an .npz dataset, or an .npy array."""
    loaded = read_arrays(path, "--truth")
    if isinstance(loaded, np.ndarray):
        truth = loaded
    elif "objectGuess" in loaded:
        truth = loaded["objectGuess"]
    else:
        raise EvaluateError(f"--truth {path}: no 'objectGuess' array (keys: {sorted(loaded)}); pass the "
                            "dataset written by `ptycho-torch simulate` or an .npy of the true object")
    if truth.ndim != 2 or not np.issubdtype(truth.dtype, np.number):
        raise EvaluateError(f"--truth {path}: expected a numeric 2-D object, got {truth.dtype} {truth.shape}")
    return truth


def evaluate_files(recon: str | Path, truth: str | Path, *,
                   options: AlignOptions = DEFAULT_OPTIONS) -> tuple[Report, np.ndarray, np.ndarray]:
    """(report, recon object (NaN outside the scored region), truth)."""
    obj, coverage = load_recon(recon)
    truth_arr = load_truth(truth)
    if obj.shape != truth_arr.shape:
        raise EvaluateError(f"--recon {recon} is {obj.shape} but --truth {truth} is {truth_arr.shape}; "
                            "the reconstruction must be stitched in the truth's pixel frame (same shape)")
    region = np.isfinite(obj) if coverage is None else coverage & np.isfinite(obj)
    try:
        scores = metrics.evaluate(obj, truth_arr, mask=region, options=options)
        baseline = metrics.constant_baseline(truth_arr, region, options=options)
    except metrics.MetricsError as exc:
        raise EvaluateError(f"cannot evaluate {recon} against {truth}: {exc}") from None
    report = Report(scores=scores, baseline=baseline, recon=str(recon), truth=str(truth),
                    covered_pixels=int(region.sum()), options=options)
    return report, np.where(region, obj, np.nan), truth_arr


def format_table(report: Report) -> str:
    """Reconstruction and constant-object scores side by side."""
    lines = [f"{'':34}{'recon':>12}{'constant':>12}"]
    for quantity in QUANTITIES:
        mine, base = getattr(report.scores, quantity).to_dict(), getattr(report.baseline, quantity).to_dict()
        for score in SCORES:
            unit = " (cyc/px)" if score == "frc_resolution" else ""
            lines.append(f"{quantity + ' ' + score + unit:34}{_cell(mine[score]):>12}{_cell(base[score]):>12}")
    return "\n".join(lines)


def _cell(value: float | None) -> str:
    """A score as printed; None is an FRC whose threshold was not reached."""
    return "not reached" if value is None else f"{value:.4g}"


def scored_images(obj: np.ndarray, truth: np.ndarray, report: Report) -> metrics.Alignment:
    """obj and truth as metrics.evaluate scored them with the report's options: obj NaN outside the scored
    region, as evaluate_files returns it."""
    return metrics.align(obj, truth, options=report.options)


def comparison_figure(path: Path, obj: np.ndarray, truth: np.ndarray, report: Report) -> None:
    """2x2 PNG: truth / reconstruction amplitude and phase as scored (scored_images: fitted scale, phase ramp
    and offset removed, registration shift applied), cropped to the scored region."""
    from matplotlib.figure import Figure

    shown = scored_images(obj, truth, report)
    fig = Figure(figsize=(9, 8), layout="constrained")
    axes = fig.subplots(2, 2)
    panels = [
        (np.abs(shown.truth), np.abs(shown.recon), "amplitude", "gray"),
        (np.angle(shown.truth), np.angle(shown.recon), "phase (rad)", "twilight"),
    ]
    for row, (truth_img, recon_img, label, cmap) in enumerate(panels):
        lo, hi = np.nanmin(truth_img), np.nanmax(truth_img)
        for col, (image, who) in enumerate(((truth_img, "truth"), (recon_img, "reconstruction"))):
            ax = axes[row, col]
            im = ax.imshow(np.ma.masked_invalid(image), cmap=cmap, vmin=lo, vmax=hi, interpolation="nearest")
            ssim = getattr(report.scores, label.split()[0]).ssim
            ax.set_title(f"{who}: {label}" + ("" if who == "truth" else f"  (SSIM {ssim:.3f})"))
            fig.colorbar(im, ax=ax, shrink=0.8)
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=90)
    atomic_write_bytes(path, buffer.getvalue())


def evaluate_command(*, recon: str, truth: str, output_dir: str | None = None, fit_scale: bool = True,
                     remove_ramp: bool = True, register: bool = True) -> int:
    """`ptycho-torch evaluate`: metrics.json + comparison.png in output_dir (default: the recon's folder)."""
    options = AlignOptions(fit_scale=fit_scale, remove_ramp=remove_ramp, register=register)
    report, obj, truth_arr = evaluate_files(recon, truth, options=options)
    out = Path(recon).parent if output_dir is None else Path(output_dir)
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(out / METRICS_NAME, json.dumps(report.to_dict(), indent=2, allow_nan=True).encode())
    comparison_figure(out / FIGURE_NAME, obj, truth_arr, report)
    print(format_table(report))
    scores = report.scores
    print(f"registration {scores.registration.reason}" if register else "registration not asked (--no-register)")
    if not math.isclose(scores.amplitude_scale, 1.0):
        print(f"amplitude scale fitted: {scores.amplitude_scale:.4g} (object amplitude and probe power are not "
              "separable)")
    print(f"wrote {out / METRICS_NAME} and {out / FIGURE_NAME}")
    return 0
