"""pty-chi's LSQML through our conversions: pty-chi's forward model reproduces our simulator, the true object
round-trips unchanged and scores perfectly, and on sub-pixel scans our ML and pty-chi's LSQML reconstruct
data from either simulator equally well (docs/findings.md, PHYS-001).

pty-chi is an optional dependency ('ptycho-harness[ptychi]', in the test extra): without it these tests skip,
except under CI, which installs it, where a missing pty-chi fails the run.
"""
from __future__ import annotations

import os
import random
from pathlib import Path

import numpy as np
import pytest
import torch

from ptycho_torch.baselines import ReconstructionConfig, reconstruct_iterative
from ptycho_torch.baselines.ptychi_lsqml import position_origin, ptychi_amplitudes
from ptycho_torch.evaluate import evaluate_files
from ptycho_torch.metrics import AlignOptions, evaluate
from ptycho_torch.recon_file import save_recon
from ptycho_torch.simulate import forward_amplitude, make_object
from tests.ptycho_torch.baselines.probes import plain_probe, sharp_probe, spectral_fraction_beyond

try:
    import ptychi  # noqa: F401
except ImportError:
    if os.environ.get("CI"):
        raise  # CI installs the [test] extra, which holds pty-chi: its absence there is a broken set-up
    pytest.skip("pty-chi is not installed: pip install 'ptycho-harness[ptychi]'", allow_module_level=True)


pytestmark = pytest.mark.usefixtures("one_thread")  # tests/ptycho_torch/conftest.py


def test_position_origin_puts_the_window_where_ours_is() -> None:
    assert position_origin(64) == -0.5 and position_origin(32) == -0.5 and position_origin(15) == 0.0


@pytest.mark.parametrize("n", [32, 15])
def test_ptychi_forward_model_reproduces_our_simulator(n: int) -> None:
    """Positions, fftshift and normalisation converted: pty-chi's predicted patterns equal ours to float
    precision at sub-pixel positions, for even and odd N. (At exact half pixels pty-chi rounds half to even:
    its window differs by one pixel there, measured 2-9% of the peak for this spread-out probe.)"""
    obj = make_object((80, 80), seed=3)
    probe = plain_probe(n)
    positions = np.array([[30.3, 31.7], [40.0, 35.0], [36.45, 29.5], [44.9, 45.2]])
    ours = forward_amplitude(obj, probe, positions[:, 0], positions[:, 1])
    theirs = ptychi_amplitudes(obj, probe, positions)
    assert theirs.shape == ours.shape and theirs.dtype == np.float32
    np.testing.assert_allclose(theirs, ours, rtol=0, atol=1e-5 * float(ours.max()))


def test_ptychi_leaves_global_state_as_it_found_it() -> None:
    """pty-chi seeds torch, numpy and random and sets torch's default dtype and device; we put them back."""
    torch.manual_seed(11)
    np.random.seed(11)
    random.seed(11)
    before = (torch.random.get_rng_state(), np.random.get_state()[1].copy(), random.getstate(),
              torch.get_default_dtype(), torch.get_default_device())
    ptychi_amplitudes(make_object((48, 48), seed=1), plain_probe(16), np.array([[20.3, 24.6], [26.0, 23.5]]))
    assert torch.equal(torch.random.get_rng_state(), before[0])
    np.testing.assert_array_equal(np.random.get_state()[1], before[1])
    assert random.getstate() == before[2]
    assert (torch.get_default_dtype(), torch.get_default_device()) == before[3:]


def test_true_object_with_zero_iterations_scores_perfectly(tmp_path: Path) -> None:
    """The object goes to pty-chi and comes back through recon.npz and `evaluate` unchanged: no transpose,
    offset, scale or conjugation at the boundary."""
    n = 32
    truth = make_object((96, 96), seed=4)
    probe = plain_probe(n)
    grid = np.arange(30.0, 67.0, 6.0) + 0.3
    positions = np.stack(np.meshgrid(grid, grid), axis=-1).reshape(-1, 2)
    diffraction = forward_amplitude(truth, probe, positions[:, 0], positions[:, 1], nphotons=1e5, seed=1)
    config = ReconstructionConfig(method="ptychi-lsqml", iterations=0, device="cpu")
    result = reconstruct_iterative(diffraction, positions, probe, truth.shape, config=config,
                                   initial_object=truth)
    assert result.history == () and result.object.shape == truth.shape
    np.testing.assert_allclose(result.object, truth, rtol=0, atol=1e-6)
    np.testing.assert_array_equal(result.probe, probe)
    save_recon(tmp_path / "recon.npz", result.recon_record())
    np.savez(tmp_path / "truth.npz", objectGuess=truth)
    report, _, _ = evaluate_files(tmp_path / "recon.npz", tmp_path / "truth.npz")
    for scores in (report.scores.amplitude, report.scores.phase):
        assert scores.ssim == pytest.approx(1.0, abs=1e-6), scores
        assert scores.mae < 1e-6


class SubPixelScan:
    """49 positions of 32 x 32 patterns at random sub-pixel offsets over a 100 x 100 object, with the sharp
    probe (61% of its spectral energy beyond radius 12 px: where moving the object patch and moving the
    probe differ by ~20% in intensity), dose 1e6 per pattern."""

    def __init__(self, simulator: str) -> None:
        self.truth = make_object((100, 100), seed=3, feature_px=5.0)
        self.probe = sharp_probe(32)
        grid = np.arange(26.0, 75.0, 8.0)
        positions = np.stack(np.meshgrid(grid, grid), axis=-1).reshape(-1, 2)
        self.positions = positions + np.random.default_rng(0).uniform(-0.5, 0.5, positions.shape)
        if simulator == "ours":
            clean = forward_amplitude(self.truth, self.probe, self.positions[:, 0], self.positions[:, 1])
        else:
            clean = ptychi_amplitudes(self.truth, self.probe, self.positions)
        counts = np.random.default_rng(1).poisson(np.square(clean.astype(np.float64)) * self._scale(clean))
        self.diffraction = np.sqrt(counts).astype(np.float32)

    @staticmethod
    def _scale(clean: np.ndarray) -> float:
        return 1e6 / float(np.square(clean.astype(np.float64)).sum(axis=(1, 2)).mean())

    def ssim(self, method: str, iterations: int) -> tuple[float, float]:
        config = ReconstructionConfig(method=method, iterations=iterations, batch_size=16, device="cpu")
        result = reconstruct_iterative(self.diffraction, self.positions, self.probe, self.truth.shape,
                                       config=config)
        m = evaluate(result.object, self.truth, mask=result.coverage, options=AlignOptions(register=False))
        return m.amplitude.ssim, m.phase.ssim


@pytest.mark.slow
@pytest.mark.parametrize("simulator", ["ours", "ptychi"])
def test_ml_and_lsqml_reconstruct_data_from_either_simulator_alike(simulator: str) -> None:
    """Measured (CPU, 40 iterations, amplitude / phase SSIM): our data: ML 0.998 / 0.995, LSQML 0.995 /
    0.989; pty-chi's data: the same. With the object patch moved instead of the probe (the earlier
    simulator), LSQML scored 0.71 / 0.59 on our data at 50 iterations, ML 0.999 / 0.999."""
    scan = SubPixelScan(simulator)
    assert spectral_fraction_beyond(scan.probe, 12) > 0.55
    ml = scan.ssim("ml", 40)
    lsqml = scan.ssim("ptychi-lsqml", 40)
    for ours, theirs in zip(ml, lsqml, strict=True):
        assert ours > 0.9 and theirs > 0.9, (simulator, ml, lsqml)
        assert abs(ours - theirs) < 0.15, (simulator, ml, lsqml)
