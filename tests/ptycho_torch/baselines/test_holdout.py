"""The held-out early stop (baselines.holdout, ReconstructionConfig.holdout_fraction / patience): the
held-out patterns stay out of the updates, their fit is recorded per iteration, and the iterate with the
best held-out fit is returned after a patience.

Tiny case: 36 grid positions (overlap 0.7) of 32 x 32 patterns at 1e3 counts, where Poisson ML fits the
noise within a few iterations (simulate_dataset, seed 2).
"""
from __future__ import annotations

import numpy as np
import pytest
import torch

from ptycho_torch import physics
from ptycho_torch.baselines import BaselineError, ReconstructionConfig, reconstruct_iterative
from ptycho_torch.baselines.holdout import split_holdout
from ptycho_torch.simulate import SimulatedData, simulate_dataset

pytestmark = pytest.mark.usefixtures("one_thread")  # tests/ptycho_torch/conftest.py

FRACTION = 0.2


@pytest.fixture(scope="module")
def scan() -> SimulatedData:
    return simulate_dataset(36, nphotons=1e3, overlap=0.7, seed=2, N=32)


def held_out_deviance(data: SimulatedData, obj: np.ndarray, scale: float, seed: int = 0) -> float:
    """Mean Poisson deviance per pixel of the held-out patterns under obj, computed here from the model."""
    _, held = split_holdout(len(data.xcoords), FRACTION, np.random.default_rng(seed))
    return deviance(data, obj, scale, held)


def deviance(data: SimulatedData, obj: np.ndarray, scale: float, held: np.ndarray) -> float:
    """Mean Poisson deviance per pixel of patterns `held` under obj."""
    centres = torch.from_numpy(np.stack([data.xcoords, data.ycoords], axis=1)[held].astype(np.float32))
    rate = (scale * physics.forward(torch.from_numpy(obj), torch.from_numpy(data.probeGuess), centres)).square()
    rate = rate.double().numpy()
    counts = np.square(data.diffraction[held].astype(np.float64))
    log_term = np.where(counts > 0, counts * np.log(np.where(counts > 0, counts, 1) / np.maximum(rate, 1e-30)), 0)
    return float((2 * (rate - counts + log_term)).mean())


def run(data: SimulatedData, *, start: np.ndarray | None = None, iterations: int = 40, patience: int = 4,
        fraction: float = FRACTION) -> object:
    config = ReconstructionConfig(method="ml", iterations=iterations, device="cpu", holdout_fraction=fraction,
                                  patience=patience)
    positions = np.stack([data.xcoords, data.ycoords], axis=1)
    return reconstruct_iterative(data.diffraction, positions, data.probeGuess, data.objectGuess.shape,
                                 config=config, initial_object=start, fit_initial_scale=start is not None)


def test_the_best_held_out_iterate_is_returned_and_the_run_stops_after_the_patience(scan: SimulatedData) -> None:
    result = run(scan)
    summary = result.holdout  # type: ignore[attr-defined]
    history = result.history  # type: ignore[attr-defined]
    scores = [summary.initial_deviance] + [r.holdout_deviance for r in history]
    assert all(s is not None for s in scores)
    best = int(np.argmin(scores))
    assert summary.best_iteration == best and 0 < best < len(history)  # neither the start nor the last
    assert summary.stopped_early and len(history) == best + 4 and summary.n_patterns == 7
    returned = held_out_deviance(scan, result.object, result.intensity_scale)  # type: ignore[attr-defined]
    assert returned == pytest.approx(scores[best], rel=1e-4)
    assert returned < min(scores[best + 1:]) and returned < scores[0]


def test_a_start_that_noise_fitting_only_spoils_is_returned_as_it_was(scan: SimulatedData) -> None:
    result = run(scan, start=scan.objectGuess)
    assert result.holdout.best_iteration == 0 and len(result.history) == 4  # type: ignore[attr-defined]
    np.testing.assert_allclose(result.object, scan.objectGuess * result.initial_scale,  # type: ignore[attr-defined]
                               rtol=1e-5, atol=1e-6)


def test_the_held_out_patterns_stay_out_of_the_updates(scan: SimulatedData) -> None:
    result = run(scan, iterations=1, patience=10)
    updated, held = split_holdout(36, FRACTION, np.random.default_rng(0))
    assert len(held) == 7 and len(updated) == 29 and not set(held) & set(updated)
    # ML's first record scores the start (ones) over the patterns it updates with, and only those
    ones = np.ones(scan.objectGuess.shape, dtype=np.complex64)
    scale = result.intensity_scale  # type: ignore[attr-defined]
    first = result.history[0]  # type: ignore[attr-defined]
    assert first.deviance == pytest.approx(deviance(scan, ones, scale, updated), rel=1e-6)
    assert first.deviance != pytest.approx(deviance(scan, ones, scale, np.arange(36)), rel=1e-3)
    assert first.holdout_deviance is not None
    without = run(scan, iterations=1, fraction=0.0)
    assert without.holdout is None and without.history[0].holdout_deviance is None  # type: ignore[attr-defined]


def test_a_holdout_that_leaves_nothing_to_update_is_named() -> None:
    with pytest.raises(BaselineError, match="leaves none to update with"):
        split_holdout(1, 0.5, np.random.default_rng(0))
    with pytest.raises(BaselineError, match="holdout_fraction must be"):
        ReconstructionConfig(holdout_fraction=0.9)
