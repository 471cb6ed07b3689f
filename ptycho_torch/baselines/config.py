"""Options of the iterative baselines: the method and its steps, validated on creation (BaselineError)."""
from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from ptycho_torch import options
from ptycho_torch.errors import BaselineError
from ptycho_torch.region import COVERAGE_THRESHOLD


class Method(StrEnum):
    EPIE = "epie"  # mini-batch rPIE over sparse sets of positions (epie.py)
    ML = "ml"  # Poisson maximum likelihood, preconditioned conjugate gradients, autograd gradients (ml.py)
    PTYCHI_LSQML = "ptychi-lsqml"  # pty-chi's LSQML (optional dependency) on converted data (ptychi_lsqml.py)


class Holdout(StrEnum):
    PATTERNS = "patterns"  # a share of the patterns, whole, kept out of the updates (holdout.py)
    PIXELS = "pixels"  # a share of every pattern's detector pixels kept out (ML only; holdout.py)


# Default step sizes per method: (object, probe). ePIE: fractions of the full PIE step. ML: the first step
# the line search tries along the preconditioned direction, and the probe direction's weight. LSQML solves
# its own step sizes.
DEFAULT_STEPS: dict[Method, tuple[float, float]] = {
    Method.EPIE: (1.0, 1.0), Method.ML: (1.0, 1.0), Method.PTYCHI_LSQML: (1.0, 1.0),
}


@dataclass(frozen=True)
class ReconstructionConfig:
    """Options of an iterative reconstruction; validated on creation (BaselineError).

    method: "epie", "ml" or "ptychi-lsqml". iterations: passes over all patterns; 0 returns the start
        (initial_object) in the result's frame, which checks every conversion on its own.
    batch_size: ePIE: the most positions updated together (a sparse set is cut to this size); ML: patterns
        per forward/backward chunk, which bounds memory only (every iteration uses every pattern); LSQML:
        pty-chi's minibatch (random batching), which its updates depend on.
    object_step / probe_step: None takes DEFAULT_STEPS[method]. ePIE: fractions of the full PIE update.
        ML: the line search's first trial step, and the weight of the probe's direction against the object's.
        LSQML: not used (it solves its step sizes; setting either is an error).
    pie_alpha: the regularisation of ePIE's and ML's illumination preconditioner (rPIE's alpha): denominator
        (1 - a) |P|^2 + a max |P|^2; 1 is ePIE's max-normalised step, smaller moves dim pixels faster.
    refine_probe: also update the probe, from iteration `probe_start` (1-based) on, so the object settles
        first (all three methods). ml_warmup (ML only): iterations over which the damping of the Poisson
        gradient fades out (ml.py); 0 = the exact gradient from the start. seed: the order of the updates
        (the only randomness).
    device: "auto" (CUDA when available), "cpu", "cuda", "cuda:K".
    coverage_threshold: see IterativeResult.coverage.
    holdout_fraction: the share of the patterns (seeded by `seed`) kept out of the updates and scored after
        every iteration (mean Poisson deviance per pixel); the iterate with the best held-out fit, the
        start included, is returned, and the run stops after `patience` iterations without improving it
        (holdout.py). 0 (the default) updates with every pattern and returns the last iterate.
    holdout: what is held out. "patterns" (the default): whole patterns, whose positions the updates then
        constrain only through their neighbours. "pixels" (ML only): the same share of every pattern's
        detector pixels, so every position is updated and the held-out counts are predicted by the object
        the rest of its own pattern fits (docs/findings.md, BASE-005).

    Every method uses physics.forward's model, the beam moving over the object's fixed pixel grid
    (docs/findings.md, PHYS-001); pty-chi's LSQML has the same model once converted (ptychi_lsqml.py).
    """

    method: str = Method.EPIE
    iterations: int = 50
    batch_size: int = 32
    object_step: float | None = None
    probe_step: float | None = None
    pie_alpha: float = 0.1
    refine_probe: bool = False
    probe_start: int = 3
    ml_warmup: int = 30
    seed: int = 0
    device: str = "auto"
    coverage_threshold: float = COVERAGE_THRESHOLD
    holdout_fraction: float = 0.0
    patience: int = 10
    holdout: str = Holdout.PATTERNS

    def __post_init__(self) -> None:
        object.__setattr__(self, "method", options.choice(Method, self.method, "method", error=BaselineError))
        options.integer(self.iterations, "iterations", minimum=0, error=BaselineError)
        for name in ("batch_size", "probe_start"):
            options.integer(getattr(self, name), name, minimum=1, error=BaselineError)
        options.integer(self.ml_warmup, "ml_warmup", minimum=0, error=BaselineError)
        options.integer(self.patience, "patience", minimum=1, error=BaselineError)
        options.number(self.holdout_fraction, "holdout_fraction", minimum=0, maximum=0.5, error=BaselineError)
        object.__setattr__(self, "holdout", options.choice(Holdout, self.holdout, "holdout", error=BaselineError))
        if self.holdout is Holdout.PIXELS and self.method is not Method.ML:
            raise BaselineError(f"holdout pixels works with method ml only: {self.method.value}'s updates take "
                                "whole patterns; use holdout patterns, or method ml")
        for name in ("object_step", "probe_step"):
            if getattr(self, name) is not None:
                options.number(getattr(self, name), name, above=0, error=BaselineError)
                if self.method is Method.PTYCHI_LSQML:
                    raise BaselineError(f"{name} does not apply to ptychi-lsqml, which solves its own step "
                                        "sizes; leave it unset")
        for name in ("pie_alpha", "coverage_threshold"):
            options.number(getattr(self, name), name, above=0, maximum=1, error=BaselineError)
        options.boolean(self.refine_probe, "refine_probe", error=BaselineError)
        options.integer(self.seed, "seed", error=BaselineError)

    @property
    def steps(self) -> tuple[float, float]:
        """(object step, probe step) with the method's defaults filled in."""
        default_object, default_probe = DEFAULT_STEPS[Method(self.method)]
        return (
            default_object if self.object_step is None else float(self.object_step),
            default_probe if self.probe_step is None else float(self.probe_step),
        )
