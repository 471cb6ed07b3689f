"""`ptycho-torch evaluate`: score a reconstruction against the ground truth, beside a constant object.

Inputs: --recon, an .npz holding one complex 2-D array (`object` if present, else the only complex 2-D
array; an optional bool `coverage` of the same shape narrows the region) or an .npy of one; --truth, an
.npz with `objectGuess` (a dataset written by `ptycho-torch simulate`) or an .npy. Both in one pixel frame.

Writes metrics.json (the dict of `ptycho_torch.metrics.evaluate`: {"amplitude": {"mae", "psnr", "ssim",
"frc_resolution"}, "phase": {...}, "registration", "amplitude_scale", "notes", "frc"}, plus "baseline":
the same metrics for a constant object on the same region, and "inputs") and comparison.png (truth and
reconstruction, amplitude and phase, as scored: metrics.align with the same settings, cropped to the scored
region). JSON is written with allow_nan, so an infinite PSNR reads `Infinity`; an FRC resolution that was not
reached is null. Prints both sets of scores side by side ("not reached" for such an FRC) and whether
registration was applied or skipped, and why.
"""
from __future__ import annotations

import io
import json
import math
from pathlib import Path
from typing import Any

import numpy as np

from ptycho_torch import metrics
from ptycho_torch.atomic_io import atomic_write_bytes
from ptycho_torch.errors import EvaluateError
from ptycho_torch.recon_file import load_recon, read_arrays

METRICS_NAME = "metrics.json"
FIGURE_NAME = "comparison.png"
QUANTITIES = ("amplitude", "phase")
SCORES = ("mae", "psnr", "ssim", "frc_resolution")


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


def evaluate_files(recon: str | Path, truth: str | Path, *, fit_scale: bool = True, remove_ramp: bool = True,
                   register: bool = True) -> tuple[dict[str, Any], np.ndarray, np.ndarray]:
    """(report, recon object (NaN outside the scored region), truth): report = metrics.evaluate(...) +
    "baseline" + "inputs"."""
    obj, coverage = load_recon(recon)
    truth_arr = load_truth(truth)
    if obj.shape != truth_arr.shape:
        raise EvaluateError(f"--recon {recon} is {obj.shape} but --truth {truth} is {truth_arr.shape}; "
                            "the reconstruction must be stitched in the truth's pixel frame (same shape)")
    region = np.isfinite(obj) if coverage is None else coverage & np.isfinite(obj)
    try:
        report = metrics.evaluate(obj, truth_arr, mask=region, fit_scale=fit_scale, remove_ramp=remove_ramp,
                                  register=register)
        baseline = metrics.constant_baseline(truth_arr, region, fit_scale=fit_scale, remove_ramp=remove_ramp)
    except metrics.MetricsError as exc:
        raise EvaluateError(f"cannot evaluate {recon} against {truth}: {exc}") from None
    report["baseline"] = {"what": "constant object (the truth's mean amplitude and phase) on the same region",
                          **{q: baseline[q] for q in QUANTITIES},
                          "amplitude_scale": baseline["amplitude_scale"]}
    report["inputs"] = {"recon": str(recon), "truth": str(truth), "covered_pixels": int(region.sum()),
                        "fit_scale": fit_scale, "remove_ramp": remove_ramp, "register": register}
    return report, np.where(region, obj, np.nan), truth_arr


def format_table(report: dict[str, Any]) -> str:
    """Reconstruction and constant-object scores side by side."""
    lines = [f"{'':34}{'recon':>12}{'constant':>12}"]
    for quantity in QUANTITIES:
        for score in SCORES:
            unit = " (cyc/px)" if score == "frc_resolution" else ""
            mine, base = report[quantity][score], report["baseline"][quantity][score]
            lines.append(f"{quantity + ' ' + score + unit:34}{_cell(mine):>12}{_cell(base):>12}")
    return "\n".join(lines)


def _cell(value: float | None) -> str:
    """A score as printed; None is an FRC whose threshold was not reached."""
    return "not reached" if value is None else f"{value:.4g}"


def scored_images(obj: np.ndarray, truth: np.ndarray, report: dict[str, Any]) -> metrics.Alignment:
    """obj and truth as metrics.evaluate scored them with the report's settings (report["inputs"]): obj NaN
    outside the scored region, as evaluate_files returns it."""
    inputs = report.get("inputs", {})
    return metrics.align(obj, truth, fit_scale=inputs.get("fit_scale", True),
                         remove_ramp=inputs.get("remove_ramp", True), register=inputs.get("register", True))


def comparison_figure(path: Path, obj: np.ndarray, truth: np.ndarray, report: dict[str, Any]) -> None:
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
            ssim = report[label.split()[0]]["ssim"]
            ax.set_title(f"{who}: {label}" + ("" if who == "truth" else f"  (SSIM {ssim:.3f})"))
            fig.colorbar(im, ax=ax, shrink=0.8)
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=90)
    atomic_write_bytes(path, buffer.getvalue())


def evaluate_command(*, recon: str, truth: str, output_dir: str | None = None, fit_scale: bool = True,
                     remove_ramp: bool = True, register: bool = True) -> int:
    """`ptycho-torch evaluate`: metrics.json + comparison.png in output_dir (default: the recon's folder)."""
    report, obj, truth_arr = evaluate_files(recon, truth, fit_scale=fit_scale, remove_ramp=remove_ramp,
                                            register=register)
    out = Path(recon).parent if output_dir is None else Path(output_dir)
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(out / METRICS_NAME, json.dumps(report, indent=2, allow_nan=True).encode())
    comparison_figure(out / FIGURE_NAME, obj, truth_arr, report)
    print(format_table(report))
    registration = report["registration"]
    print(f"registration {registration['reason']}" if register else "registration not asked (--no-register)")
    amplitude_scale = report["amplitude_scale"]
    if not math.isclose(amplitude_scale, 1.0):
        print(f"amplitude scale fitted: {amplitude_scale:.4g} (object amplitude and probe power are not "
              "separable)")
    print(f"wrote {out / METRICS_NAME} and {out / FIGURE_NAME}")
    return 0
