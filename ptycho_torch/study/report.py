"""The study's comparison stage: metrics.csv (table.py), the figures (figures.py) and comparison.md (the
jinja2 template in templates/), all built from the files the earlier stages wrote.

comparison.md names the machine, the versions, the exact command (paths as recorded by run.py: no
machine's directories) and the object and probe (a file by its name and SHA256).
"""
from __future__ import annotations

import datetime as dt
import hashlib
import math
import os
import platform
from pathlib import Path

import jinja2
import numpy as np
import torch
from scipy.ndimage import binary_fill_holes

from ptycho_torch import __version__
from ptycho_torch.atomic_io import atomic_write_bytes
from ptycho_torch.memmap_bridge import MemmapDatasetBridge
from ptycho_torch.study.config import METHOD_LABELS, StudyConfig, conditions, dose_label, plain
from ptycho_torch.study.figures import figure_names, write_figures
from ptycho_torch.study.split import scan_split
from ptycho_torch.study.table import (
    CSV_NAME,
    MARGINS,
    NOT_REACHED,
    SCORE_TITLES,
    Row,
    build_rows,
    csv_text,
    head_to_head,
    read_json,
    time_to_image,
)
from ptycho_torch.train.config import TrainConfig

TEMPLATE = Path(__file__).parent / "templates" / "comparison.md.j2"
REPORT_NAME = "comparison.md"
FIGURES = "figures"


def template_sha256() -> str:
    return hashlib.sha256(TEMPLATE.read_bytes()).hexdigest()


def outputs(config: StudyConfig) -> tuple[str, ...]:
    """Files the comparison stage writes, relative to the output folder."""
    return (CSV_NAME, REPORT_NAME, *(f"{FIGURES}/{name}" for name in figure_names(config)))


def machine() -> dict[str, str]:
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
    power = np.abs(probe) ** 2
    spot = binary_fill_holes(power >= 0.1 * power.max())
    return float(2.0 * np.sqrt(spot.sum() / np.pi))


def _fmt(value: float, digits: int) -> str:
    return f"{value:.{digits}f}" if math.isfinite(value) else str(value)


def _frc(value: float, digits: int) -> str:
    """An FRC resolution; NaN is one whose threshold was not reached (table.Row)."""
    return NOT_REACHED if math.isnan(value) else _fmt(value, digits)


def skipped_registrations(root: Path) -> tuple[int, list[tuple[str, str]]]:
    """(registrations tried, [(run folder, why it was skipped)]) over the runs' metrics.json files."""
    tried, skipped = 0, []
    for path in sorted((root / "runs").glob("*/metrics.json")):
        found = read_json(path).get("registration", {})
        if found.get("reason", "").startswith(("applied", "skipped")):
            tried += 1
            if not found.get("applied", False):
                skipped.append((path.parent.name, found["reason"]))
    return tried, skipped


def _length(train: TrainConfig) -> str:
    """One TrainConfig's length as the report states it: steps, epochs or a cap, the early stop, the weights."""
    if train.steps:
        length = f"{train.steps} optimizer steps"
    elif train.epochs is not None:
        length = f"{train.epochs} epochs"
    else:
        length = f"at most {train.max_steps} optimizer steps"
    if train.val_fraction > 0 and train.patience > 0:
        length += f", stopping early after {train.patience} steps without a new lowest validation loss"
    if train.val_fraction > 0 and train.keep_best:
        length += " (the weights of the lowest validation loss kept)"
    return length


def _gridsize_settings(config: StudyConfig, gridsize: int) -> str:
    """One gridsize's length, then its own settings (train_by_gridsize, less the length already said) and
    the network it starts from (continue_from)."""
    text = _length(config.train_for(gridsize))
    own = {k: plain(v) for k, v in config.train_by_gridsize.get(gridsize, {}).items()
           if k not in ("steps", "epochs", "max_steps", "patience", "keep_best")}
    if own:
        text += f" ({', '.join(f'{k} {v}' for k, v in own.items())})"
    if gridsize in config.continue_from:
        text += (f", starting from the weights of the gridsize-{config.continue_from[gridsize]} network of the "
                 "same dose, overlap and arm")
    return text


def training_length(config: StudyConfig) -> str:
    """How long the networks trained, and how where gridsizes differ: one phrase, or one per gridsize."""
    lengths = {g: _gridsize_settings(config, g) for g in config.gridsizes}
    if len(set(lengths.values())) == 1:
        return lengths[config.gridsizes[0]]
    return "; ".join(f"gridsize {g}: {text}" for g, text in lengths.items())


def train_runs(root: Path) -> list[dict[str, object]]:
    """Per trained network (run folder name): steps, restarts from the plateau, the step it escaped at, the
    share of the flat->best gap closed at the end (None where it was never measured), threads; from each
    run's train.json."""
    runs = []
    for path in sorted((root / "runs").glob("*/train.json")):
        found = read_json(path)
        run = {"run": path.parent.name, **{k: found.get(k) for k in (
            "steps", "restarts", "escaped_at_step", "final_gap_closed", "threads", "n_patterns", "seconds",
            "started_from", "start_seconds")}}
        if isinstance(run["final_gap_closed"], float) and math.isnan(run["final_gap_closed"]):
            run["final_gap_closed"] = None
        runs.append(run)
    return runs


def render_markdown(config: StudyConfig, rows: list[Row], root: Path, invocation: str) -> str:
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(str(TEMPLATE.parent)),
                             undefined=jinja2.StrictUndefined, keep_trailing_newline=True, autoescape=False)
    env.filters["f"] = _fmt
    env.filters["frc"] = _frc
    env.filters["dose"] = dose_label
    splits = {name: scan_split(config.data, f, config.seeds.data) for name, f in config.overlaps}
    spot = probe_spot_px(MemmapDatasetBridge(root / conditions(config)[0].data_dir / "test.npz").probeGuess)
    devices = sorted({read_json(p)["device"] for p in root.glob("runs/*/*.json")
                      if p.name in ("train.json", "infer.json", "baseline.json")})
    return env.get_template(TEMPLATE.name).render(
        config=config, rows=rows, heads=head_to_head(rows), spot=spot, invocation=invocation, machine=machine(),
        devices=devices, splits=splits, train=config.train, length=training_length(config),
        baselines=config.baselines, labels=METHOD_LABELS,
        figures=figure_names(config), time_to_image=time_to_image, train_runs=train_runs(root),
        titles=SCORE_TITLES,
        margins=MARGINS, registrations=skipped_registrations(root),
        generated=dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"))


def write_comparison(config: StudyConfig, root: Path, invocation: str) -> None:
    """metrics.csv, comparison.md and the figures, from the run folders under root."""
    rows = build_rows(config, root)
    atomic_write_bytes(root / CSV_NAME, csv_text(rows).encode())
    (root / FIGURES).mkdir(exist_ok=True)
    write_figures(config, rows, root, root / FIGURES)
    atomic_write_bytes(root / REPORT_NAME, render_markdown(config, rows, root, invocation).encode())
