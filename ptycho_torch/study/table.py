"""The study's table: one Row per condition and method (metrics.csv), and the head-to-head summary of the
networks against the iterative baselines, built from the files the earlier stages wrote.

Rows: for every (dose, overlap), one row per network (method "pinn": trained on the train region, arm
unseen; "pinn_self": trained on the test data itself, arm self) and gridsize, one per iterative baseline
(method "ml", "epie" or "ptychi-lsqml", gridsize 0: it has none), one for the hybrid arm when the config has
one (network + ML, method e.g. "pinn_self_ml", gridsize 0; its time is its iterations only, the network's is
in that network's row) and one for a constant object (method
"constant", the reference a reconstruction must beat). Timing columns that a method has no such stage for
are 0.
"""
from __future__ import annotations

import csv
import io
import json
import math
from dataclasses import astuple, dataclass, fields
from pathlib import Path
from typing import Any

from ptycho_torch.study.config import (
    CONSTANT,
    METHOD_LABELS,
    NETWORK_SELF,
    StudyConfig,
    baseline_methods,
    conditions,
    hybrid_methods,
    networks,
)

CSV_NAME = "metrics.csv"


@dataclass(frozen=True)
class Row:
    """One line of metrics.csv. FRC in cycles/pixel (Nyquist 0.5; higher is finer), NaN where the FRC never
    dropped below 1/7 up to Nyquist, written "not reached" in the CSV (metrics.evaluate's None); PSNR in dB
    with the truth's range on the region as peak; phase MAE in radians (circular). gridsize 0: not a
    network."""

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
    def method_label(self) -> str:
        """The method as tables and head-to-heads name it (a network arm, whatever its gridsize)."""
        return METHOD_LABELS.get(self.method, self.method)

    @property
    def label(self) -> str:
        return f"{self.method_label} gs{self.gridsize}" if self.gridsize else self.method_label


COLUMNS = tuple(f.name for f in fields(Row))
FRC_COLUMNS = ("amplitude_frc_cyc_per_px", "phase_frc_cyc_per_px")
NOT_REACHED = "not reached"  # an FRC that never dropped below its threshold: no resolution to report


def read_json(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text())


def _frc(value: float | None) -> float:
    return math.nan if value is None else float(value)


def _scores(report: dict[str, Any]) -> dict[str, float]:
    a, p = report["amplitude"], report["phase"]
    return {"amplitude_mae": a["mae"], "amplitude_psnr_db": a["psnr"], "amplitude_ssim": a["ssim"],
            "amplitude_frc_cyc_per_px": _frc(a["frc_resolution"]), "phase_mae_rad": p["mae"],
            "phase_psnr_db": p["psnr"], "phase_ssim": p["ssim"],
            "phase_frc_cyc_per_px": _frc(p["frc_resolution"])}


def training_behind(trained: dict[str, Any]) -> float:
    """The wall seconds of training behind a network (its train.json): its own, plus those of the network it
    started from (continue_from; train.json's start_seconds)."""
    return float(trained["seconds"]) + float(trained.get("start_seconds") or 0.0)


def build_rows(config: StudyConfig, root: Path) -> list[Row]:
    """Rows in table order: dose, then overlap, then networks (by arm, then gridsize), baselines, constant."""
    rows: list[Row] = []
    for c in conditions(config):
        common = {"dose": c.dose, "overlap": c.overlap_name, "overlap_fraction": c.overlap}
        n_test = 0
        for net in networks(config):
            run = root / c.run_dir(net.folder)
            trained, inferred = read_json(run / "train.json"), read_json(run / "infer.json")
            n_test = int(inferred["n_patterns"])
            rows.append(Row(**common, gridsize=net.gridsize, method=net.method,
                            **_scores(read_json(run / "metrics.json")), train_s=training_behind(trained), recon_s=0.0,
                            infer_s=inferred["seconds"], patterns_per_s=inferred["patterns_per_s"],
                            n_train=int(trained["n_patterns"]), n_test=n_test))
        for method in [*baseline_methods(config), *hybrid_methods(config)]:
            run = root / c.run_dir(method)
            fit = read_json(run / "baseline.json")
            n_test = int(fit["n_patterns"])
            rows.append(Row(**common, gridsize=0, method=method, **_scores(read_json(run / "metrics.json")),
                            train_s=0.0, recon_s=fit["seconds"], infer_s=0.0,
                            patterns_per_s=n_test / fit["seconds"] if fit["seconds"] > 0 else 0.0,
                            n_train=0, n_test=n_test))
        constant = read_json(root / c.run_dir(CONSTANT) / "metrics.json")
        rows.append(Row(**common, gridsize=0, method=CONSTANT, **_scores(constant), train_s=0.0, recon_s=0.0,
                        infer_s=0.0, patterns_per_s=0.0, n_train=0, n_test=n_test))
    return rows


def csv_text(rows: list[Row]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(COLUMNS)
    for row in rows:
        writer.writerow([_cell(name, v) for name, v in zip(COLUMNS, astuple(row), strict=True)])
    return buffer.getvalue()


def _cell(column: str, value: object) -> object:
    if column in FRC_COLUMNS and isinstance(value, float) and math.isnan(value):
        return NOT_REACHED
    return f"{value:.6g}" if isinstance(value, float) else value


def _number(column: str, text: str) -> float:
    return math.nan if column in FRC_COLUMNS and text == NOT_REACHED else float(text)


def read_csv(path: Path) -> list[Row]:
    """Rows back from metrics.csv (numbers as float/int), for checks and for plotting elsewhere."""
    with open(path, newline="") as handle:
        reader = csv.DictReader(handle)
        if tuple(reader.fieldnames or ()) != COLUMNS:
            raise ValueError(f"{path}: columns {reader.fieldnames} are not the study's {list(COLUMNS)}")
        kinds = {f.name: f.type for f in fields(Row)}
        return [Row(**{k: (int(v) if kinds[k] == "int" else _number(k, v) if kinds[k] == "float" else v)
                       for k, v in line.items()}) for line in reader]


def time_to_image(row: Row) -> float:
    """Wall seconds from the test data to its image: a baseline's iterations; the self-trained network's
    training and inference (it must learn these data first); the unseen network's inference only (it was
    trained once, elsewhere: its training is in train_s)."""
    return row.recon_s + row.infer_s + (row.train_s if row.method == NETWORK_SELF else 0.0)


@dataclass(frozen=True)
class Score:
    """One score of one (dose, overlap) for each contender (label, value): the best network of each arm
    (over gridsizes) and each baseline; and the constant object's."""

    name: str
    entries: tuple[tuple[str, float], ...]
    constant: float

    @property
    def margin(self) -> float:
        return MARGINS["psnr" if "psnr" in self.name else "ssim"]

    @property
    def winner(self) -> str:
        """"neither" when no contender beats the constant object by the margin (doing no better than a flat
        image wins nothing); else "tie" when the best two are within the margin of each other; else the
        best contender's label."""
        ranked = sorted(self.entries, key=lambda e: e[1], reverse=True)
        if not ranked[0][1] >= self.constant + self.margin:
            return "neither"
        if len(ranked) > 1 and ranked[0][1] - ranked[1][1] < self.margin:
            return "tie"
        return ranked[0][0]

    @property
    def leaders(self) -> tuple[str, ...]:
        """The contenders within the margin of the best (one when there is a clear winner)."""
        best = max(v for _, v in self.entries)
        return tuple(label for label, v in self.entries if best - v < self.margin)


@dataclass(frozen=True)
class HeadToHead:
    """Every contender of one (dose, overlap): its row (the best gridsize of a network arm, for the score
    in scores) and the scores."""

    dose: float
    overlap: str
    contenders: tuple[Row, ...]  # per contender, the row with the best amplitude SSIM
    scores: tuple[Score, ...]


HEAD_SCORES = ("amplitude_ssim", "phase_ssim", "amplitude_psnr_db", "phase_psnr_db")
SCORE_TITLES = {"amplitude_ssim": "Amplitude SSIM", "phase_ssim": "Phase SSIM",
                "amplitude_psnr_db": "Amplitude PSNR (dB)", "phase_psnr_db": "Phase PSNR (dB)"}
MARGINS = {"ssim": 0.02, "psnr": 0.5}  # smaller differences are ties: below what one seed can tell apart


def head_to_head(rows: list[Row]) -> list[HeadToHead]:
    out = []
    for dose, overlap in dict.fromkeys((r.dose, r.overlap) for r in rows):
        group = [r for r in rows if (r.dose, r.overlap) == (dose, overlap)]
        constant = next(r for r in group if r.method == CONSTANT)
        methods = list(dict.fromkeys(r.method for r in group if r.method != CONSTANT))
        scores = []
        for name in HEAD_SCORES:
            entries = []
            for method in methods:
                best = max((r for r in group if r.method == method), key=lambda r, s=name: getattr(r, s))
                entries.append((best.method_label, float(getattr(best, name))))
            scores.append(Score(name, tuple(entries), getattr(constant, name)))
        picks = tuple(max((r for r in group if r.method == m), key=lambda r: r.amplitude_ssim) for m in methods)
        out.append(HeadToHead(dose, overlap, picks, tuple(scores)))
    return out
