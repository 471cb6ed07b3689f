"""The study's figures (matplotlib, Agg through Figure objects; no pyplot state):

- ssim_vs_dose.png / frc_vs_dose.png: amplitude and phase SSIM (FRC resolution) against dose, one line per
  method (network per gridsize, baseline, constant object) and overlap (line style);
- recon_<dose>.png: per dose, truth / network per arm and gridsize / each baseline, amplitude and phase, one pair of
  rows per overlap, cropped to the scored region. Each reconstruction is shown as it was scored:
  metrics.align with the study's evaluation settings (amplitude scale fitted, global phase offset and, with
  remove_ramp, the linear phase ramp removed, shifted when register is on).
"""
from __future__ import annotations

import io
import textwrap
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

from ptycho_torch import metrics
from ptycho_torch.atomic_io import atomic_write_bytes
from ptycho_torch.memmap_bridge import MemmapDatasetBridge
from ptycho_torch.region import bounding_box
from ptycho_torch.study.config import (
    METHOD_LABELS,
    EvaluationSpec,
    StudyConfig,
    baseline_methods,
    conditions,
    dose_label,
    hybrid_methods,
    networks,
)
from ptycho_torch.study.table import Row

LINESTYLES = ("-", "--", ":", "-.")
MARKERS = ("o", "s", "^", "D", "v", "P")


def figure_names(config: StudyConfig) -> tuple[str, ...]:
    """The files write_figures writes into the figures folder, in the order the report shows them."""
    return ("ssim_vs_dose.png", "frc_vs_dose.png", *(f"recon_{dose_label(d)}.png" for d in config.doses))


def _save(fig: Figure, path: Path) -> None:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=100)
    atomic_write_bytes(path, buffer.getvalue())


def _series(rows: Sequence[Row]) -> list[tuple[str, int]]:
    """(method, gridsize) pairs in table order."""
    return list(dict.fromkeys((r.method, r.gridsize) for r in rows))


def plot_against_dose(rows: Sequence[Row], path: Path, scores: tuple[str, str], ylabel: str) -> None:
    """Two panels (amplitude, phase): score against dose (log axis), a line per method and overlap."""
    fig = Figure(figsize=(11, 4.4), layout="constrained")
    axes = fig.subplots(1, 2, sharex=True)
    overlaps = list(dict.fromkeys(r.overlap for r in rows))
    series = _series(rows)
    colours = {key: f"C{i}" for i, key in enumerate(k for k in series if k[0] != "constant")}
    for ax, score, title in zip(axes, scores, ("amplitude", "phase"), strict=True):
        for o_index, overlap in enumerate(overlaps):
            for s_index, (method, gridsize) in enumerate(series):
                points = sorted((r.dose, getattr(r, score)) for r in rows
                                if (r.method, r.gridsize, r.overlap) == (method, gridsize, overlap))
                label = next(r.label for r in rows if (r.method, r.gridsize) == (method, gridsize))
                ax.plot([p[0] for p in points], [p[1] for p in points],
                        linestyle=LINESTYLES[o_index % len(LINESTYLES)], marker=MARKERS[s_index % len(MARKERS)],
                        color=colours.get((method, gridsize), "0.5"), label=f"{label}, {overlap}")
        ax.set_xscale("log")
        ax.set_xlabel("dose (mean counts per pattern)")
        ax.set_ylabel(ylabel)
        ax.set_title(title)
        ax.grid(alpha=0.3)
    axes[1].legend(fontsize=7, loc="best")
    _save(fig, path)


def scored_crop(recon: np.ndarray, truth: np.ndarray, region: np.ndarray, evaluation: EvaluationSpec,
                box: tuple[slice, slice]) -> np.ndarray:
    """recon as metrics.evaluate scored it on region with these settings (metrics.align), cropped to box."""
    shown = metrics.align(recon, truth, mask=region, options=evaluation.align_options)
    return shown.in_frame(truth.shape)[box]


def plot_reconstructions(path: Path, title: str,
                         panels: Sequence[tuple[str, np.ndarray, list[tuple[str, np.ndarray]]]]) -> None:
    """panels: (overlap, truth crop, [(label, aligned recon crop), ...]); two image rows per overlap."""
    columns = 1 + max(len(p[2]) for p in panels)
    aspect = max(p[1].shape[1] / p[1].shape[0] for p in panels)  # width / height of the widest crop
    width = float(np.clip(2.6 * aspect, 1.2, 3.4))
    fig = Figure(figsize=(width * columns + 1.0, 2.6 * 2 * len(panels) + 0.5), layout="constrained")
    axes = np.atleast_2d(fig.subplots(2 * len(panels), columns, squeeze=False))
    for p_index, (overlap, truth, recons) in enumerate(panels):
        for q_index, (quantity, cmap, fn) in enumerate((("amplitude", "gray", np.abs),
                                                        ("phase (rad)", "twilight", np.angle))):
            row = axes[2 * p_index + q_index]
            shown_truth = np.where(np.isfinite(truth), fn(np.nan_to_num(truth)), np.nan)
            lo, hi = np.nanmin(shown_truth), np.nanmax(shown_truth)
            for c_index, (label, image) in enumerate([("truth", truth), *recons]):
                shown = np.where(np.isfinite(image), fn(np.nan_to_num(image)), np.nan)
                im = row[c_index].imshow(np.ma.masked_invalid(shown), cmap=cmap, vmin=lo, vmax=hi,
                                         interpolation="nearest")
                row[c_index].set_title(f"{textwrap.fill(label, 16)}\n{overlap}: {quantity}", fontsize=8)
                row[c_index].set_xticks([])
                row[c_index].set_yticks([])
            for ax in row[len(recons) + 1:]:
                ax.axis("off")
            fig.colorbar(im, ax=row[len(recons)], shrink=0.8)
    fig.suptitle(title)
    _save(fig, path)


def write_figures(config: StudyConfig, rows: Sequence[Row], root: Path, folder: Path) -> None:
    """figure_names(config) in folder, from the table rows and the run folders under root."""
    plot_against_dose(rows, folder / "ssim_vs_dose.png", ("amplitude_ssim", "phase_ssim"), "SSIM")
    plot_against_dose(rows, folder / "frc_vs_dose.png", ("amplitude_frc_cyc_per_px", "phase_frc_cyc_per_px"),
                      "FRC resolution (cycles/pixel)")
    methods = [(f"{METHOD_LABELS[net.method]} gs{net.gridsize}", net.folder) for net in networks(config)]
    methods += [(METHOD_LABELS.get(method, method), method)
                for method in [*baseline_methods(config), *hybrid_methods(config)]]
    for dose in config.doses:
        panels = []
        for c in (c for c in conditions(config) if c.dose == dose):
            truth = MemmapDatasetBridge(root / c.data_dir / "test.npz").objectGuess
            with np.load(root / c.data_dir / "region.npz", allow_pickle=False) as npz:
                region = npz["region"]
            box = bounding_box(region)
            recons = []
            for label, method in methods:
                with np.load(root / c.run_dir(method) / "recon.npz", allow_pickle=False) as npz:
                    recon = npz["object"]
                recons.append((label, scored_crop(recon, truth, region, config.evaluation, box)))
            panels.append((c.overlap_name, np.where(region, truth, np.nan)[box], recons))
        plot_reconstructions(folder / f"recon_{dose_label(dose)}.png",
                             f"test region, dose {dose_label(dose)} counts per pattern", panels)
