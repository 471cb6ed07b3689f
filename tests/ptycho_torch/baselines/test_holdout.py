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

from ptycho_torch import metrics, physics
from ptycho_torch.baselines import BaselineError, ReconstructionConfig, reconstruct_iterative
from ptycho_torch.baselines.holdout import PixelHoldout, split_holdout
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


def deviance(data: SimulatedData, obj: np.ndarray, scale: float, held: np.ndarray,
             pixels: np.ndarray | None = None) -> float:
    """Mean Poisson deviance per pixel of patterns `held` under obj (only `pixels` (P, N, N) of them)."""
    centres = torch.from_numpy(np.stack([data.xcoords, data.ycoords], axis=1)[held].astype(np.float32))
    rate = (scale * physics.forward(torch.from_numpy(obj), torch.from_numpy(data.probeGuess), centres)).square()
    rate = rate.double().numpy()
    counts = np.square(data.diffraction[held].astype(np.float64))
    log_term = np.where(counts > 0, counts * np.log(np.where(counts > 0, counts, 1) / np.maximum(rate, 1e-30)), 0)
    terms = 2 * (rate - counts + log_term)
    return float(terms.mean() if pixels is None else terms[pixels[held]].mean())


def run(data: SimulatedData, *, start: np.ndarray | None = None, iterations: int = 40, patience: int = 4,
        fraction: float = FRACTION, holdout: str = "patterns", diffraction: np.ndarray | None = None) -> object:
    config = ReconstructionConfig(method="ml", iterations=iterations, device="cpu", holdout_fraction=fraction,
                                  patience=patience, holdout=holdout)
    positions = np.stack([data.xcoords, data.ycoords], axis=1)
    return reconstruct_iterative(data.diffraction if diffraction is None else diffraction, positions,
                                 data.probeGuess, data.objectGuess.shape, nphotons=data.nphotons,
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


def held_out_pixels(n_patterns: int, side: int, seed: int = 0) -> np.ndarray:
    """(P, N, N) bool: the pixels a run of seed `seed` holds out (as reconstruct_iterative draws them)."""
    holdout = PixelHoldout(n_patterns, side, FRACTION, np.random.default_rng(seed), torch.device("cpu"))
    return holdout.held(np.arange(n_patterns)).numpy()


def test_held_out_pixels_stay_out_of_the_updates_and_alone_are_scored(scan: SimulatedData) -> None:
    pixels = held_out_pixels(36, 32)
    assert (pixels.sum(axis=(1, 2)) == round(FRACTION * 32 * 32)).all()
    assert (pixels[0] != pixels[1]).any()  # neighbours hold out different pixels
    result = run(scan, iterations=3, patience=10, holdout="pixels")
    # other counts in the held-out pixels: the same updates (each iterate's fit to the kept pixels), another
    # held-out fit
    changed = np.where(pixels, 2.0 * scan.diffraction + 1.0, scan.diffraction).astype(np.float32)
    other = run(scan, iterations=3, patience=10, holdout="pixels", diffraction=changed)
    fits = [[r.deviance for r in run_.history] for run_ in (result, other)]  # type: ignore[attr-defined]
    assert fits[0] == fits[1] and len(set(fits[0])) == 3
    held_fits = [[r.holdout_deviance for r in run_.history] for run_ in (result, other)]  # type: ignore
    assert all(a != pytest.approx(b, rel=1e-3) for a, b in zip(*held_fits, strict=True))
    everything = np.arange(36)
    ones = np.ones(scan.objectGuess.shape, dtype=np.complex64)
    scale = result.intensity_scale  # type: ignore[attr-defined]
    summary = result.holdout  # type: ignore[attr-defined]
    assert summary.kind == "pixels" and summary.n_patterns == 36 and summary.pixels_per_pattern == 205
    assert summary.initial_deviance == pytest.approx(deviance(scan, ones, scale, everything, pixels), rel=1e-6)
    assert result.history[0].deviance == pytest.approx(  # type: ignore[attr-defined]
        deviance(scan, ones, scale, everything, ~pixels), rel=1e-6)
    assert other.holdout.initial_deviance != pytest.approx(summary.initial_deviance, rel=1e-3)  # type: ignore


def test_held_out_pixels_stop_ml_nearer_the_truth_than_held_out_patterns(scan: SimulatedData) -> None:
    """The tiny case at 1e3 and 1e5 (60 iterations at most, patience 6): MAE of the amplitude against the
    truth, measured 0.163 (pixels) against 0.188 (patterns) and 0.189 (no holdout) at 1e3, and 0.036
    against 0.044 (and 0.031 for all 60 iterations) at 1e5, where whole held-out patterns stop ML early."""
    for data in (scan, simulate_dataset(36, nphotons=1e5, overlap=0.7, seed=2, N=32)):
        error = {}
        for holdout in ("pixels", "patterns"):
            result = run(data, iterations=60, patience=6, holdout=holdout)
            scores = metrics.evaluate(result.recon_record().object, data.objectGuess)  # type: ignore[attr-defined]
            error[holdout] = scores.amplitude.mae
        assert error["pixels"] < 0.9 * error["patterns"], error


def test_held_out_pixels_are_for_ml_only() -> None:
    for method in ("epie", "ptychi-lsqml"):
        with pytest.raises(BaselineError, match=f"holdout pixels works with method ml only: {method}"):
            ReconstructionConfig(method=method, holdout="pixels", holdout_fraction=0.1)
    with pytest.raises(BaselineError, match="holdout"):
        ReconstructionConfig(method="ml", holdout="pixel")
    with pytest.raises(BaselineError, match="pixels; pick a fraction"):
        PixelHoldout(4, 4, 0.01, np.random.default_rng(0), torch.device("cpu"))
