"""Early stopping: the lowest validation loss of the current attempt, the step it came at and the weights
then (docs/findings.md, TRAIN-005: small training sets overfit long before a fixed length ends).

The trainer shows it every epoch's validation loss (Run.judge). A new minimum replaces the kept weights; a run
whose minimum is `patience` steps old stops, and with `keep_best` the saved model gets the kept weights back.
A restart from the plateau begins a new attempt with a fresh BestWeights. Without a validation split the
loss is NaN, never a minimum, and nothing stops early.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from torch import Tensor, nn


@dataclass
class BestWeights:
    """val_loss: the lowest so far (inf: none yet); step: the run's step at it; state: a copy of the model's
    state_dict then (empty when weights are not kept)."""

    val_loss: float = math.inf
    step: int = 0
    state: dict[str, Tensor] = field(default_factory=dict)

    @property
    def found(self) -> bool:
        return math.isfinite(self.val_loss)

    def observe(self, val_loss: float, step: int, model: nn.Module, *, keep: bool) -> bool:
        """Record val_loss at step if it is a new minimum (copying the weights when keep); return whether it was."""
        if not val_loss < self.val_loss:  # NaN is never a minimum
            return False
        self.val_loss, self.step = val_loss, step
        if keep:
            self.state = {k: v.detach().clone() for k, v in model.state_dict().items()}
        return True

    def stale(self, step: int, patience: int) -> bool:
        """Whether the minimum is at least `patience` steps old at `step` (never when patience is 0)."""
        return patience > 0 and self.found and step - self.step >= patience

    def state_dict(self) -> dict[str, Any]:
        return {"val_loss": self.val_loss, "step": self.step, "model": self.state}

    @classmethod
    def from_state_dict(cls, state: dict[str, Any] | None) -> BestWeights:
        if not state:
            return cls()
        return cls(val_loss=float(state["val_loss"]), step=int(state["step"]), state=dict(state["model"]))
