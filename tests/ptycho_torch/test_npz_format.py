"""The NPZ container at byte level: member offsets (zip64 local headers), refusing pickles, damaged
archives, and the aligned writer `save_npz`."""
from __future__ import annotations

import os
import pickle
import struct
import zipfile
from pathlib import Path

import numpy as np
import pytest

from ptycho_torch.data_contract import DataContractError
from ptycho_torch.memmap_bridge import MemmapDatasetBridge
from ptycho_torch.npz_format import ALIGN, save_npz, scan_npz
from tests.ptycho_torch.npz_samples import ContractErrorChecks, UnpickleTrap, dataset_arrays, write_npz


class TestScanNpz(ContractErrorChecks):
    def test_zip64_local_header_is_read_not_the_central_directory(self, tmp_path: Path) -> None:
        arrays = dataset_arrays(4, 8)
        path = tmp_path / "z64.npz"
        with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_STORED) as zf:
            for key, value in arrays.items():
                with zf.open(f"{key}.npy", "w", force_zip64=True) as fp:
                    np.lib.format.write_array(fp, value, allow_pickle=False)
        with zipfile.ZipFile(path) as zf:
            info = zf.getinfo("diffraction.npy")
        with open(path, "rb") as f:
            f.seek(info.header_offset + 28)
            (local_extra_len,) = struct.unpack("<H", f.read(2))
        assert local_extra_len != len(info.extra), "the file must exercise the zip64 local-header case"
        bridge = MemmapDatasetBridge(path, validate="full")
        assert bridge.storage == "in-place"
        np.testing.assert_array_equal(bridge.diffraction, arrays["diffraction"])

    def test_offsets_of_stored_members_and_none_for_compressed(self, tmp_path: Path) -> None:
        arrays = dataset_arrays(4, 8)
        stored = scan_npz(save_npz(tmp_path / "s.npz", arrays))
        data = (tmp_path / "s.npz").read_bytes()
        for key, value in arrays.items():
            m = stored[key]
            assert (m.dtype, m.shape, m.compressed) == (value.dtype, value.shape, False)
            assert m.data_offset is not None and m.data_offset % ALIGN == 0, key
            assert data[m.data_offset: m.data_offset + value.nbytes] == value.tobytes(), key
        packed = scan_npz(save_npz(tmp_path / "z.npz", arrays, compress=True))
        assert all(m.compressed and m.data_offset is None for m in packed.values())

    @pytest.mark.parametrize(("key", "stored_rows"), [("objectGuess", 19), ("objectGuess", 21),
                                                      ("diffraction", 5)])
    def test_member_whose_header_disagrees_with_its_size(self, tmp_path: Path, key: str,
                                                         stored_rows: int) -> None:
        # A stored member is mapped in place by its header's shape: one shorter than its header says would
        # serve the next member's bytes as data (objectGuess is not even read by fast validation).
        arrays = {**dataset_arrays(6, 8), "objectGuess": np.ones((20, 20), np.complex64)}
        value = arrays.pop(key)
        rows = np.concatenate([value] * 2)[:stored_rows]
        path = tmp_path / "short.npz"
        with zipfile.ZipFile(path, "w") as zf:
            with zf.open(f"{key}.npy", "w", force_zip64=True) as fp:
                np.lib.format.write_array_header_1_0(fp, np.lib.format.header_data_from_array_1_0(value))
                fp.write(rows.tobytes())
            for other, array in arrays.items():
                with zf.open(f"{other}.npy", "w", force_zip64=True) as fp:
                    np.lib.format.write_array(fp, array, allow_pickle=False)
        self._expect(path, "corrupt", f"member '{key}.npy' holds", "its .npy header describes")

    def test_garbage_file(self, tmp_path: Path) -> None:
        path = tmp_path / "garbage.npz"
        path.write_bytes(os.urandom(4096))
        self._expect(path, "corrupt", "corrupt or truncated")

    @pytest.mark.parametrize("compress", [False, True])
    def test_truncated_file(self, tmp_path: Path, compress: bool) -> None:
        path = self._with(tmp_path, compress=compress)
        data = path.read_bytes()
        path.write_bytes(data[: len(data) // 2])
        self._expect(path, "corrupt", "corrupt or truncated")

    def test_object_array_is_never_unpickled(self, tmp_path: Path) -> None:
        marker = tmp_path / "UNPICKLED"
        payload = np.empty(1, dtype=object)
        payload[0] = UnpickleTrap(str(marker))
        path = self._with(tmp_path, objectGuess=payload)
        self._expect(path, "pickle", "object array", "objectGuess")
        assert not marker.exists()

    def test_pickled_member_is_rejected(self, tmp_path: Path) -> None:
        marker = tmp_path / "UNPICKLED"
        path = self._with(tmp_path)
        with zipfile.ZipFile(path, "a") as zf:
            zf.writestr("extra.pkl", pickle.dumps(UnpickleTrap(str(marker))))
        self._expect(path, "pickle", "extra.pkl", "not an .npy")
        assert not marker.exists()

    def test_pickle_disguised_as_npy_is_rejected(self, tmp_path: Path) -> None:
        marker = tmp_path / "UNPICKLED"
        path = self._with(tmp_path)
        with zipfile.ZipFile(path, "a") as zf:
            zf.writestr("nphotons.npy", pickle.dumps(UnpickleTrap(str(marker))))
        with pytest.raises(DataContractError) as info:
            MemmapDatasetBridge(path)
        assert info.value.reason in ("corrupt", "pickle") and "nphotons.npy" in str(info.value)
        assert not marker.exists()


class TestSaveNpz:
    @pytest.mark.parametrize("compress", [False, True])
    def test_round_trip_with_numpy_and_the_bridge(self, tmp_path: Path, compress: bool) -> None:
        arrays = {**dataset_arrays(7, 12), "objectGuess": np.ones((30, 31), np.complex64),
                  "nphotons": np.array(5.0)}
        path = save_npz(tmp_path / "s.npz", arrays, compress=compress)
        with np.load(path) as npz:
            assert sorted(npz.files) == sorted(arrays)
            for key, value in arrays.items():
                np.testing.assert_array_equal(npz[key], value)
        bridge = MemmapDatasetBridge(path, cache_dir=tmp_path / "c", validate="full")
        np.testing.assert_array_equal(bridge.diffraction, arrays["diffraction"])
        assert bridge.storage == ("cache" if compress else "in-place")
        assert sorted(p.name for p in tmp_path.iterdir() if p.name != "c") == ["s.npz"]

    def test_stored_members_are_64_byte_aligned(self, tmp_path: Path) -> None:
        arrays = {f"a{i}": np.arange(i + 1, dtype=np.float32) for i in range(5)} | dataset_arrays(3, 5)
        path = save_npz(tmp_path / "s.npz", arrays)
        bridge = MemmapDatasetBridge(path)
        assert bridge.diffraction.offset % 64 == 0 and bridge.diffraction.flags.aligned
        assert bridge.info()["aligned_64"]
        assert "64-byte aligned" in bridge.summary()
        with zipfile.ZipFile(path) as zf, open(path, "rb") as f:
            for info in zf.infolist():
                f.seek(info.header_offset + 26)
                name_len, extra_len = struct.unpack("<HH", f.read(4))
                data_start = info.header_offset + 30 + name_len + extra_len
                assert data_start % 64 == 0, info.filename
        # np.savez: 30-byte header + 'diffraction.npy' + 20-byte zip64 block + 64-aligned .npy header = odd
        unaligned = MemmapDatasetBridge(write_npz(tmp_path / "np.npz", dataset_arrays(3, 5)))
        assert unaligned.diffraction.offset % 2 == 1 and "unaligned" in unaligned.summary()

    def test_never_pickles(self, tmp_path: Path) -> None:
        with pytest.raises(ValueError, match="pickle"):
            save_npz(tmp_path / "o.npz", {"x": np.array([object()])})
        assert list(tmp_path.iterdir()) == []

