"""What a training run is (TrainConfig) and what it reports (EpochRecord, TrainResult). Torch-free, so
that `ptycho-torch train` reads its defaults from TrainConfig without importing torch."""
from __future__ import annotations

import math
from dataclasses import MISSING, dataclass, field, fields
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ptycho_torch import options
from ptycho_torch.errors import TrainError

if TYPE_CHECKING:
    from ptycho_torch.model import ModelConfig

DEFAULT_MAX_STEPS = 10_000  # the cap of a run given no length; early stopping usually ends it first
DEFAULT_PATIENCE = 1_000  # steps; TRAIN-005: validation minima came 250 to 3,700 steps into 4,000-step runs


def flag(field_name: str) -> str:
    """The command-line flag of a TrainConfig field: batch_size -> --batch-size."""
    return f"--{field_name.replace('_', '-')}"


class LrSchedule(StrEnum):
    """How the learning rate changes during an attempt.

    PLATEAU (default): constant until the run has escaped the flat-object plateau, then halved whenever the
        fraction of the flat->best gap closed has not grown by 0.2 points over --lr-patience steps (down to
        lr / 32). Lowering the rate while still on the plateau would only keep the run there, and the rule
        does not depend on the planned length, so a run extended with --resume continues as if planned so.
    CONSTANT: --lr throughout.
    """

    PLATEAU = "plateau"
    CONSTANT = "constant"


@dataclass(frozen=True)
class TrainConfig:
    """Everything a run depends on; stored in each checkpoint so a resume can check it continues the same run.

    Length: `steps` optimizer steps when > 0, else `epochs` passes over the training groups when given, else
    at most `max_steps` steps. A restart from the plateau (train/progress.py) begins a new attempt, and the
    length counts the final attempt's steps. Whatever the length, with a validation split the run stops early
    once its validation loss has not reached a new minimum for `patience` steps (0: never), and with
    `keep_best` the saved model has the weights of the lowest validation loss (docs/findings.md, TRAIN-005,
    TRAIN-007).
    """

    data: str
    output_dir: str
    epochs: int | None = None  # passes over the training groups; None = no epoch length
    steps: int = 0  # optimizer steps; 0 = `epochs` epochs, or up to `max_steps` without either
    max_steps: int = DEFAULT_MAX_STEPS  # the length when neither steps nor epochs is given
    patience: int = DEFAULT_PATIENCE  # steps without a new lowest validation loss before stopping; 0 = never
    keep_best: bool = True  # save the weights of the lowest validation loss, not the last ones
    batch_size: int = 16
    lr: float = 1e-3
    seed: int = 0
    val_fraction: float = 0.1
    gridsize: int = 1
    K: int = 7
    groups_per_position: int = 1  # training groups seeded at each position (K > C draws them differently)
    channel_order: str = "seed"  # grouping.ChannelOrder: "seed" first, or "quadrant" (by place)
    n_filters: int = 16
    depth: int = 3
    loss: str = "poisson"
    support: int = 0  # ModelConfig.support: the decoder fills the central support x support only; 0 = all
    support_fill: str = "vacuum"  # ModelConfig.support_fill: "vacuum" or "zero" outside the support
    probe_mask_radius: float = 0.0  # ModelConfig.probe_mask_radius: a disk on the physics' probe; 0 = none
    init_from: str | None = None  # a bundle whose network's weights start the run (train/start_weights.py)
    encoder: str = "group"  # ModelConfig.encoder at gridsize > 1: "group" (C channels) or "pattern" (shared)
    merge: str = "probe"  # ModelConfig.merge_weights at gridsize > 1: "probe", "uniform" or "central"
    grad_clip: float = 1.0  # max gradient norm; 0 = no clipping
    lr_schedule: str = "plateau"
    lr_patience: int = 500  # steps without progress before the plateau schedule halves the rate
    lr_warmup: int = 50  # steps of each attempt over which the rate rises linearly to lr (TRAIN-013); 0 = none
    plateau_steps: int = 500  # restart from a new seed if the run is still on the plateau after these; 0 = never
    escape_gap: float = 0.05  # fraction of the flat->best gap closed that counts as off the plateau
    max_restarts: int = 3
    threads: int = 0  # torch CPU threads; 0 = the cores this process may use (device.resolve_threads)
    device: str = "auto"
    precision: str = "auto"
    compile: bool = False
    num_workers: int = 0

    def __post_init__(self) -> None:
        # model.py imports torch: loaded when a run is configured, never when the CLI only reads defaults
        from ptycho_torch.grouping import ChannelOrder
        from ptycho_torch.model import Encoder, LossKind, SupportFill
        from ptycho_torch.overlap import MergeWeights

        for name in ("batch_size", "gridsize", "K", "n_filters", "depth", "lr_patience", "max_steps",
                     "groups_per_position"):
            options.integer(getattr(self, name), flag(name), minimum=1, error=TrainError)
        if self.epochs is not None:
            options.integer(self.epochs, flag("epochs"), minimum=1, error=TrainError)
        options.boolean(self.keep_best, "keep_best", error=TrainError)
        for name in ("steps", "plateau_steps", "max_restarts", "threads", "num_workers", "patience", "support",
                     "lr_warmup"):
            options.integer(getattr(self, name), flag(name), minimum=0, error=TrainError)
        options.number(self.lr, "--lr", above=0, error=TrainError)
        options.number(self.val_fraction, "--val-fraction", minimum=0, below=1, error=TrainError)
        options.number(self.grad_clip, "--grad-clip (0 = off)", minimum=0, error=TrainError)
        options.number(self.escape_gap, "--escape-gap", above=0, below=1, error=TrainError)
        options.choice(LossKind, self.loss, "--loss", error=TrainError)
        options.choice(LrSchedule, self.lr_schedule, "--lr-schedule", error=TrainError)
        options.choice(SupportFill, self.support_fill, "--support-fill", error=TrainError)
        options.choice(MergeWeights, self.merge, "--merge", error=TrainError)
        options.choice(ChannelOrder, self.channel_order, "--channel-order", error=TrainError)
        options.choice(Encoder, self.encoder, "--encoder", error=TrainError)
        options.number(self.probe_mask_radius, "--probe-mask-radius (0 = no mask)", minimum=0, error=TrainError)

    @classmethod
    def defaults(cls) -> dict[str, Any]:
        """Every field that has a default, with it: the CLI's defaults, and a setting a checkpoint predates."""
        return {f.name: f.default for f in fields(cls) if f.default is not MISSING}

    def planned_steps(self, per_epoch: int) -> int:
        """The final attempt's length in optimizer steps, for `per_epoch` batches per epoch."""
        if self.steps > 0:
            return self.steps
        return self.epochs * per_epoch if self.epochs is not None else self.max_steps

    def model_config(self, N: int) -> ModelConfig:
        """The network a run of these settings trains on patterns of side N; TrainError when they conflict."""
        from ptycho_torch.errors import ModelConfigError  # model.py imports torch: loaded only here
        from ptycho_torch.model import LossKind, ModelConfig

        try:
            return ModelConfig(N=N, gridsize=self.gridsize, n_filters=self.n_filters, depth=self.depth,
                               loss=LossKind(self.loss), support=self.support, support_fill=self.support_fill,
                               probe_mask_radius=self.probe_mask_radius, merge_weights=self.merge,
                               encoder=self.encoder)
        except ModelConfigError as exc:
            raise TrainError(str(exc)) from None

    def run_identity(self) -> dict[str, Any]:
        """The fields a resumed run must share with the checkpoint (its length may grow; device may change)."""
        keep = ("batch_size", "lr", "seed", "val_fraction", "gridsize", "K", "groups_per_position",
                "channel_order", "n_filters", "depth", "loss", "support", "support_fill", "probe_mask_radius",
                "encoder", "merge", "grad_clip", "lr_schedule", "lr_patience", "lr_warmup", "plateau_steps", "escape_gap",
                "max_restarts")
        return {k: getattr(self, k) for k in keep}


@dataclass(frozen=True)
class EpochRecord:
    epoch: int  # 1-based
    train_loss: float  # mean over the epoch's steps of the (all-rank) batch loss
    val_loss: float  # mean over validation groups; NaN when there is no validation split
    lr: float
    patterns_per_s: float  # training patterns (groups * C) per second over all ranks
    seconds: float
    step: int = 0  # optimizer steps of the whole run (every attempt) at the end of the epoch
    attempt: int = 0  # 0 = the first attempt; n after n restarts from the plateau
    gap_closed: float = math.nan  # of train_loss: (flat - loss) / (flat - best); see progress.py


@dataclass(frozen=True)
class RestartRecord:
    """An attempt abandoned on the flat-object plateau."""

    attempt: int  # the attempt that was abandoned (0-based)
    seed: int  # its initialisation seed
    steps: int  # the steps it ran
    gap_closed: float  # over its last steps: below escape_gap
    at_step: int  # optimizer steps of the whole run when it was abandoned


@dataclass(frozen=True)
class TrainResult:
    output_dir: Path
    bundle_path: Path | None  # None on ranks other than 0
    history: tuple[EpochRecord, ...]
    intensity_scale: float
    resumed_from_epoch: int = 0
    device: str = field(default="cpu")
    restarts: tuple[RestartRecord, ...] = ()
    escaped_at_step: int | None = None  # the final attempt's step at which it left the plateau; None: never
    threads: int = 0
