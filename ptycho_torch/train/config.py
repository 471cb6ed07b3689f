"""What a training run is (TrainConfig) and what it reports (EpochRecord, TrainResult). Torch-free, so
that `ptycho-torch train` reads its defaults from TrainConfig without importing torch."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ptycho_torch import options
from ptycho_torch.errors import TrainError


def flag(field_name: str) -> str:
    """The command-line flag of a TrainConfig field: batch_size -> --batch-size."""
    return f"--{field_name.replace('_', '-')}"


@dataclass(frozen=True)
class TrainConfig:
    """Everything a run depends on; stored in each checkpoint so a resume can check it continues the same run."""

    data: str
    output_dir: str
    epochs: int = 5
    batch_size: int = 16
    lr: float = 1e-3
    seed: int = 0
    val_fraction: float = 0.1
    gridsize: int = 1
    K: int = 7
    n_filters: int = 16
    depth: int = 3
    loss: str = "poisson"
    grad_clip: float = 0.0  # max gradient norm; 0 = no clipping
    device: str = "auto"
    precision: str = "auto"
    compile: bool = False
    num_workers: int = 0

    def __post_init__(self) -> None:
        # model.py imports torch: loaded when a run is configured, never when the CLI only reads defaults
        from ptycho_torch.model import LossKind

        for name in ("epochs", "batch_size", "gridsize", "K", "n_filters", "depth"):
            options.integer(getattr(self, name), flag(name), minimum=1, error=TrainError)
        options.integer(self.num_workers, "--num-workers", minimum=0, error=TrainError)
        options.number(self.lr, "--lr", above=0, error=TrainError)
        options.number(self.val_fraction, "--val-fraction", minimum=0, below=1, error=TrainError)
        options.number(self.grad_clip, "--grad-clip (0 = off)", minimum=0, error=TrainError)
        options.choice(LossKind, self.loss, "--loss", error=TrainError)

    def run_identity(self) -> dict[str, Any]:
        """The fields a resumed run must share with the checkpoint (epochs may grow; device may change)."""
        keep = ("batch_size", "lr", "seed", "val_fraction", "gridsize", "K", "n_filters", "depth", "loss",
                "grad_clip")
        return {k: getattr(self, k) for k in keep}


@dataclass(frozen=True)
class EpochRecord:
    epoch: int  # 1-based
    train_loss: float  # mean over the epoch's steps of the (all-rank) batch loss
    val_loss: float  # mean over validation groups; NaN when there is no validation split
    lr: float
    patterns_per_s: float  # training patterns (groups * C) per second over all ranks
    seconds: float


@dataclass(frozen=True)
class TrainResult:
    output_dir: Path
    bundle_path: Path | None  # None on ranks other than 0
    history: tuple[EpochRecord, ...]
    intensity_scale: float
    resumed_from_epoch: int = 0
    device: str = field(default="cpu")
