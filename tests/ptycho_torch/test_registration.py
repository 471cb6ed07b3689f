"""Registration is bounded and applied only on a clear correlation peak; metrics.evaluate reports when it was
skipped, and why."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.ndimage import gaussian_filter

from ptycho_torch.metrics import AlignOptions, evaluate
from ptycho_torch.registration import MAX_SHIFT_FRACTION, correlation, max_shift, register

SIZE = 96


def _truth(seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    amplitude = 0.75 + 0.2 * np.tanh(gaussian_filter(rng.standard_normal((SIZE, SIZE)), 2.0, mode="wrap") * 3)
    phase = 0.8 * np.tanh(gaussian_filter(rng.standard_normal((SIZE, SIZE)), 2.0, mode="wrap") * 3)
    return amplitude * np.exp(1j * phase)


def test_a_small_shift_of_a_good_reconstruction_is_applied() -> None:
    truth = _truth(1)
    recon = np.roll(truth, (3, -2), axis=(0, 1))
    result = evaluate(recon, truth).registration.as_dict()  # as metrics.json has it
    assert result["applied"] and result["shift"] == pytest.approx([-3.0, 2.0], abs=0.05)
    assert result["found_shift"] == [-3.0, 2.0] and result["peak_correlation"] > 0.9
    assert result["max_shift_px"] == pytest.approx(MAX_SHIFT_FRACTION * SIZE)
    assert result["reason"].startswith("applied: clear peak")


def test_an_unrelated_reconstruction_is_not_shifted_onto_a_spurious_peak() -> None:
    """Noise correlates with the truth somewhere by chance; an unbounded search shifted it there."""
    truth = _truth(2)
    rng = np.random.default_rng(3)
    noise = 0.8 + 0.1 * (rng.standard_normal(truth.shape) + 1j * rng.standard_normal(truth.shape))
    report = evaluate(noise, truth)
    result = report.registration.as_dict()
    assert not result["applied"] and result["shift"] == [0.0, 0.0]
    assert result["reason"].startswith("skipped: no clear correlation peak") and result["peak_correlation"] < 0.3
    assert any(note.startswith("registration skipped: no clear correlation peak") for note in report.notes)
    unregistered = evaluate(noise, truth, options=AlignOptions(register=False))
    assert report.amplitude == unregistered.amplitude and report.phase == unregistered.phase


def test_a_shift_beyond_the_bound_is_skipped_and_named() -> None:
    truth = _truth(4)
    recon = np.roll(truth, (25, 0), axis=(0, 1))  # a quarter of the field
    result = evaluate(recon, truth).registration.as_dict()  # as metrics.json has it
    assert not result["applied"] and result["shift"] == [0.0, 0.0] and result["found_shift"] == [-25.0, 0.0]
    assert "exceeds the bound of 9.6 px" in result["reason"]


def test_a_peak_with_a_rival_outside_its_lobe_is_not_clear() -> None:
    """Stripes repeat every 12 px: shifts of one period correlate as well as none, so no shift is certain."""
    cols = np.arange(SIZE)[None, :] * np.ones((SIZE, 1))
    truth = np.exp(1j * np.sin(2 * np.pi * cols / 12)) * (1 + 0.3 * np.cos(2 * np.pi * cols / 12))
    found = register(truth, np.roll(truth, 1, axis=1), (SIZE, SIZE), upsample_factor=10)
    assert not found.applied and found.shift == (0.0, 0.0)
    assert "outside its lobe" in found.reason


def test_correlation_is_normalised_and_its_peak_sits_at_the_shift() -> None:
    truth = _truth(5)
    surface = correlation(truth, np.roll(truth, (4, 7), axis=(0, 1)))
    assert surface.max() == pytest.approx(1.0, abs=1e-9)
    assert np.unravel_index(np.argmax(surface), surface.shape) == (SIZE - 4, SIZE - 7)
    assert max_shift((8, 200)) == 1.0 and max_shift((50, 70)) == pytest.approx(5.0)
