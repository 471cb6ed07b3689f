"""Progress against the flat-object plateau: reference losses, the noise floor, escape, restarts, schedule."""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch
from scipy.stats import poisson

from ptycho_torch import physics
from ptycho_torch.dataset import PtychoDataset
from ptycho_torch.device import DistContext
from ptycho_torch.memmap_bridge import MemmapDatasetBridge
from ptycho_torch.simulate import simulate_dataset, write_npz
from ptycho_torch.train.config import TrainConfig
from ptycho_torch.train.data import GroupRows, mean_total_counts
from ptycho_torch.train.loop import build_model
from ptycho_torch.train.progress import (
    CHECK_EVERY,
    LR_FLOOR,
    PlateauWatch,
    ReferenceLosses,
    poisson_noise_deviance,
    reference_losses,
)


def test_noise_deviance_is_the_poisson_expectation() -> None:
    for rate in (0.003, 0.05, 0.7, 4.0, 300.0, 5000.0):
        k = np.arange(int(rate + 20 * rate**0.5 + 40))
        expected = float(np.sum(poisson.pmf(k, rate) * k * np.log(np.maximum(k, 1))) - rate * math.log(rate))
        assert poisson_noise_deviance(np.array([rate]))[0] == pytest.approx(expected, abs=2e-3)
    assert poisson_noise_deviance(np.array([0.0]))[0] == 0.0
    assert poisson_noise_deviance(np.array([1e6]))[0] == pytest.approx(0.5)


def test_references_bracket_the_true_object(tmp_path: Path) -> None:
    """On noisy simulated data the flat object loses to the truth, and the truth is close to `best`."""
    data = simulate_dataset(64, nphotons=1e5, overlap=0.7, seed=0, N=16)
    path = write_npz(tmp_path / "d.npz", data)
    bridge = MemmapDatasetBridge(path)
    scale = physics.intensity_scale(torch.from_numpy(bridge.probeGuess), mean_total_counts(bridge))
    model = build_model(TrainConfig(data=str(path), output_dir="o", depth=2, n_filters=4), bridge, scale)
    dataset = PtychoDataset(bridge)
    subset = GroupRows(dataset, np.arange(len(dataset)))
    refs = reference_losses(model, subset, 16, DistContext(), torch.device("cpu"))
    batch = subset[np.arange(len(subset))]
    centres = batch["coords_global"].double().reshape(-1, 2)
    patches = physics.extract_patches(torch.from_numpy(data.objectGuess), centres, 16,
                                      interpolation="fourier", pad=physics.FOURIER_PAD).reshape(-1, 1, 16, 16)
    amplitude = physics.diffraction_amplitude(patches, model.probe)
    counts = batch["diffraction"].double().square()
    fitted = amplitude * float((counts.sum() / (amplitude.double() * scale).square().sum()).sqrt())  # |O| scale
    truth = float(model.loss_of(fitted, batch["diffraction"]))
    assert refs.flat > truth > refs.best - 0.05 * (refs.flat - refs.best)
    assert refs.gap_closed(truth) == pytest.approx(1.0, abs=0.15)
    assert refs.gap_closed(refs.flat) == 0.0


def _watch(**overrides: object) -> tuple[PlateauWatch, torch.optim.Optimizer]:
    config = TrainConfig(data="d", output_dir="o", **{"plateau_steps": 100, "escape_gap": 0.1, **overrides})
    optimizer = torch.optim.Adam([torch.nn.Parameter(torch.zeros(1))], lr=config.lr)
    return PlateauWatch(config, ReferenceLosses(flat=0.0, best=-1.0)), optimizer


def test_watch_restarts_an_attempt_still_on_the_plateau_and_never_one_that_escaped() -> None:
    watch, optimizer = _watch()
    assert not watch.observe([-0.05] * CHECK_EVERY, 50, optimizer)  # 5% closed, too early to judge
    assert watch.observe([-0.05] * CHECK_EVERY, 100, optimizer)  # still under 10% at plateau_steps
    escaped, optimizer = _watch()
    assert not escaped.observe([-0.2] * CHECK_EVERY, 25, optimizer) and escaped.escaped_at == 25
    assert not escaped.observe([-0.01] * 100, 500, optimizer)  # off the plateau once: never restarted
    never, optimizer = _watch(plateau_steps=0)
    assert not never.observe([0.0] * CHECK_EVERY, 10_000, optimizer)
    undefined = PlateauWatch(TrainConfig(data="d", output_dir="o"), ReferenceLosses(math.nan, math.nan))
    assert not undefined.observe([0.0] * CHECK_EVERY, 10_000, optimizer)


def test_plateau_schedule_halves_the_rate_when_progress_stalls_after_the_escape() -> None:
    watch, optimizer = _watch(lr_patience=100, lr=1e-3)
    watch.observe([-0.3] * 50, 50, optimizer)  # escaped at 30%
    watch.observe([-0.3] * 50, 100, optimizer)
    assert optimizer.param_groups[0]["lr"] == 1e-3  # stalled for 50 steps only
    watch.observe([-0.3] * 50, 150, optimizer)
    assert optimizer.param_groups[0]["lr"] == pytest.approx(5e-4)  # stalled for 100 steps: halved
    watch.observe([-0.5] * 50, 200, optimizer)  # progress: the rate stays
    assert optimizer.param_groups[0]["lr"] == pytest.approx(5e-4)
    for step in range(250, 5000, 50):
        watch.observe([-0.5] * 50, step, optimizer)
    assert optimizer.param_groups[0]["lr"] == pytest.approx(1e-3 * LR_FLOOR)  # never below the floor
    constant, optimizer = _watch(lr_schedule="constant", lr_patience=100)
    for step in range(50, 2000, 50):
        constant.observe([-0.3] * 50, step, optimizer)
    assert optimizer.param_groups[0]["lr"] == 1e-3


def test_watch_state_round_trips() -> None:
    watch, optimizer = _watch()
    watch.observe([-0.3] * 30, 30, optimizer)
    again, _ = _watch()
    again.load_state_dict(watch.state_dict())
    assert again.state_dict() == watch.state_dict() and again.gap_closed() == watch.gap_closed()
