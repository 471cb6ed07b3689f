"""How far a run has come: the flat-object plateau, restarts from it, and the learning-rate schedule.

A PtychoPINN run sits for a random number of steps on the loss of a flat object (the network predicts about
the same object for every pattern) before it escapes and learns (docs/findings.md, TRAIN-001). Two reference
losses, computed once on the training groups before the first step (reference_losses), turn a loss into
progress:

- flat: the loss of a flat object, O = c with c fitted to each pattern's total counts: about what a
  network on the plateau predicts (one brightness per pattern, no structure);
- best: an estimate, from the counts alone, of the loss of the true object: the loss of predicting every
  count exactly (the saturated model), plus the mean Poisson deviance that noise alone leaves above it,
  E[k log k] - r log r for k ~ Poisson(r), at the flat object's rates r. (On simulated fly001 data the
  true object's loss came out at 99% of this gap at a dose of 1e5 and 92% at 1e4; at 1e3 the flat rates,
  more even than the truth's, overstate the noise and the truth closes 134%. With the MAE loss, best = 0.)

    gap_closed(loss) = (flat - loss) / (flat - best)

is 0 on the plateau and about 1 for the true object. PlateauWatch reads the mean of the last WINDOW batch losses whenever the trainer
checks them (every CHECK_EVERY steps, one host sync): a run has escaped once gap_closed reaches
escape_gap; an attempt still below it after plateau_steps is abandoned and the trainer restarts from a new
seed (at most max_restarts times). After the escape it runs the plateau learning-rate schedule
(config.LrSchedule).
"""
from __future__ import annotations

import functools
import math
from collections import deque
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
from scipy.special import gammaln
from torch import Tensor

from ptycho_torch import physics
from ptycho_torch.device import DistContext
from ptycho_torch.errors import TrainingDivergedError
from ptycho_torch.model import LossKind, PtychoPINN
from ptycho_torch.train.config import LrSchedule, TrainConfig
from ptycho_torch.train.data import GroupRows, row_batches

CHECK_EVERY = 25  # steps between looks at the batch losses (NaN check, progress): one host sync each
WINDOW = 50  # batch losses averaged for gap_closed
LR_PROGRESS = 0.002  # gap_closed must grow by this much within lr_patience steps, or the rate is halved
LR_FLOOR = 1 / 32  # the plateau schedule never goes below lr * LR_FLOOR


@dataclass(frozen=True)
class ReferenceLosses:
    flat: float  # loss of the best flat object
    best: float  # loss of predicting the counts exactly

    def gap_closed(self, loss: float) -> float:
        """(flat - loss) / (flat - best); NaN when the two references coincide (e.g. data of zeros)."""
        span = self.flat - self.best
        return (self.flat - loss) / span if span > 0 and math.isfinite(span) else math.nan


@torch.no_grad()
def reference_losses(model: PtychoPINN, subset: GroupRows, batch_size: int, ctx: DistContext,
                     device: torch.device) -> ReferenceLosses:
    """The flat-object and saturated losses over the training groups, as the trainer's loss weighs them
    (every pattern of every group, pixel mean). Each rank reads every world_size-th batch; sums are reduced.

    The flat object of a pattern is O = c with c fitted to that pattern's total counts (c^2 = sum k / sum r_1,
    r_1 the rate of |O| = 1): a network on the plateau predicts about that (one brightness per pattern and
    no structure), so a run on the plateau has closed about none of the gap."""
    n = model.config.N
    unit = physics.diffraction_amplitude(torch.ones(n, n, dtype=torch.complex64, device=device),
                                         model.physics_probe().detach())  # (N, N), |O| = 1
    unit_counts = (unit.double() * float(model.intensity_scale)).square().sum()  # sum r_1
    poisson = model.config.loss is LossKind.POISSON
    totals = torch.zeros(3, dtype=torch.float64, device=device)  # (sum flat loss, sum best loss, patterns)
    rows = np.arange(len(subset))[ctx.rank :: ctx.world_size]
    for positions in row_batches(rows, batch_size):
        measured = subset[positions]["diffraction"].to(device).float()  # (B, C, N, N)
        patterns = measured.shape[0] * measured.shape[1]
        brightness = (measured.double().square().sum(dim=(-2, -1)) / unit_counts).sqrt()  # (B, C): c
        flat = unit * brightness.float()[..., None, None]
        totals[0] += float(model.loss_of(flat, measured)) * patterns
        totals[1] += float(model.loss_of(measured / model.intensity_scale, measured)) * patterns
        if poisson:  # the noise floor above the saturated loss, at the flat object's rates
            rates = (flat.double() * float(model.intensity_scale)).square().cpu().numpy()
            totals[1] += float(poisson_noise_deviance(rates).mean()) * patterns
        totals[2] += patterns
    if ctx.distributed:
        dist.all_reduce(totals)
    count = float(totals[2])
    if count == 0:
        return ReferenceLosses(math.nan, math.nan)
    return ReferenceLosses(float(totals[0]) / count, float(totals[1]) / count)


@functools.cache
def _noise_table() -> tuple[np.ndarray, np.ndarray]:
    """(rates, D(rate)) on a log grid from 1e-4 to 1e4: D(r) = E[k log k] - r log r, k ~ Poisson(r)."""
    rates = np.logspace(-4, 4, 321)
    values = np.empty_like(rates)
    for index, rate in enumerate(rates):
        k = np.arange(int(rate + 12 * math.sqrt(rate) + 30), dtype=np.float64)
        pmf = np.exp(k * math.log(rate) - rate - gammaln(k + 1))
        values[index] = float(np.dot(pmf, k * np.log(np.maximum(k, 1))) - rate * math.log(rate))
    return rates, values


def poisson_noise_deviance(rates: np.ndarray) -> np.ndarray:
    """E[k log k] - r log r for k ~ Poisson(r), elementwise: how far above the saturated loss (per pixel) the
    loss of the true rate r lies on average. 0 at r = 0, about r log(1/r) for small r, 1/2 for large r."""
    table_rates, table_values = _noise_table()
    r = np.asarray(rates, dtype=np.float64)
    inside = np.interp(np.log(np.clip(r, table_rates[0], table_rates[-1])), np.log(table_rates), table_values)
    small = r * np.log(1 / np.maximum(r, 1e-300))  # the leading term below the table
    return np.where(r < table_rates[0], small, np.where(r > table_rates[-1], 0.5, inside))


class PlateauWatch:
    """Escape detection, the restart decision and the learning-rate schedule of one attempt (module doc)."""

    def __init__(self, config: TrainConfig, references: ReferenceLosses) -> None:
        self.config, self.references = config, references
        self.recent: deque[float] = deque(maxlen=WINDOW)
        self.escaped_at: int | None = None  # the attempt's step at which gap_closed reached escape_gap
        self.best_gap = -math.inf  # for the learning-rate schedule, after the escape
        self.best_step = 0

    def gap_closed(self) -> float:
        return self.references.gap_closed(float(np.mean(self.recent))) if self.recent else math.nan

    def record(self, losses: list[float]) -> None:
        """Take checked batch losses without judging them (the end of an epoch that is not a check step)."""
        self.recent.extend(losses)

    def observe(self, losses: list[float], step: int, optimizer: torch.optim.Optimizer) -> bool:
        """Take the batch losses checked at the attempt's `step` (a multiple of CHECK_EVERY, so that a run
        stopped and resumed decides at the same steps as one that was not); True when the attempt should
        be abandoned."""
        self.record(losses)
        gap = self.gap_closed()
        if not math.isfinite(gap):
            return False  # no references: neither plateau detection nor the schedule can judge the run
        if self.escaped_at is None and len(self.recent) >= min(WINDOW, CHECK_EVERY) and gap >= self.config.escape_gap:
            self.escaped_at, self.best_gap, self.best_step = step, gap, step
        if self.escaped_at is None:
            return 0 < self.config.plateau_steps <= step
        if self.config.lr_schedule == LrSchedule.PLATEAU:
            self._schedule(gap, step, optimizer)
        return False

    def _schedule(self, gap: float, step: int, optimizer: torch.optim.Optimizer) -> None:
        if gap >= self.best_gap + LR_PROGRESS:
            self.best_gap, self.best_step = gap, step
        elif step - self.best_step >= self.config.lr_patience:
            floor = self.config.lr * LR_FLOOR
            for group in optimizer.param_groups:
                group["lr"] = max(floor, group["lr"] / 2)
            self.best_gap, self.best_step = max(self.best_gap, gap), step

    def state_dict(self) -> dict[str, Any]:
        return {"recent": list(self.recent), "escaped_at": self.escaped_at, "best_gap": self.best_gap,
                "best_step": self.best_step}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.recent = deque(state["recent"], maxlen=WINDOW)
        self.escaped_at, self.best_gap, self.best_step = state["escaped_at"], state["best_gap"], state["best_step"]


class StepLosses:
    """Batch losses kept on the device and looked at every CHECK_EVERY steps of an attempt and at the end
    of every epoch (where a run ends inside an epoch, for the NaN check only):
    one host sync (and, under DDP, one all-reduce) per look instead of per step. A look names the first
    non-finite step, and hands the values on (drain) for PlateauWatch."""

    def __init__(self, ctx: DistContext) -> None:
        self.ctx = ctx
        self.pending: list[tuple[int, Tensor]] = []
        self.values: list[float] = []  # every checked value since the last reset (the epoch's losses)
        self.fresh: list[float] = []  # checked since the last drain

    def add(self, step: int, loss: Tensor) -> None:
        """Keep one step's loss on the device until the next flush."""
        self.pending.append((step, loss.detach().float()))

    def flush(self) -> None:
        """Bring the pending losses to the host; raises TrainingDivergedError at the first non-finite one."""
        if not self.pending:
            return
        stacked = torch.stack([loss for _, loss in self.pending])
        if self.ctx.distributed:
            dist.all_reduce(stacked)  # a NaN on any rank reaches every rank, so all stop together
            stacked /= self.ctx.world_size
        values = stacked.tolist()
        for (step, _), value in zip(self.pending, values, strict=True):
            if not math.isfinite(value):
                raise TrainingDivergedError(what="loss", value=value, step=step)
        self.values.extend(values)
        self.fresh.extend(values)
        self.pending.clear()

    def drain(self) -> list[float]:
        fresh, self.fresh = self.fresh, []
        return fresh
