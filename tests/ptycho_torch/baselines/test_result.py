"""IterativeResult: the recon.npz record it turns into."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from ptycho_torch.baselines import IterativeResult, ReconstructionConfig
from ptycho_torch.recon_file import load_recon, save_recon


def test_recon_record_masks_the_uncovered_pixels_and_round_trips(tmp_path: Path) -> None:
    estimate = (np.arange(12).reshape(3, 4) + 1j).astype(np.complex64)
    weight = np.array([[0.0, 0.05, 0.2, 1.0]] * 3, dtype=np.float32)
    coverage = weight >= 0.1
    result = IterativeResult(object=estimate, probe=np.ones((2, 2), np.complex64), coverage=coverage,
                             weight=weight, history=(), intensity_scale=1.0, seconds=1.0, n_patterns=4,
                             config=ReconstructionConfig(), device="cpu")
    record = result.recon_record()
    assert record.object.dtype == np.complex64 and record.weight.dtype == np.float32
    assert np.isnan(record.object[:, :2]).all()
    np.testing.assert_array_equal(record.object[:, 2:], estimate[:, 2:])
    np.testing.assert_array_equal(record.coverage, coverage)
    save_recon(tmp_path / "recon.npz", record)
    obj, loaded_coverage = load_recon(tmp_path / "recon.npz")
    np.testing.assert_array_equal(obj, record.object)
    np.testing.assert_array_equal(loaded_coverage, coverage)
