"""One training run: what it trains and where it stands, in one object (Run) that the loop steps.

`step`, the optimizer steps of the whole run over every attempt, is the one counter. Everything else about
the position is derived from it, the batches per epoch and the restarts:

    attempt       = len(restarts)                         (0 = the first attempt)
    attempt_step  = step - restarts[-1].at_step            (steps of the current attempt; step when none)
    epoch         = ceil(step / per_epoch)                 (the epoch under way or last finished, 1-based)
    batches_done  = step % per_epoch                       (batches of that epoch run; 0 when it is finished)

This holds because every batch is one optimizer step, a restart keeps the data order running on (the next
attempt continues the epoch), and a resume is refused unless the batches per epoch are the same
(checkpoint.check_resume). A checkpoint still stores all five numbers; a resume checks that they agree.

A restart (restart()) abandons an attempt still on the flat-object plateau: fresh weights from a new seed
(attempt_seed), a fresh optimizer, a fresh PlateauWatch and a fresh BestWeights; the scaler and the data
order carry on. judge() sees each epoch's validation loss: it keeps the best weights and stops the run once
the minimum is config.patience steps old (best.py).
"""
from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ptycho_torch.errors import TrainError
from ptycho_torch.model import PtychoPINN
from ptycho_torch.train import checkpoint
from ptycho_torch.train.best import BestWeights
from ptycho_torch.train.config import EpochRecord, RestartRecord, TrainConfig
from ptycho_torch.train.progress import PlateauWatch, ReferenceLosses, StepLosses


def attempt_seed(seed: int, attempt: int) -> int:
    """The initialisation seed of an attempt: the run's seed first, then one derived from (seed, attempt)."""
    if attempt == 0:
        return seed
    return int(np.random.SeedSequence([seed, attempt]).generate_state(1, dtype=np.uint32)[0])


def new_optimizer(model: PtychoPINN, config: TrainConfig) -> torch.optim.Optimizer:
    """Adam at the rate of an attempt's first step (lr / lr_warmup during a warm-up; Run.warm_up)."""
    return torch.optim.Adam(model.parameters(), lr=config.lr / max(1, config.lr_warmup))


@dataclass
class Run:
    """The model, optimizer, scaler and plateau watch (the learning-rate schedule) of a run, its step counter
    and what it has recorded (restarts, epochs). fresh_model builds an untrained model from the current torch
    seed (a restart's new weights); per_epoch is this process's batches per epoch; total is the planned
    steps of the final attempt. Only the main process (is_main) prints."""

    config: TrainConfig
    model: PtychoPINN
    optimizer: torch.optim.Optimizer
    scaler: torch.amp.GradScaler
    watch: PlateauWatch
    references: ReferenceLosses
    fresh_model: Callable[[], PtychoPINN]
    per_epoch: int
    total: int
    is_main: bool = True
    step: int = 0
    restarts: list[RestartRecord] = field(default_factory=list)
    history: list[EpochRecord] = field(default_factory=list)
    stuck_reported: bool = False  # "still on the plateau after max_restarts" is said once per process
    best: BestWeights = field(default_factory=BestWeights)  # of the current attempt
    stopped_early: bool = False  # the validation loss had not improved for config.patience steps

    @property
    def attempt(self) -> int:
        return len(self.restarts)

    @property
    def attempt_step(self) -> int:
        return self.step - (self.restarts[-1].at_step if self.restarts else 0)

    @property
    def epoch(self) -> int:
        return -(-self.step // self.per_epoch)

    @property
    def batches_done(self) -> int:
        return self.step % self.per_epoch

    @property
    def finished(self) -> bool:
        return self.stopped_early or self.attempt_step >= self.total

    @property
    def planned_epochs(self) -> int:
        """The epoch the run ends in if no restart comes (the progress line's `epoch e/planned`)."""
        return self.epoch + math.ceil((self.total - self.attempt_step) / self.per_epoch)

    def _say(self, text: str) -> None:
        if self.is_main:
            print(text, flush=True)

    def warm_up(self) -> None:
        """Before an attempt's step s <= config.lr_warmup: the rate lr * s / lr_warmup (the first steps of
        Adam, whose moment estimates are still young, at a fraction of the rate; TRAIN-013)."""
        warmup = self.config.lr_warmup
        if 0 < self.attempt_step <= warmup:
            for group in self.optimizer.param_groups:
                group["lr"] = self.config.lr * self.attempt_step / warmup

    def check(self, losses: StepLosses) -> None:
        """A check step: bring the pending losses to the host (TrainingDivergedError at a non-finite one),
        let the watch judge them, and restart when the attempt stays on the plateau (not when it has just
        finished its steps); say when it escaped, or when no restart is left."""
        losses.flush()
        escaped_before = self.watch.escaped_at is not None
        stuck = self.watch.observe(losses.drain(), self.attempt_step, self.optimizer)
        if stuck and self.attempt < self.config.max_restarts and not self.finished:
            self.restart()
        elif stuck and not self.stuck_reported:
            self.stuck_reported = True
            self._say(f"still on the flat-object plateau after {self.config.max_restarts} restarts; training "
                      f"on. Try another --seed, a lower --lr (now {self.config.lr:g}) or more --max-restarts")
        elif self.watch.escaped_at is not None and not escaped_before:
            self._say(f"off the flat-object plateau at step {self.watch.escaped_at} of attempt "
                      f"{self.attempt} (gap closed {self.watch.gap_closed():.1%})")

    def judge(self, val_loss: float) -> None:
        """After an epoch's validation: keep the weights of a new minimum; stop once the minimum is
        config.patience steps old (unless the run has its steps anyway)."""
        if self.best.observe(val_loss, self.step, self.model, keep=self.config.keep_best):
            return
        if not self.finished and self.best.stale(self.step, self.config.patience):
            self.stopped_early = True
            self._say(f"stopping early at step {self.step}: the validation loss has not improved for "
                      f"{self.step - self.best.step} steps (lowest {self.best.val_loss:.6g} at step "
                      f"{self.best.step}; --patience {self.config.patience})")

    def restart(self) -> None:
        """Abandon the attempt on the plateau: fresh weights from a new seed, a fresh optimizer and watch."""
        config = self.config
        abandoned = RestartRecord(attempt=self.attempt, seed=attempt_seed(config.seed, self.attempt),
                                  steps=self.attempt_step, gap_closed=self.watch.gap_closed(),
                                  at_step=self.step)
        self.restarts.append(abandoned)
        seed = attempt_seed(config.seed, self.attempt)
        torch.manual_seed(seed)
        self.model.load_state_dict(self.fresh_model().state_dict())
        self.optimizer = new_optimizer(self.model, config)
        self.watch = PlateauWatch(config, self.references)
        self.best = BestWeights()
        self._say(f"restart {self.attempt}/{config.max_restarts}: still on the flat-object plateau after "
                  f"{abandoned.steps} steps (gap closed {abandoned.gap_closed:.1%} < "
                  f"{config.escape_gap:.1%}); new seed {seed}")

    def checkpoint_state(self, *, data_sha256: str, scale: float, world_size: int) -> dict[str, Any]:
        """Everything a resume restores, as tensors and plain containers (checkpoint.py's format)."""
        return {
            "epoch": self.epoch, "batches_done": self.batches_done, "global_step": self.step,
            "attempt": self.attempt, "attempt_step": self.attempt_step,
            "format": checkpoint.CHECKPOINT_FORMAT, "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(), "scaler": self.scaler.state_dict(),
            "rng": checkpoint.rng_state(), "watch": self.watch.state_dict(),
            "sampler": {"seed": self.config.seed, "epoch": self.epoch},
            "restarts": [asdict(r) for r in self.restarts], "history": [asdict(r) for r in self.history],
            "config": asdict(self.config), "data_sha256": data_sha256, "intensity_scale": scale,
            "world_size": world_size,  # batches_done counts one process's batches of a world_size-way split
            "best": self.best.state_dict(), "stopped_early": self.stopped_early,
        }

    def resume(self, state: dict[str, Any], path: Path) -> None:
        """Restore a checkpoint that checkpoint.check_resume accepted: weights, optimizer, scaler, RNG states,
        the watch and where the run stands. TrainError when its stored position disagrees with its step."""
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.scaler.load_state_dict(state["scaler"])
        checkpoint.set_rng_state(state["rng"])
        self.watch.load_state_dict(state["watch"])
        self.step = int(state["global_step"])
        self.restarts = [RestartRecord(**r) for r in state["restarts"]]
        self.history = [EpochRecord(**r) for r in state["history"]]
        self.best = BestWeights.from_state_dict(state.get("best"))
        self.stopped_early = bool(state.get("stopped_early", False))
        stored = {name: int(state[name]) for name in ("epoch", "batches_done", "attempt", "attempt_step")}
        derived = {name: getattr(self, name) for name in stored}
        if stored != derived:
            raise TrainError(f"{path}: the checkpoint's position {stored} does not follow from its "
                             f"step {self.step} with {self.per_epoch} batches per epoch ({derived}); start a "
                             "new run in a new --output-dir")
