"""The held-out early stop: a share of the patterns never enters the updates; their Poisson fit under each
iterate says when the method has started to fit the noise of the rest.

At low dose an iterative method started from a good object (a network's) first improves it and then, as it
fits the Poisson noise of the patterns it updates with, makes it worse while its own objective keeps
falling. The held-out patterns measure the same object through independent noise, so their deviance
stops falling where the object stops improving. The tracker scores the start (iteration 0) and every
iterate, keeps the best one (a copy of object and probe) and asks to stop `patience` iterations after it.
"""
from __future__ import annotations

import math

import numpy as np
import torch
from torch import Tensor

from ptycho_torch import physics
from ptycho_torch.baselines.common import Batches, PassStats
from ptycho_torch.errors import BaselineError


def split_holdout(n_patterns: int, fraction: float, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """(indices to update with, held-out indices), each sorted; round(fraction * n) held out, at least one
    when fraction > 0; BaselineError when that leaves no pattern to update with."""
    if fraction <= 0:
        return np.arange(n_patterns), np.zeros(0, dtype=np.int64)
    held = max(1, round(fraction * n_patterns))
    if held >= n_patterns:
        raise BaselineError(f"holdout_fraction {fraction} of {n_patterns} patterns leaves none to update with; "
                            "lower it or set it to 0")
    order = rng.permutation(n_patterns)
    return np.sort(order[held:]), np.sort(order[:held])


class HoldoutTracker:
    """Scores iterates on the held-out patterns and keeps the best (lowest mean deviance per pixel)."""

    def __init__(self, held_out: Batches, scale: float, patience: int) -> None:
        self.held_out = held_out
        self.scale = scale
        self.patience = patience
        self.best_iteration = 0
        self.best_deviance = math.inf
        self.initial_deviance = math.nan
        self.best: tuple[Tensor, Tensor] | None = None
        self.last_iteration = 0

    def score(self, obj: Tensor, probe: Tensor) -> float:
        """Mean Poisson deviance per pixel of the held-out patterns under (obj, probe)."""
        stats = PassStats()
        with torch.no_grad():
            for measured, centres in self.held_out():
                stats.add((self.scale * physics.forward(obj, probe, centres)).square(), measured)
        return stats.record(0).deviance

    def update(self, iteration: int, obj: Tensor, probe: Tensor) -> float:
        """Score iterate `iteration` (0: the start), keep it if best; returns its held-out deviance."""
        deviance = self.score(obj, probe)
        if iteration == 0:
            self.initial_deviance = deviance
        if deviance < self.best_deviance:
            self.best_iteration, self.best_deviance = iteration, deviance
            self.best = (obj.detach().clone(), probe.detach().clone())
        self.last_iteration = iteration
        return deviance

    @property
    def should_stop(self) -> bool:
        return self.last_iteration - self.best_iteration >= self.patience
