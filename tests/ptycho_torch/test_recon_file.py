"""recon.npz: the record's three arrays, written atomically, read back by load_recon; what a record refuses."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from ptycho_torch.errors import EvaluateError
from ptycho_torch.recon_file import RECON_NAME, ReconRecord, load_recon, save_recon


def _record() -> ReconRecord:
    rng = np.random.default_rng(0)
    estimate = rng.standard_normal((5, 6)) + 1j * rng.standard_normal((5, 6))
    weight = np.linspace(0.0, 2.0, 30).reshape(5, 6)
    return ReconRecord.masked(estimate, weight >= 0.1, weight)


def test_masked_sets_nan_outside_coverage_and_the_stored_dtypes() -> None:
    record = _record()
    assert record.object.dtype == np.complex64 and record.coverage.dtype == np.bool_
    assert record.weight.dtype == np.float32
    assert np.isnan(record.object[~record.coverage]).all() and np.isfinite(record.object[record.coverage]).all()


def test_saved_file_holds_exactly_the_three_arrays_and_loads_back(tmp_path: Path) -> None:
    record = _record()
    path = tmp_path / RECON_NAME
    save_recon(path, record)
    assert sorted(p.name for p in tmp_path.iterdir()) == [RECON_NAME], "no temporary file left behind"
    with np.load(path, allow_pickle=False) as npz:
        assert sorted(npz.files) == ["coverage", "object", "weight"]
        np.testing.assert_array_equal(npz["weight"], record.weight)
    obj, coverage = load_recon(path)
    np.testing.assert_array_equal(obj, record.object)
    np.testing.assert_array_equal(coverage, record.coverage)


def test_a_record_refuses_arrays_that_do_not_share_its_frame() -> None:
    good = _record()
    with pytest.raises(ValueError, match="complex 2-D"):
        ReconRecord(object=np.abs(good.object), coverage=good.coverage, weight=good.weight)
    with pytest.raises(ValueError, match="weight is"):
        ReconRecord(object=good.object, coverage=good.coverage, weight=good.weight[:4])
    with pytest.raises(ValueError, match="coverage must be bool"):
        ReconRecord(object=good.object, coverage=good.coverage.astype(np.uint8), weight=good.weight)


def test_load_recon_names_what_it_found(tmp_path: Path) -> None:
    np.savez(tmp_path / "two.npz", a=np.ones((3, 3), np.complex64), b=np.ones((3, 3), np.complex64))
    with pytest.raises(EvaluateError, match=r"exactly one complex 2-D array .* found 2"):
        load_recon(tmp_path / "two.npz")
    np.save(tmp_path / "one.npy", np.ones((3, 4), np.complex64))
    obj, coverage = load_recon(tmp_path / "one.npy")
    assert obj.shape == (3, 4) and coverage is None
