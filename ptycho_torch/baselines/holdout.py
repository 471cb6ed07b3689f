"""The held-out early stop: a share of the patterns never enters the updates; their Poisson fit under each
iterate says when the method has started to fit the noise of the rest.

At low dose an iterative method started from a good object (a network's) first improves it and then, as it
fits the Poisson noise of the patterns it updates with, makes it worse while its own objective keeps
falling. The held-out patterns measure the same object through independent noise, so their deviance
stops falling where the object stops improving. The tracker scores the start (iteration 0) and every
iterate, keeps the best one (a copy of object and probe) and asks to stop `patience` iterations after it.

Two things can be held out (ReconstructionConfig.holdout). Whole patterns (split_holdout): their positions
are then updated only through their neighbours, so at high dose their fit stops improving long before the
image does (BASE-005). Detector pixels (PixelHoldout, ML only): the same share of every pattern's pixels,
marked as not measured (NaN) in what the updates see, and the complement in what the tracker scores; every
position is updated, and a held-out count is predicted by the object that the rest of its pattern fits,
as a free R factor is in crystallography.
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


PIXEL_MASKS = 256  # distinct held-out pixel sets; pattern j uses set j % PIXEL_MASKS (bounded memory)


class PixelHoldout:
    """A seeded share of every pattern's detector pixels: round(fraction * N * N) per pattern, the set
    cycling over PIXEL_MASKS draws, so neighbouring patterns hold out different pixels."""

    def __init__(self, n_patterns: int, side: int, fraction: float, rng: np.random.Generator,
                 device: torch.device) -> None:
        held = round(fraction * side * side)
        if not 0 < held < side * side:
            raise BaselineError(f"holdout_fraction {fraction} of a {side} x {side} pattern holds out {held} "
                                "pixels; pick a fraction that leaves some pixels on each side")
        masks = np.zeros((min(n_patterns, PIXEL_MASKS), side * side), dtype=bool)
        for mask in masks:
            mask[rng.choice(side * side, held, replace=False)] = True
        self.masks = torch.from_numpy(masks.reshape(-1, side, side)).to(device)
        self.n_pixels = held

    def held(self, index: np.ndarray) -> Tensor:
        """(B, N, N) bool: the held-out pixels of patterns `index`."""
        return self.masks[torch.from_numpy(index % len(self.masks)).to(self.masks.device)]

    @staticmethod
    def hide(measured: Tensor, hidden: Tensor) -> Tensor:
        """measured with the `hidden` pixels marked as not measured (NaN)."""
        return measured.masked_fill(hidden, math.nan)


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
