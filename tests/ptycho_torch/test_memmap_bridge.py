"""MemmapDatasetBridge on real .npz files: keys, dtypes, layouts, in-place mapping, pickling, bad input.

The byte-level NPZ format is tested in test_npz_format.py, the conversion cache in test_npy_cache.py."""
from __future__ import annotations

import logging
import pickle
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ptycho_torch.data_contract import DataContractError
from ptycho_torch.memmap_bridge import MemmapDatasetBridge
from ptycho_torch.npy_cache import BESIDE_CACHE_DIRNAME
from tests.ptycho_torch.npz_samples import (
    ContractErrorChecks,
    cache_files,
    dataset_arrays,
    reference_amplitude,
    write_npz,
)


class TestMemmapBridgeParity:
    """The scenario: canonical and legacy keys both load, dtype float32 and (N,H,W) preserved."""

    def test_memmap_bridge_accepts_diffraction_legacy(self, tmp_path: Path,
                                                      caplog: pytest.LogCaptureFixture) -> None:
        arrays = dataset_arrays(10, 64)
        diff = arrays.pop("diffraction")
        variants = {
            "canonical": ({"diffraction": diff}, "diffraction"),
            "legacy": ({"diff3d": diff}, "diff3d"),
            "both": ({"diffraction": diff, "diff3d": diff.copy()}, "diffraction"),
        }
        for name, (keys, expected_key) in variants.items():
            path = write_npz(tmp_path / f"{name}.npz", {**arrays, **keys})
            with caplog.at_level(logging.WARNING):
                bridge = MemmapDatasetBridge(path)
            assert bridge.source_key == expected_key, name
            assert bridge.diffraction.dtype == np.float32, name
            assert bridge.diffraction.shape == (10, 64, 64), name
            assert isinstance(bridge.diffraction, np.memmap)
            assert bridge.diff3d is bridge.diffraction
            assert len(bridge) == 10
            np.testing.assert_array_equal(bridge.diffraction, diff)
            np.testing.assert_array_equal(bridge.xcoords, arrays["xcoords"])
        assert caplog.records == [], "identical canonical and legacy arrays must not warn"

    def test_both_keys_differing_warns_and_canonical_wins(self, tmp_path: Path,
                                                          caplog: pytest.LogCaptureFixture) -> None:
        arrays = dataset_arrays(6, 16)
        legacy = (arrays["diffraction"] * 2).astype(np.float64)
        path = write_npz(tmp_path / "both.npz", {**arrays, "diff3d": legacy})
        with caplog.at_level(logging.WARNING):
            bridge = MemmapDatasetBridge(path)
        assert bridge.source_key == "diffraction"
        np.testing.assert_array_equal(bridge.diffraction, arrays["diffraction"])
        warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
        assert len(warnings) == 1 and "differ" in warnings[0].getMessage()
        assert "diff3d" in warnings[0].getMessage() and str(path.resolve()) in warnings[0].getMessage()

    def test_neither_key_is_a_keyerror_naming_keys_file_and_spec(self, tmp_path: Path) -> None:
        arrays = dataset_arrays(4, 8)
        del arrays["diffraction"]
        path = write_npz(tmp_path / "nodiff.npz", arrays)
        with pytest.raises(KeyError) as info:
            MemmapDatasetBridge(path)
        err = info.value
        assert isinstance(err, DataContractError)
        msg = str(err)
        assert not msg.startswith(("'", '"'))
        for part in ("'diffraction'", "'diff3d'", "['probeGuess', 'xcoords', 'ycoords']", str(path.resolve()),
                     "docs/specs/data_contracts.md#keys"):
            assert part in msg, part

    def test_grouped_output_gridsize2_shape(self, tmp_path: Path) -> None:
        arrays = dataset_arrays(10, 64)
        bridge = MemmapDatasetBridge(write_npz(tmp_path / "d.npz", arrays))
        grouped = bridge.get_grouped_data(64, 7, 1, 2, seed=0)
        diff = np.asarray(grouped["diffraction"])
        assert diff.shape == (10, 64, 64, 4)
        assert diff.dtype == np.float32
        assert grouped["nn_indices"].shape == (10, 4)
        for b in range(10):
            for c in range(4):
                want = arrays["diffraction"][grouped["nn_indices"][b, c]]
                np.testing.assert_array_equal(diff[b, :, :, c], want)

    def test_grouped_output_gridsize1_has_one_channel(self, tmp_path: Path) -> None:
        bridge = MemmapDatasetBridge(write_npz(tmp_path / "d.npz", dataset_arrays(10, 64)))
        grouped = bridge.get_grouped_data(64, 7, 1, 1)
        assert grouped["diffraction"].shape == (10, 64, 64, 1)
        np.testing.assert_array_equal(grouped["nn_indices"][:, 0], np.arange(10))
        np.testing.assert_array_equal(grouped["coords_relative"], 0.0)


class TestConversions:
    @pytest.mark.parametrize("dtype", [np.float64, np.float16, np.uint16, np.int32])
    def test_other_dtypes_are_converted_and_say_so(self, tmp_path: Path, dtype: Any) -> None:
        arrays = dataset_arrays(5, 8, dtype=dtype)
        bridge = MemmapDatasetBridge(write_npz(tmp_path / "d.npz", arrays), cache_dir=tmp_path / "c")
        assert bridge.diffraction.dtype == np.float32 and bridge.diffraction.shape == (5, 8, 8)
        np.testing.assert_array_equal(bridge.diffraction, reference_amplitude(arrays["diffraction"]))
        summary = bridge.summary()
        assert ("sqrt(counts)" in summary) == (np.dtype(dtype).kind in "iu")
        assert f"{np.dtype(dtype)}" in summary

    def test_legacy_hwn_layout_is_transposed_and_reported(self, tmp_path: Path) -> None:
        arrays = dataset_arrays(5, 8, 6)
        stored = np.ascontiguousarray(arrays["diffraction"].transpose(1, 2, 0))  # (H, W, N)
        path = write_npz(tmp_path / "legacy.npz", {**arrays, "diffraction": stored})
        bridge = MemmapDatasetBridge(path, cache_dir=tmp_path / "c")
        np.testing.assert_array_equal(bridge.diffraction, arrays["diffraction"])
        assert "legacy layout (H,W,N)" in bridge.summary()

    def test_cube_is_never_transposed(self, tmp_path: Path) -> None:
        arrays = dataset_arrays(8, 8)
        path = write_npz(tmp_path / "cube.npz", arrays)
        bridge = MemmapDatasetBridge(path)
        np.testing.assert_array_equal(bridge.diffraction, arrays["diffraction"])
        assert bridge.storage == "in-place" and bridge.info()["notes"] == []

    @pytest.mark.parametrize("compress", [False, True])
    def test_fortran_order_is_rewritten(self, tmp_path: Path, compress: bool) -> None:
        arrays = dataset_arrays(7, 8, 5)
        stored = np.asfortranarray(arrays["diffraction"])
        path = write_npz(tmp_path / "f.npz", {**arrays, "diffraction": stored}, compress=compress)
        bridge = MemmapDatasetBridge(path, cache_dir=tmp_path / "c")
        assert bridge.storage == "cache"
        assert bridge.diffraction.flags.c_contiguous
        np.testing.assert_array_equal(bridge.diffraction, arrays["diffraction"])

    def test_optional_fields(self, tmp_path: Path) -> None:
        arrays = dataset_arrays(5, 8)
        obj = (np.arange(400).reshape(20, 20) * (1 + 1j)).astype(np.complex64)
        extra = {"objectGuess": obj, "scan_index": np.arange(5, 10, dtype=np.int32),
                 "nphotons": np.array(1e4), "comment": np.array([1, 2])}
        bridge = MemmapDatasetBridge(write_npz(tmp_path / "d.npz", {**arrays, **extra}))
        np.testing.assert_array_equal(bridge.objectGuess, obj)
        assert bridge.scan_index.dtype == np.int64 and list(bridge.scan_index) == [5, 6, 7, 8, 9]
        assert bridge.nphotons == 1e4
        assert "comment" in bridge.summary()
        bare = MemmapDatasetBridge(write_npz(tmp_path / "bare.npz", arrays))
        assert bare.objectGuess is None and bare.nphotons is None
        np.testing.assert_array_equal(bare.scan_index, np.arange(5))

    def test_info_is_json_ready(self, tmp_path: Path) -> None:
        import json

        bridge = MemmapDatasetBridge(write_npz(tmp_path / "d.npz", dataset_arrays(5, 8)))
        info = json.loads(json.dumps(bridge.info()))
        assert (info["n_patterns"], info["storage"], info["source_key"]) == (5, "in-place", "diffraction")


_DTYPES = [np.float32, np.float64, np.float16, np.uint16, np.int32]


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    n=st.integers(1, 6), h=st.integers(1, 7), w=st.integers(1, 7),
    dtype=st.sampled_from(_DTYPES), compress=st.booleans(), legacy_key=st.booleans(),
    seed=st.integers(0, 2**16),
)
def test_property_values_equal_reference_conversion(tmp_path_factory: pytest.TempPathFactory, n: int, h: int,
                                                    w: int, dtype: Any, compress: bool, legacy_key: bool,
                                                    seed: int) -> None:
    d = tmp_path_factory.mktemp("prop")
    arrays = dataset_arrays(n, h, w, seed=seed)
    rng = np.random.default_rng(seed)
    stored = (rng.random((n, h, w)) * 1000).astype(dtype)
    arrays.pop("diffraction")
    arrays["diff3d" if legacy_key else "diffraction"] = stored
    bridge = MemmapDatasetBridge(write_npz(d / "p.npz", arrays, compress=compress), cache_dir=d / "c",
                                 validate="full")
    assert bridge.diffraction.dtype == np.float32 and bridge.diffraction.shape == (n, h, w)
    np.testing.assert_array_equal(bridge.diffraction, reference_amplitude(stored))
    in_place = dtype == np.float32 and not compress
    assert bridge.storage == ("in-place" if in_place else "cache")
    assert bool(cache_files(d / "c")) == (not in_place)


class TestInPlaceMapping:
    def test_uncompressed_float32_maps_inside_the_npz(self, tmp_path: Path) -> None:
        arrays = dataset_arrays(10, 64)
        path = write_npz(tmp_path / "d.npz", arrays)
        bridge = MemmapDatasetBridge(path)
        mm = bridge.diffraction
        assert Path(mm.filename) == path.resolve()
        raw = path.read_bytes()[mm.offset: mm.offset + arrays["diffraction"].nbytes]
        stored = np.frombuffer(raw, dtype="<f4").reshape(10, 64, 64)
        np.testing.assert_array_equal(stored, arrays["diffraction"])
        assert not mm.flags.writeable
        assert not (tmp_path / BESIDE_CACHE_DIRNAME).exists(), "in-place mapping must not create a cache"
        assert sorted(p.name for p in tmp_path.iterdir()) == ["d.npz"]

    def test_large_coordinate_arrays_are_mapped_not_read(self, tmp_path: Path) -> None:
        arrays = dataset_arrays(10000, 4)  # 80 kB per coordinate array: above the mapping threshold
        arrays["scan_index"] = np.arange(10000, dtype=np.int64)[::-1].copy()
        bridge = MemmapDatasetBridge(write_npz(tmp_path / "d.npz", arrays))
        for key in ("xcoords", "ycoords", "scan_index"):
            value = getattr(bridge, key)
            np.testing.assert_array_equal(value, arrays[key])
            assert not value.flags.writeable and not value.flags.owndata, f"{key} should be a view of the map"
        clone = pickle.loads(pickle.dumps(bridge))
        np.testing.assert_array_equal(clone.xcoords, arrays["xcoords"])

    def test_pickling_does_not_carry_the_array(self, tmp_path: Path) -> None:
        arrays = dataset_arrays(64, 64)
        bridge = MemmapDatasetBridge(write_npz(tmp_path / "d.npz", arrays))
        _ = bridge.diffraction
        blob = pickle.dumps(bridge)
        assert len(blob) < arrays["diffraction"].nbytes / 10
        clone = pickle.loads(blob)
        np.testing.assert_array_equal(clone.diffraction, arrays["diffraction"])


class TestBadInput(ContractErrorChecks):
    def test_missing_path(self, tmp_path: Path) -> None:
        self._expect(tmp_path / "nope.npz", "not-found", "no such file")

    def test_directory(self, tmp_path: Path) -> None:
        self._expect(tmp_path, "not-a-file", "not a regular file")

    def test_wrong_ndim(self, tmp_path: Path) -> None:
        self._expect(self._with(tmp_path, diffraction=np.ones((6, 64), np.float32)), "ndim", "2 dimensions")

    def test_length_mismatch(self, tmp_path: Path) -> None:
        self._expect(self._with(tmp_path, diffraction=np.ones((7, 8, 8), np.float32)), "length",
                     "7 patterns", "6 positions")

    def test_x_y_length_mismatch(self, tmp_path: Path) -> None:
        self._expect(self._with(tmp_path, ycoords=np.zeros(5)), "length", "xcoords has 6", "ycoords 5")

    def test_pattern_size_differs_from_probe(self, tmp_path: Path) -> None:
        self._expect(self._with(tmp_path, probeGuess=np.ones((16, 16), np.complex64)), "pattern-size",
                     "(8, 8)", "(16, 16)")

    @pytest.mark.parametrize("value", [np.nan, np.inf])
    def test_non_finite_in_place_found_by_full_validation(self, tmp_path: Path, value: float) -> None:
        diff = dataset_arrays(6, 8)["diffraction"]
        diff[3, 2, 1] = value
        path = self._with(tmp_path, diffraction=diff)
        self._expect(path, "non-finite", "NaN or Inf", "pattern 3", validate="full")

    def test_negative_amplitudes(self, tmp_path: Path) -> None:
        diff = dataset_arrays(6, 8)["diffraction"]
        diff[0, 0, 0] = -1.0  # pattern 0 is always among the fast-validation samples
        self._expect(self._with(tmp_path, diffraction=diff), "negative", "negative amplitudes", "pattern 0")

    def test_negative_counts(self, tmp_path: Path) -> None:
        counts = np.ones((6, 8, 8), np.int32)
        counts[5, 7, 7] = -2
        self._expect(self._with(tmp_path, diffraction=counts), "negative", "negative counts", "pattern 5",
                     cache_dir=tmp_path / "c")

    def test_non_finite_mapped_object_found_by_full_validation(self, tmp_path: Path) -> None:
        obj = np.ones((20, 20), np.complex64)
        obj[3, 4] = np.nan
        path = self._with(tmp_path, objectGuess=obj)
        assert MemmapDatasetBridge(path).storage == "in-place", "fast validation does not read objectGuess"
        self._expect(path, "non-finite", "'objectGuess' holds NaN or Inf", "Repair 'objectGuess'",
                     validate="full")

    def test_empty_dataset(self, tmp_path: Path) -> None:
        path = self._with(tmp_path, diffraction=np.zeros((0, 8, 8), np.float32), xcoords=np.zeros(0),
                          ycoords=np.zeros(0))
        self._expect(path, "empty", "empty dataset")

    def test_missing_required_key(self, tmp_path: Path) -> None:
        self._expect(self._with(tmp_path, xcoords=None), "missing-key", "['xcoords']", "keys present")

    def test_complex_diffraction(self, tmp_path: Path) -> None:
        self._expect(self._with(tmp_path, diffraction=np.ones((6, 8, 8), np.complex64)), "dtype", "complex64")

    def test_flipped_byte_in_place_found_by_full_crc_check(self, tmp_path: Path) -> None:
        arrays = dataset_arrays(40, 32)
        path = write_npz(tmp_path / "flip.npz", arrays)
        bridge = MemmapDatasetBridge(path)
        offset = bridge.diffraction.offset + 4 * 20000 + 2
        del bridge
        data = bytearray(path.read_bytes())
        data[offset] ^= 0x01  # a small change in one float: still a legal value, caught only by the CRC
        path.write_bytes(bytes(data))
        assert MemmapDatasetBridge(path).storage == "in-place", "fast validation does not read all data"
        self._expect(path, "corrupt", "CRC mismatch", validate="full")

    def test_bad_validate_option(self, tmp_path: Path) -> None:
        with pytest.raises(ValueError, match="'fast' or 'full'"):
            MemmapDatasetBridge(self._with(tmp_path), validate="quick")  # type: ignore[arg-type]


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(compress=st.booleans(), cut=st.floats(0.0, 1.0), flip=st.one_of(st.none(), st.floats(0.0, 1.0)))
def test_property_damaged_files_give_contract_errors_only(
        tmp_path_factory: pytest.TempPathFactory, compress: bool, cut: float, flip: float | None) -> None:
    d = tmp_path_factory.mktemp("damaged")
    data = bytearray(write_npz(d / "ok.npz", dataset_arrays(6, 8), compress=compress).read_bytes())
    if flip is None:
        data = data[: int(cut * len(data))]
    else:
        data[min(int(flip * len(data)), len(data) - 1)] ^= 0xFF
    path = d / "damaged.npz"
    path.write_bytes(bytes(data))
    try:
        MemmapDatasetBridge(path, cache_dir=d / "c", validate="full")
    except DataContractError as err:
        assert str(path.resolve()) in str(err) and "data_contracts.md#" in str(err)


class TestFindings:
    """Library behaviour the bridge exists to work around (docs/findings.md)."""

    def test_data_002_np_load_mmap_mode_does_not_map_an_npz(self, tmp_path: Path) -> None:
        path = write_npz(tmp_path / "d.npz", dataset_arrays(4, 8))
        with np.load(path, mmap_mode="r") as npz:
            loaded = npz["diffraction"]
        # mmap_mode="r" is ignored for .npz: a plain, writeable in-RAM array comes back
        assert not isinstance(loaded, np.memmap) and loaded.flags.writeable
        assert isinstance(MemmapDatasetBridge(path).diffraction, np.memmap)
