"""What a run writes besides its checkpoint (rank 0): history.json (one EpochRecord per epoch),
loss_curve.png, and the metadata stored in the model bundle (versions, dataset, losses, device)."""
from __future__ import annotations

import datetime as dt
import io
import json
import math
import platform
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
import safetensors
import torch

from ptycho_torch import __version__
from ptycho_torch.atomic_io import atomic_write_bytes
from ptycho_torch.device import DistContext, Precision
from ptycho_torch.memmap_bridge import MemmapDatasetBridge
from ptycho_torch.train.config import EpochRecord, TrainConfig

HISTORY_NAME = "history.json"
CURVE_NAME = "loss_curve.png"


def write_history(output_dir: Path, history: Sequence[EpochRecord]) -> None:
    text = json.dumps([asdict(r) for r in history], indent=2)  # NaN -> NaN literal, read back by json
    atomic_write_bytes(output_dir / HISTORY_NAME, text.encode())


def write_loss_curve(output_dir: Path, history: Sequence[EpochRecord]) -> None:
    from matplotlib.figure import Figure  # no pyplot: no global backend state, Agg is used for PNG

    fig = Figure(figsize=(5, 3.5), layout="constrained")
    ax = fig.add_subplot()
    epochs = [r.epoch for r in history]
    ax.plot(epochs, [r.train_loss for r in history], "o-", label="train")
    if any(math.isfinite(r.val_loss) for r in history):
        ax.plot(epochs, [r.val_loss for r in history], "s--", label="validation")
    ax.set_xlabel("epoch")
    ax.set_ylabel("loss (mean per pixel)")
    ax.legend()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=100)
    atomic_write_bytes(output_dir / CURVE_NAME, buffer.getvalue())


def versions() -> dict[str, str]:
    return {"ptycho_torch": __version__, "torch": torch.__version__, "numpy": np.__version__,
            "safetensors": safetensors.__version__, "python": platform.python_version()}


def bundle_metadata(config: TrainConfig, history: Sequence[EpochRecord], bridge: MemmapDatasetBridge, sha: str,
                    scale: float, device: torch.device, precision: Precision, ctx: DistContext) -> dict[str, Any]:
    last = history[-1] if history else None
    return {
        "created_utc": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "versions": versions(),
        "seed": config.seed,
        "dataset": {"path": str(bridge.path), "sha256": sha, "n_patterns": len(bridge),
                    "nphotons_metadata": bridge.nphotons},
        "epochs": len(history),
        "final_train_loss": None if last is None else last.train_loss,
        "final_val_loss": None if last is None else last.val_loss,
        "intensity_scale": scale,
        "device": str(device),
        "precision": precision.value,
        "world_size": ctx.world_size,
        "train_config": asdict(config),
        "complex_tensors": "stored as float32 (..., 2) real/imag views; see bundle.py",
    }
