"""The contract's pure decisions: key resolution, layout, dtype conversion, value checks."""
from __future__ import annotations

import logging
import pickle

import numpy as np
import pytest

from ptycho_torch import data_contract as dc
from ptycho_torch.data_contract import DataContractError, Layout, ValueKind
from ptycho_torch.errors import PtychoTorchError

F32 = np.dtype(np.float32)


class TestDataContractError:
    def test_is_a_keyerror_with_a_clean_message(self) -> None:
        err = DataContractError("a.npz: something is wrong", path="a.npz", reason="x")
        assert isinstance(err, KeyError)
        assert isinstance(err, PtychoTorchError)
        assert str(err) == "a.npz: something is wrong"  # KeyError would have added quotes

    def test_caught_by_old_keyerror_handlers(self) -> None:
        with pytest.raises(KeyError):
            dc.resolve_diffraction_key(["xcoords"], {}, "f.npz")

    def test_survives_pickling_for_worker_processes(self) -> None:
        err = DataContractError("boom", path="p", reason="r")
        assert str(pickle.loads(pickle.dumps(err))) == "boom"


class TestResolveKey:
    def test_canonical_only(self) -> None:
        assert dc.resolve_diffraction_key(["diffraction", "xcoords"], {}, "f") == "diffraction"

    def test_legacy_only(self) -> None:
        assert dc.resolve_diffraction_key(["diff3d", "xcoords"], {}, "f") == "diff3d"

    def test_both_same_prefers_canonical_silently(self, caplog: pytest.LogCaptureFixture) -> None:
        stored = {"diffraction": (F32, (2, 4, 4)), "diff3d": (F32, (2, 4, 4))}
        with caplog.at_level(logging.WARNING):
            assert dc.resolve_diffraction_key(["diff3d", "diffraction"], stored, "f") == "diffraction"
        assert caplog.records == []

    def test_both_differ_warns_and_prefers_canonical(self, caplog: pytest.LogCaptureFixture) -> None:
        stored = {"diffraction": (F32, (2, 4, 4)), "diff3d": (np.dtype(np.float64), (2, 4, 4))}
        with caplog.at_level(logging.WARNING):
            assert dc.resolve_diffraction_key(["diff3d", "diffraction"], stored, "f") == "diffraction"
        assert len(caplog.records) == 1
        assert "differ" in caplog.text and "float64" in caplog.text

    def test_neither_names_everything_needed(self) -> None:
        with pytest.raises(DataContractError) as info:
            dc.resolve_diffraction_key(["ycoords", "xcoords"], {}, "/data/scan.npz")
        msg = str(info.value)
        for part in ("'diffraction'", "'diff3d'", "['xcoords', 'ycoords']", "/data/scan.npz",
                     "docs/specs/data_contracts.md#keys"):
            assert part in msg
        assert info.value.reason == "missing-key"


class TestLayout:
    def test_nhw(self) -> None:
        assert dc.decide_layout((5, 8, 8), 5, (8, 8), key="k", path="p") is Layout.NHW

    def test_cube_is_always_nhw(self) -> None:
        assert dc.decide_layout((8, 8, 8), 8, (8, 8), key="k", path="p") is Layout.NHW

    def test_legacy_only_when_unambiguous(self) -> None:
        assert dc.decide_layout((8, 8, 5), 5, (8, 8), key="k", path="p") is Layout.LEGACY_HWN

    def test_non_square_patterns(self) -> None:
        assert dc.decide_layout((3, 4, 6), 3, (4, 6), key="k", path="p") is Layout.NHW
        assert dc.decide_layout((4, 6, 3), 3, (4, 6), key="k", path="p") is Layout.LEGACY_HWN

    @pytest.mark.parametrize(
        ("shape", "n", "probe", "reason", "needle"),
        [
            ((5, 8), 5, (8, 8), "ndim", "2 dimensions"),
            ((1, 5, 8, 8), 5, (8, 8), "ndim", "4 dimensions"),
            ((0, 8, 8), 0, (8, 8), "empty", "empty dataset"),
            ((6, 8, 8), 5, (8, 8), "length", "length mismatch"),
            ((5, 8, 8), 5, (16, 16), "pattern-size", "pattern size mismatch"),
            ((8, 8, 5), 5, (4, 4), "pattern-size", "pattern size mismatch"),
            ((7, 3, 9), 5, (8, 8), "length", "length mismatch"),
        ],
    )
    def test_errors(self, shape: tuple[int, ...], n: int, probe: tuple[int, int], reason: str,
                    needle: str) -> None:
        with pytest.raises(DataContractError) as info:
            dc.decide_layout(shape, n, probe, key="diffraction", path="p.npz")
        assert info.value.reason == reason
        assert needle in str(info.value) and "p.npz" in str(info.value)
        assert "data_contracts.md#layouts" in str(info.value)


class TestConversion:
    def test_kinds(self) -> None:
        assert dc.value_kind(np.dtype(np.float16), key="k", path="p") is ValueKind.AMPLITUDE
        assert dc.value_kind(np.dtype(np.uint16), key="k", path="p") is ValueKind.COUNTS
        for bad in (np.complex64, np.bool_, "U3"):
            with pytest.raises(DataContractError, match="dtype"):
                dc.value_kind(np.dtype(bad), key="k", path="p")

    def test_uint16_counts_do_not_overflow(self) -> None:
        counts = np.array([[[0, 1, 65535, 40000]]], dtype=np.uint16)
        out = dc.to_amplitude(counts, ValueKind.COUNTS, first_index=0, key="k", path="p")
        assert out.dtype == F32
        np.testing.assert_allclose(out, np.sqrt(counts.astype(np.float64)), rtol=1e-7)
        assert out[0, 0, 2] == pytest.approx(255.998, abs=1e-3)

    def test_negative_counts_name_the_pattern(self) -> None:
        counts = np.zeros((4, 2, 2), dtype=np.int32)
        counts[2, 1, 1] = -3
        with pytest.raises(DataContractError, match=r"negative counts \(first at pattern 12\)"):
            dc.to_amplitude(counts, ValueKind.COUNTS, first_index=10, key="k", path="p")

    @pytest.mark.parametrize(("value", "needle"), [(np.nan, "NaN or Inf"), (np.inf, "NaN or Inf"),
                                                   (-0.5, "negative amplitudes")])
    def test_bad_amplitudes(self, value: float, needle: str) -> None:
        chunk = np.ones((3, 2, 2), dtype=np.float64)
        chunk[1, 0, 0] = value
        with pytest.raises(DataContractError) as info:
            dc.to_amplitude(chunk, ValueKind.AMPLITUDE, first_index=0, key="diffraction", path="p")
        assert needle in str(info.value) and "pattern 1" in str(info.value)

    def test_float64_overflowing_float32_is_reported(self) -> None:
        chunk = np.full((1, 1, 1), 1e300)
        with pytest.raises(DataContractError, match="NaN or Inf"):
            dc.to_amplitude(chunk, ValueKind.AMPLITUDE, first_index=0, key="k", path="p")


class TestSmallArrays:
    def test_coords_become_float64(self) -> None:
        x, y = dc.check_coords(np.arange(3, dtype=np.int32), np.ones(3, np.float32), "p")
        assert x.dtype == np.float64 and y.dtype == np.float64

    def test_coords_errors(self) -> None:
        with pytest.raises(DataContractError, match="length mismatch"):
            dc.check_coords(np.zeros(3), np.zeros(4), "p")
        with pytest.raises(DataContractError, match="expected \\(N,\\)"):
            dc.check_coords(np.zeros((3, 1)), np.zeros((3, 1)), "p")
        with pytest.raises(DataContractError, match="NaN or Inf"):
            dc.check_coords(np.array([0.0, np.nan]), np.zeros(2), "p")
        with pytest.raises(DataContractError, match="real numeric"):
            dc.check_coords(np.zeros(2, complex), np.zeros(2), "p")

    def test_probe(self) -> None:
        assert dc.check_complex_2d(np.ones((4, 4)), "probeGuess", "p").dtype == np.complex64
        with pytest.raises(DataContractError, match="2-D"):
            dc.check_complex_2d(np.ones(4), "probeGuess", "p")

    def test_scan_index_and_nphotons(self) -> None:
        np.testing.assert_array_equal(dc.check_scan_index(None, 3, "p"), [0, 1, 2])
        with pytest.raises(DataContractError, match="integers"):
            dc.check_scan_index(np.zeros(3), 3, "p")
        assert dc.check_nphotons(np.array(1e4), "p") == 1e4
        assert dc.check_nphotons(None, "p") is None
        with pytest.raises(DataContractError, match="positive"):
            dc.check_nphotons(np.array(-1.0), "p")


def test_every_section_an_error_can_cite_exists_in_the_spec() -> None:
    import re
    from pathlib import Path

    spec = Path(__file__).resolve().parents[2] / dc.SPEC_PATH
    anchors = {re.sub(r"[^a-z0-9 -]", "", h.lower()).strip().replace(" ", "-")
               for h in re.findall(r"^#+ (.+)$", spec.read_text(), flags=re.MULTILINE)}
    cited = set(re.findall(r'section="([a-z-]+)"', "".join(
        Path(dc.__file__).with_name(name).read_text()
        for name in ("data_contract.py", "memmap_bridge.py", "npz_format.py", "npy_cache.py"))))
    assert {"keys", "dtypes", "layouts", "values", "files"} <= cited
    assert cited <= anchors, f"sections cited but missing from {dc.SPEC_PATH}: {cited - anchors}"
    assert {"grouped-data", "dataset-samples", "simulated-data"} <= anchors
