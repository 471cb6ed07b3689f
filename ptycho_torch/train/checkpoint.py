"""checkpoint.pt: everything a resume restores (model, optimizer, scaler, RNG states, where the run stands:
epoch, batches of it done, steps, attempt, restarts, the plateau watch; history, config, the data's SHA256),
written atomically by rank 0 at the end of every epoch and at the end of the run (which may fall inside an
epoch: a resume then continues that epoch with the batches not yet run).

A checkpoint holds tensors and plain containers only (torch.save), so it loads with weights_only=True: no
pickled objects are ever executed. A resume continues the same run or refuses: other data, or other settings
than those of TrainConfig.run_identity(), is an error that says what differs.
"""
from __future__ import annotations

import io
import pickle  # only for its error type: torch.load(weights_only=True) raises pickle.UnpicklingError
import random
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ptycho_torch.atomic_io import atomic_write_bytes
from ptycho_torch.errors import TrainError
from ptycho_torch.train.config import TrainConfig

CHECKPOINT_NAME = "checkpoint.pt"
CHECKPOINT_FORMAT = 3  # 3: held-out split by region, windows-and-moving-beam physics, best weights


def rng_state() -> dict[str, Any]:
    """torch / numpy / python RNG states as tensors and plain containers (weights_only-loadable)."""
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    state: dict[str, Any] = {
        "torch": torch.get_rng_state(),
        "numpy": {"kind": kind, "keys": torch.from_numpy(keys.astype(np.int64)), "pos": int(pos),
                  "has_gauss": int(has_gauss), "cached_gaussian": float(cached)},
        "python": random.getstate(),
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    np_state = state["numpy"]
    np.random.set_state((np_state["kind"], np_state["keys"].numpy().astype(np.uint32), np_state["pos"],
                         np_state["has_gauss"], np_state["cached_gaussian"]))
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state(state["cuda"])


def save_checkpoint(path: Path, state: dict[str, Any]) -> None:
    buffer = io.BytesIO()
    torch.save(state, buffer)
    atomic_write_bytes(path, buffer.getvalue())


def load_checkpoint(path: Path) -> dict[str, Any]:
    """Load a checkpoint with weights_only=True (no pickled objects); raises TrainError if unreadable."""
    if not path.is_file():
        raise TrainError(f"--resume: no checkpoint at {path}; run without --resume to start a new run")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError, OSError, ValueError, KeyError) as exc:
        raise TrainError(f"{path}: cannot load the checkpoint ({exc}); delete it to start over") from None
    if not isinstance(state, dict) or "format" not in state:
        raise TrainError(f"{path}: not a ptycho_torch checkpoint (format {CHECKPOINT_FORMAT})")
    if state["format"] != CHECKPOINT_FORMAT:
        raise TrainError(f"{path}: a checkpoint of format {state['format']} (this ptycho_torch reads format "
                         f"{CHECKPOINT_FORMAT}); start a new run in a new --output-dir")
    return state


def check_resume(state: dict[str, Any], config: TrainConfig, data_sha256: str, path: Path,
                 world_size: int = 1) -> None:
    """TrainError unless the checkpoint was written by this run: same data, same run_identity(), the same
    number of processes."""
    saved_world = int(state.get("world_size", 1))
    if saved_world != world_size:
        raise TrainError(f"--resume: {path} was written by {saved_world} training process(es), this run has "
                         f"{world_size}; the position inside an epoch depends on that split: resume with "
                         f"torchrun --nproc_per_node={saved_world} (or 1 process without torchrun)")
    if state["data_sha256"] != data_sha256:
        raise TrainError(f"--resume: {path} was trained on other data (SHA256 {state['data_sha256'][:12]}...) "
                         f"than {config.data} ({data_sha256[:12]}...); pass the same --data or a new --output-dir")
    # a setting newer than the checkpoint was, when it was written, at its default
    saved = {**TrainConfig.defaults(), **state["config"]}
    changed = {k: (saved.get(k), v) for k, v in config.run_identity().items() if saved.get(k) != v}
    if changed:
        detail = ", ".join(f"{k}: checkpoint {old!r} vs now {new!r}" for k, (old, new) in changed.items())
        raise TrainError(f"--resume: settings differ from the checkpoint's ({detail}); use the same flags "
                         "(only --epochs, --steps, --max-steps, --patience, --keep-last, --threads, --device, "
                         "--precision, --num-workers, --compile may change)")
