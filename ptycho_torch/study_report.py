"""The study's comparison stage: metrics.csv (one row per condition and method), comparison.md (jinja2) and
the figures (study_figures.py), all built from the files the earlier stages wrote.

Rows: for every (dose, overlap), one row per network gridsize (method "pinn"), one for the iterative
baseline (method "ml" or "epie", gridsize 0: it has none) and one for a constant object (method "constant",
the reference a reconstruction must beat). Timing columns that a method has no such stage for are 0.
"""
from __future__ import annotations

import csv
import datetime as dt
import hashlib
import io
import json
import math
import os
import platform
from dataclasses import astuple, dataclass, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ptycho_torch.atomic_io import atomic_write_bytes

if TYPE_CHECKING:
    from ptycho_torch.study import StudyConfig

TEMPLATE = Path(__file__).parent / "templates" / "comparison.md.j2"
CSV_NAME = "metrics.csv"
REPORT_NAME = "comparison.md"
FIGURES = "figures"
METHOD_LABELS = {"pinn": "PtychoPINN", "ml": "Poisson ML", "epie": "ePIE", "constant": "constant object"}


@dataclass(frozen=True)
class Row:
    """One line of metrics.csv. FRC in cycles/pixel (Nyquist 0.5; higher is finer); PSNR in dB with the
    truth's range on the region as peak; phase MAE in radians (circular). gridsize 0: not a network."""

    dose: float
    overlap: str
    overlap_fraction: float
    gridsize: int
    method: str
    amplitude_mae: float
    amplitude_psnr_db: float
    amplitude_ssim: float
    amplitude_frc_cyc_per_px: float
    phase_mae_rad: float
    phase_psnr_db: float
    phase_ssim: float
    phase_frc_cyc_per_px: float
    train_s: float
    recon_s: float
    infer_s: float
    patterns_per_s: float
    n_train: int
    n_test: int

    @property
    def label(self) -> str:
        name = METHOD_LABELS.get(self.method, self.method)
        return f"{name} gs{self.gridsize}" if self.gridsize else name


COLUMNS = tuple(f.name for f in fields(Row))
NUMERIC = tuple(f.name for f in fields(Row) if f.name not in ("overlap", "method"))


def template_sha256() -> str:
    return hashlib.sha256(TEMPLATE.read_bytes()).hexdigest()


def figure_names(config: StudyConfig) -> tuple[str, ...]:
    from ptycho_torch.study import dose_label

    return ("ssim_vs_dose.png", "frc_vs_dose.png",
            *(f"recon_{dose_label(d)}.png" for d in config.doses))


def outputs(config: StudyConfig) -> tuple[str, ...]:
    """Files the comparison stage writes, relative to the output folder."""
    return (CSV_NAME, REPORT_NAME, *(f"{FIGURES}/{name}" for name in figure_names(config)))


def _read_json(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text())


def _scores(report: dict[str, Any]) -> dict[str, float]:
    a, p = report["amplitude"], report["phase"]
    return {"amplitude_mae": a["mae"], "amplitude_psnr_db": a["psnr"], "amplitude_ssim": a["ssim"],
            "amplitude_frc_cyc_per_px": a["frc_resolution"], "phase_mae_rad": p["mae"],
            "phase_psnr_db": p["psnr"], "phase_ssim": p["ssim"], "phase_frc_cyc_per_px": p["frc_resolution"]}


def build_rows(config: StudyConfig, root: Path) -> list[Row]:
    """Rows in table order: dose, then overlap, then networks by gridsize, baseline, constant."""
    from ptycho_torch.study import CONSTANT, NETWORK, baseline_method, conditions, network_method

    rows: list[Row] = []
    baseline = baseline_method(config)
    for c in conditions(config):
        common = {"dose": c.dose, "overlap": c.overlap_name, "overlap_fraction": c.overlap}
        n_test = 0
        for g in config.gridsizes:
            run = root / c.run_dir(network_method(g))
            trained, inferred = _read_json(run / "train.json"), _read_json(run / "infer.json")
            n_test = int(inferred["n_patterns"])
            rows.append(Row(**common, gridsize=g, method=NETWORK, **_scores(_read_json(run / "metrics.json")),
                            train_s=trained["seconds"], recon_s=0.0, infer_s=inferred["seconds"],
                            patterns_per_s=inferred["patterns_per_s"], n_train=int(trained["n_patterns"]),
                            n_test=n_test))
        run = root / c.run_dir(baseline)
        fit = _read_json(run / "baseline.json")
        rows.append(Row(**common, gridsize=0, method=baseline, **_scores(_read_json(run / "metrics.json")),
                        train_s=0.0, recon_s=fit["seconds"], infer_s=0.0,
                        patterns_per_s=fit["n_patterns"] / fit["seconds"] if fit["seconds"] > 0 else 0.0,
                        n_train=0, n_test=int(fit["n_patterns"])))
        constant = _read_json(root / c.run_dir(CONSTANT) / "metrics.json")
        rows.append(Row(**common, gridsize=0, method=CONSTANT, **_scores(constant), train_s=0.0, recon_s=0.0,
                        infer_s=0.0, patterns_per_s=0.0, n_train=0, n_test=int(fit["n_patterns"])))
    return rows


def csv_text(rows: list[Row]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(COLUMNS)
    for row in rows:
        writer.writerow([f"{v:.6g}" if isinstance(v, float) else v for v in astuple(row)])
    return buffer.getvalue()


def read_csv(path: Path) -> list[Row]:
    """Rows back from metrics.csv (numbers as float/int), for checks and for plotting elsewhere."""
    with open(path, newline="") as handle:
        reader = csv.DictReader(handle)
        if tuple(reader.fieldnames or ()) != COLUMNS:
            raise ValueError(f"{path}: columns {reader.fieldnames} are not the study's {list(COLUMNS)}")
        kinds = {f.name: f.type for f in fields(Row)}
        return [Row(**{k: (int(v) if kinds[k] == "int" else float(v) if kinds[k] == "float" else v)
                       for k, v in line.items()}) for line in reader]


# ----------------------------------------------------------------------------------------------- markdown


@dataclass(frozen=True)
class Score:
    """One score of one (dose, overlap): the best network (over gridsizes), the baseline, the constant."""

    name: str
    network: float
    gridsize: int  # of the best network
    baseline: float
    constant: float

    @property
    def margin(self) -> float:
        return MARGINS["psnr" if "psnr" in self.name else "ssim"]

    @property
    def winner(self) -> str:
        """"neither" when no method beats the constant object by the margin (doing no better than a flat
        image wins nothing); else "tie" when the two are within the margin of each other; else the better."""
        best = max(self.network, self.baseline)
        if not best >= self.constant + self.margin:
            return "neither"
        if abs(self.network - self.baseline) < self.margin:
            return "tie"
        return "network" if self.network > self.baseline else "baseline"


@dataclass(frozen=True)
class HeadToHead:
    """The network against the baseline for one (dose, overlap)."""

    dose: float
    overlap: str
    scores: tuple[Score, ...]
    network_time_s: float  # inference of the test region by the network (the fastest gridsize)
    training_s: float  # training of the network (the fastest gridsize)
    baseline_time_s: float


HEAD_SCORES = ("amplitude_ssim", "phase_ssim", "amplitude_psnr_db", "phase_psnr_db")
MARGINS = {"ssim": 0.02, "psnr": 0.5}  # smaller differences are ties: below what one seed can tell apart


def head_to_head(rows: list[Row]) -> list[HeadToHead]:
    out = []
    for dose, overlap in dict.fromkeys((r.dose, r.overlap) for r in rows):
        group = [r for r in rows if (r.dose, r.overlap) == (dose, overlap)]
        nets = [r for r in group if r.gridsize > 0]
        base = next(r for r in group if r.gridsize == 0 and r.method != "constant")
        constant = next(r for r in group if r.method == "constant")
        scores = []
        for name in HEAD_SCORES:
            best = max(nets, key=lambda r, s=name: getattr(r, s))
            scores.append(Score(name, getattr(best, name), best.gridsize, getattr(base, name),
                                getattr(constant, name)))
        out.append(HeadToHead(dose, overlap, tuple(scores), min(r.infer_s for r in nets),
                              min(r.train_s for r in nets), base.recon_s))
    return out


def machine() -> dict[str, str]:
    import numpy as np
    import torch

    from ptycho_torch import __version__

    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "none"
    return {"platform": platform.platform(), "cpu": f"{cpu}, {os.cpu_count()} logical CPU(s)", "gpu": gpu,
            "python": platform.python_version(), "torch": torch.__version__, "numpy": np.__version__,
            "ptycho_torch": __version__}


def probe_spot_px(probe: np.ndarray) -> float:
    """Diameter (px) of the disc with the area of the probe's spot: |P|^2 >= 10% of its peak, holes filled."""
    from scipy.ndimage import binary_fill_holes

    power = np.abs(probe) ** 2
    spot = binary_fill_holes(power >= 0.1 * power.max())
    return float(2.0 * np.sqrt(spot.sum() / np.pi))


def _fmt(value: float, digits: int) -> str:
    return f"{value:.{digits}f}" if math.isfinite(value) else str(value)


def render_markdown(config: StudyConfig, rows: list[Row], root: Path, invocation: str) -> str:
    import jinja2

    from ptycho_torch.study import baseline_method, dose_label, scan_layout

    env = jinja2.Environment(loader=jinja2.FileSystemLoader(str(TEMPLATE.parent)),
                             undefined=jinja2.StrictUndefined, keep_trailing_newline=True, autoescape=False)
    env.filters["f"] = _fmt
    env.filters["dose"] = dose_label
    from ptycho_torch.memmap_bridge import MemmapDatasetBridge
    from ptycho_torch.study import conditions

    layouts = {name: scan_layout(config.data, f, config.seeds.data) for name, f in config.overlaps}
    spot = probe_spot_px(MemmapDatasetBridge(root / conditions(config)[0].data_dir / "test.npz").probeGuess)
    devices = sorted({_read_json(p)["device"] for p in root.glob("runs/*/*.json")
                      if p.name in ("train.json", "infer.json", "baseline.json")})
    return env.get_template(TEMPLATE.name).render(
        config=config, rows=rows, heads=head_to_head(rows), spot=spot, invocation=invocation, machine=machine(),
        devices=devices, layouts=layouts, baseline=METHOD_LABELS.get(baseline_method(config)),
        train=config.train, base=config.baseline, labels=METHOD_LABELS, figures=figure_names(config),
        margins=MARGINS, generated=dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"))


def write_comparison(config: StudyConfig, root: Path, invocation: str) -> None:
    """metrics.csv, comparison.md and the figures, from the run folders under root."""
    from ptycho_torch import study_figures

    rows = build_rows(config, root)
    atomic_write_bytes(root / CSV_NAME, csv_text(rows).encode())
    (root / FIGURES).mkdir(exist_ok=True)
    study_figures.write_figures(config, rows, root, root / FIGURES)
    atomic_write_bytes(root / REPORT_NAME, render_markdown(config, rows, root, invocation).encode())
