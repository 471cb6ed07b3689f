"""What a run writes besides its checkpoint (rank 0): history.json, loss_curve.png, and the metadata stored
in the model bundle (versions, dataset, losses, device, threads, restarts).

history.json (format 2): {"format": 2, "threads", "load_average" (at the start), "flat_loss", "best_loss" (progress.py's references),
"steps" (optimizer steps of every attempt), "attempt", "attempt_steps", "escaped_at_step" (the final
attempt's step at which it left the plateau, null if it never did), "planned_steps", "patience", "keep_best",
"best_val_loss", "best_val_step" (the lowest validation loss of the final attempt and its step; null without
validation), "stopped_early", "restarts" (one RestartRecord each), "epochs" (one EpochRecord each)}.
"""
from __future__ import annotations

import datetime as dt
import io
import json
import math
import platform
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import safetensors
import torch

from ptycho_torch import __version__
from ptycho_torch.atomic_io import atomic_write_bytes
from ptycho_torch.device import DistContext, Precision
from ptycho_torch.memmap_bridge import MemmapDatasetBridge
from ptycho_torch.train.config import EpochRecord, RestartRecord, TrainConfig

HISTORY_NAME = "history.json"
HISTORY_FORMAT = 2
CURVE_NAME = "loss_curve.png"


@dataclass(frozen=True)
class RunSummary:
    """The run as a whole, beside its epochs: threads, reference losses, attempts."""

    threads: int
    load_average: float  # 1-minute load average when the run started (other work on the machine)
    flat_loss: float
    best_loss: float
    restarts: tuple[RestartRecord, ...]
    attempt: int
    steps: int
    attempt_steps: int
    escaped_at_step: int | None
    planned_steps: int = 0  # the final attempt's length if nothing stops it early
    patience: int = 0  # steps without a new lowest validation loss before stopping; 0 = never
    keep_best: bool = False  # the bundle holds the weights of best_val_step, not the last ones
    best_val_loss: float = math.nan  # the lowest validation loss of the final attempt (NaN: no validation)
    best_val_step: int | None = None  # the run's step at it
    stopped_early: bool = False

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["restarts"] = [asdict(r) for r in self.restarts]
        return data


def _finite_or_null(value: Any) -> Any:
    """`value` with every non-finite float (a loss that was not measured: NaN) replaced by None."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _finite_or_null(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite_or_null(v) for v in value]
    return value


def write_history(output_dir: Path, history: Sequence[EpochRecord], summary: RunSummary) -> None:
    document = {"format": HISTORY_FORMAT, **summary.to_dict(), "epochs": [asdict(r) for r in history]}
    text = json.dumps(_finite_or_null(document), indent=2, allow_nan=False)  # strict JSON: NaN -> null
    atomic_write_bytes(output_dir / HISTORY_NAME, text.encode())


def write_loss_curve(output_dir: Path, history: Sequence[EpochRecord], summary: RunSummary) -> None:
    """Train and validation loss against the step, the flat object's loss, and a line at every restart."""
    from matplotlib.figure import Figure  # no pyplot: no global backend state, Agg is used for PNG

    fig = Figure(figsize=(6, 3.8), layout="constrained")
    ax = fig.add_subplot()
    steps = [r.step for r in history]
    ax.plot(steps, [r.train_loss for r in history], "o-", ms=3, label="train")
    if any(math.isfinite(r.val_loss) for r in history):
        ax.plot(steps, [r.val_loss for r in history], "s--", ms=3, label="validation")
    if math.isfinite(summary.flat_loss):
        ax.axhline(summary.flat_loss, color="gray", lw=0.8, ls=":", label="flat object")
    for number, restart in enumerate(summary.restarts):
        ax.axvline(restart.at_step, color="red", lw=0.8, ls="--", label="restart" if number == 0 else None)
    ax.set_xlabel("optimizer step")
    ax.set_ylabel("loss (mean per pixel)")
    ax.legend()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=100)
    atomic_write_bytes(output_dir / CURVE_NAME, buffer.getvalue())


def versions() -> dict[str, str]:
    return {"ptycho_torch": __version__, "torch": torch.__version__, "numpy": np.__version__,
            "safetensors": safetensors.__version__, "python": platform.python_version()}


def bundle_metadata(config: TrainConfig, history: Sequence[EpochRecord], summary: RunSummary,
                    bridge: MemmapDatasetBridge, sha: str, scale: float, device: torch.device, precision: Precision,
                    ctx: DistContext, *, init_from: dict[str, str] | None = None) -> dict[str, Any]:
    """The bundle's metadata; init_from: the file name and SHA256 of the bundle whose network started the run
    (--init-from), None for fresh weights."""
    last = history[-1] if history else None
    return {
        "created_utc": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "versions": versions(),
        "seed": config.seed,
        "dataset": {"path": str(bridge.path), "sha256": sha, "n_patterns": len(bridge),
                    "nphotons_metadata": bridge.nphotons},
        "epochs": len(history),
        "steps": summary.steps,
        "final_train_loss": None if last is None else last.train_loss,
        "final_val_loss": None if last is None else last.val_loss,
        "final_gap_closed": None if last is None else last.gap_closed,
        "best_val_loss": summary.best_val_loss if math.isfinite(summary.best_val_loss) else None,
        "weights": "lowest validation loss" if summary.keep_best and summary.best_val_step is not None else "last",
        "run": summary.to_dict(),
        "intensity_scale": scale,
        "device": str(device),
        "precision": precision.value,
        "world_size": ctx.world_size,
        "train_config": asdict(config),
        "init_from": init_from,
        "complex_tensors": "stored as float32 (..., 2) real/imag views; see bundle.py",
    }
