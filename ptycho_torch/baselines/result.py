"""What an iterative reconstruction returns: per-iteration statistics and the result, which becomes the
recon.npz record (recon_file.ReconRecord) with recon_record()."""
from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from ptycho_torch.baselines.config import ReconstructionConfig
from ptycho_torch.recon_file import ReconRecord


@dataclass(frozen=True)
class IterationRecord:
    """Statistics of one iteration's pass over the data, accumulated batch by batch. ePIE: each batch is
    scored on the estimate it is about to update. ML: the estimate at the start of the iteration (the
    objective itself, which never rises).

    deviance: mean Poisson deviance per detector pixel, 2 (rate - c + c log(c / rate)) with counts c =
        measured amplitude^2; 0 for a perfect fit, about 1 per bright pixel at the truth for Poisson data.
    fourier_error: sum (s A - measured)^2 / sum measured^2, the classic ePIE amplitude error.
    holdout_deviance: with config.holdout_fraction > 0, the mean Poisson deviance per pixel of the held-out
        patterns (which the updates never see) under the estimate at the end of this iteration; else None.
    """

    iteration: int  # 1-based
    deviance: float
    fourier_error: float
    seconds: float  # wall time of this pass
    holdout_deviance: float | None = None


@dataclass(frozen=True)
class InitialFile:
    """The reconstruction file a run started from (start.load_initial_object): its name (no folder), the
    SHA256 of its bytes, the pixels taken from it and those filled (not covered there)."""

    name: str
    sha256: str
    covered_pixels: int
    filled_pixels: int


@dataclass(frozen=True)
class HoldoutSummary:
    """The held-out early stop of a run (config.holdout_fraction > 0; holdout.py).

    n_patterns: patterns held out (kind "patterns"), or scored through their held-out pixels (kind
    "pixels": every pattern, pixels_per_pattern of its detector pixels each). initial_deviance: their fit
    under the start (iteration 0).
    best_iteration: the iterate returned (0: the start itself). stopped_early: the run ended `patience`
    iterations after its best, before config.iterations.
    """

    fraction: float
    n_patterns: int
    patience: int
    initial_deviance: float
    best_iteration: int
    best_deviance: float
    stopped_early: bool
    kind: str = "patterns"
    pixels_per_pattern: int = 0


Progress = Callable[[IterationRecord], None]


@dataclass(frozen=True)
class IterativeResult:
    """Result of an iterative reconstruction (reconstruct_iterative).

    object: (H, W) complex64 in the frame of the given object_shape (objectGuess's), origin pixel (0, 0);
        pixels outside `coverage` keep (roughly) their initial value: use recon_record() or the mask.
    probe: (N, N) complex64 in the given probe's scale (the given probe itself unless refine_probe).
    coverage: (H, W) bool, summed probe intensity over all positions (each normalised to peak 1) >=
        config.coverage_threshold; the same rule as infer.py. weight: (H, W) float32, that sum.
    history: one record per iteration. intensity_scale: s, counts = (s |F(O P)|)^2.
    seconds: wall time of the iterations (setup excluded).
    initial_scale: with fit_initial_scale, the real factor the given initial object was multiplied by
        before the first iteration (start.fit_amplitude_scale); else None.
    holdout: the held-out early stop's summary, None without one; the object is then its best iterate.
    initial_file: the reconstruction file the start came from (reconstruct_from_npz's init_from), or None.
    """

    object: np.ndarray
    probe: np.ndarray
    coverage: np.ndarray
    weight: np.ndarray
    history: tuple[IterationRecord, ...]
    intensity_scale: float
    seconds: float
    n_patterns: int
    config: ReconstructionConfig
    device: str
    initial_scale: float | None = None
    holdout: HoldoutSummary | None = None
    initial_file: InitialFile | None = None

    @property
    def losses(self) -> tuple[float, ...]:
        """Mean Poisson deviance per iteration."""
        return tuple(r.deviance for r in self.history)

    @property
    def patterns_per_second(self) -> float:
        """Pattern updates per second: n_patterns * iterations / seconds."""
        done = self.n_patterns * len(self.history)
        return done / self.seconds if self.seconds > 0 else math.inf

    def recon_record(self) -> ReconRecord:
        """The recon.npz record: object NaN outside coverage (as inference writes it), coverage, weight."""
        return ReconRecord.masked(self.object, self.coverage, self.weight)
