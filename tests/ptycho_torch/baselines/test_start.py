"""Starting an iterative method from a reconstruction file (baselines.start, reconstruct_from_npz's
init_from): the start is used, its amplitude scale is fitted to the counts, uncovered pixels are filled.

Tiny case: 36 grid positions (overlap 0.7) of 32 x 32 patterns at 1e5 counts (simulate_dataset, seed 2).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from ptycho_torch import physics
from ptycho_torch.baselines import ReconstructionConfig, reconstruct_from_npz, reconstruct_iterative
from ptycho_torch.baselines.start import fit_amplitude_scale, load_initial_object
from ptycho_torch.recon_file import ReconRecord, save_recon
from ptycho_torch.simulate import SimulatedData, simulate_dataset, write_npz

pytestmark = pytest.mark.usefixtures("one_thread")  # tests/ptycho_torch/conftest.py


@pytest.fixture(scope="module")
def scan(tmp_path_factory: pytest.TempPathFactory) -> tuple[SimulatedData, Path]:
    data = simulate_dataset(36, nphotons=1e5, overlap=0.7, seed=2, N=32)
    return data, write_npz(tmp_path_factory.mktemp("data") / "scan.npz", data)


def recon_file(path: Path, obj: np.ndarray, uncovered_rows: int = 3) -> Path:
    """A recon.npz of obj, NaN (not covered) in its first rows, as infer writes one."""
    coverage = np.ones(obj.shape, dtype=bool)
    coverage[:uncovered_rows] = False
    save_recon(path, ReconRecord.masked(obj, coverage, np.ones(obj.shape, dtype=np.float32)))
    return path


@pytest.mark.parametrize("method", ["ml", "epie"])
def test_starting_from_the_truth_fits_far_better_than_the_default_start(
        scan: tuple[SimulatedData, Path], tmp_path: Path, method: str) -> None:
    data, path = scan
    truth = recon_file(tmp_path / "truth.npz", data.objectGuess)
    config = ReconstructionConfig(method=method, iterations=1, device="cpu")
    default = reconstruct_from_npz(path, config).history[0].deviance
    started = reconstruct_from_npz(path, config, init_from=truth).history[0].deviance
    assert started < 0.1 * default, (started, default)
    assert started < 2.0  # about 1 per bright pixel at the truth under Poisson noise


def test_the_scale_fit_recovers_a_known_factor(scan: tuple[SimulatedData, Path]) -> None:
    data, _ = scan
    probe = torch.from_numpy(data.probeGuess)
    truth = torch.from_numpy(data.objectGuess)
    centres = torch.from_numpy(np.stack([data.xcoords, data.ycoords], axis=1).astype(np.float32))
    scale = 7.5
    measured = 3.0 * scale * physics.forward(truth, probe, centres)  # noiseless counts of 3 x the truth
    assert fit_amplitude_scale(truth, probe, scale, lambda: iter([(measured, centres)])) == pytest.approx(3.0)
    halves = [(measured[:18], centres[:18]), (measured[18:], centres[18:])]
    assert fit_amplitude_scale(truth / 4, probe, scale, lambda: iter(halves)) == pytest.approx(12.0)


def test_a_scaled_start_is_brought_back_to_the_data_s_scale(scan: tuple[SimulatedData, Path],
                                                             tmp_path: Path) -> None:
    data, path = scan
    config = ReconstructionConfig(method="ml", iterations=1, device="cpu")
    one = reconstruct_from_npz(path, config, init_from=recon_file(tmp_path / "one.npz", data.objectGuess))
    quarter = reconstruct_from_npz(path, config,
                                   init_from=recon_file(tmp_path / "quarter.npz", data.objectGuess / 4))
    assert one.initial_scale is not None and quarter.initial_scale is not None
    assert quarter.initial_scale == pytest.approx(4 * one.initial_scale, rel=1e-4)
    assert quarter.history[0].deviance == pytest.approx(one.history[0].deviance, rel=1e-4)
    # the fitted scale minimises the Poisson deviance of the start: 10% either way fits the counts worse
    positions = np.stack([data.xcoords, data.ycoords], axis=1)

    def start_deviance(obj: np.ndarray) -> float:
        result = reconstruct_iterative(data.diffraction, positions, data.probeGuess, obj.shape, config=config,
                                       initial_object=obj)
        return result.history[0].deviance

    best = start_deviance(data.objectGuess * one.initial_scale)
    assert best == pytest.approx(one.history[0].deviance, rel=1e-4)
    for factor in (0.9, 1.1):
        assert start_deviance(data.objectGuess * one.initial_scale * factor) > best + 0.01


def test_uncovered_pixels_are_filled_with_the_covered_mean_amplitude(scan: tuple[SimulatedData, Path],
                                                                     tmp_path: Path) -> None:
    data, _ = scan
    path = recon_file(tmp_path / "r.npz", data.objectGuess, uncovered_rows=5)
    start = load_initial_object(path, data.objectGuess.shape)
    rows = data.objectGuess.shape[1] * 5
    assert start.file.filled_pixels == rows and start.file.covered_pixels == data.objectGuess.size - rows
    assert np.isfinite(start.object).all()
    expected = np.abs(data.objectGuess[5:]).mean()
    np.testing.assert_allclose(start.object[:5], expected, rtol=1e-5)
    np.testing.assert_array_equal(start.object[5:], data.objectGuess[5:].astype(np.complex64))
    assert start.file.name == "r.npz" and len(start.file.sha256) == 64
