"""The float32 conversion cache: built once and reused, rebuilt when stale, where it is written, two
processes at once, and what a failed conversion leaves behind."""
from __future__ import annotations

import multiprocessing as mp
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from ptycho_torch.memmap_bridge import MemmapDatasetBridge
from ptycho_torch.npy_cache import BESIDE_CACHE_DIRNAME, CACHE_ENV_VAR
from tests.ptycho_torch.npz_samples import ContractErrorChecks, cache_files, dataset_arrays, write_npz


class TestCache:
    def test_compressed_builds_once_then_reuses(self, tmp_path: Path) -> None:
        arrays = dataset_arrays(10, 16)
        path = write_npz(tmp_path / "c.npz", arrays, compress=True)
        first = MemmapDatasetBridge(path)
        cache_dir = tmp_path / BESIDE_CACHE_DIRNAME
        files = cache_files(cache_dir)
        assert len(files) == 1 and first.cache_built
        assert Path(first.diffraction.filename) == files[0]
        stamp = files[0].stat().st_mtime_ns
        second = MemmapDatasetBridge(path)
        assert not second.cache_built and cache_files(cache_dir) == files
        assert files[0].stat().st_mtime_ns == stamp
        np.testing.assert_array_equal(second.diffraction, arrays["diffraction"])
        assert not [p for p in cache_dir.iterdir() if p.suffix == ".part"]

    def test_changed_source_gets_a_new_cache(self, tmp_path: Path) -> None:
        path = tmp_path / "c.npz"
        old = dataset_arrays(10, 16, seed=1)
        write_npz(path, old, compress=True)
        MemmapDatasetBridge(path)
        new = dataset_arrays(10, 16, seed=2)
        write_npz(path, new, compress=True)
        bridge = MemmapDatasetBridge(path)
        assert bridge.cache_built
        np.testing.assert_array_equal(bridge.diffraction, new["diffraction"])
        assert len(cache_files(tmp_path / BESIDE_CACHE_DIRNAME)) == 2

    def test_truncated_cache_is_rebuilt(self, tmp_path: Path) -> None:
        arrays = dataset_arrays(10, 16)
        path = write_npz(tmp_path / "c.npz", arrays, compress=True)
        cache = Path(MemmapDatasetBridge(path).diffraction.filename)
        cache.write_bytes(cache.read_bytes()[:200])
        bridge = MemmapDatasetBridge(path)
        assert bridge.cache_built
        np.testing.assert_array_equal(bridge.diffraction, arrays["diffraction"])

    def test_read_only_source_dir_uses_user_cache_dir(self, tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
        src = tmp_path / "readonly"
        src.mkdir()
        arrays = dataset_arrays(6, 8)
        path = write_npz(src / "c.npz", arrays, compress=True)
        user_cache = tmp_path / "usercache"
        monkeypatch.setenv(CACHE_ENV_VAR, str(user_cache))
        src.chmod(0o555)
        try:
            bridge = MemmapDatasetBridge(path)
        finally:
            src.chmod(0o755)
        assert Path(bridge.diffraction.filename).parent == user_cache
        assert not (src / BESIDE_CACHE_DIRNAME).exists()
        np.testing.assert_array_equal(bridge.diffraction, arrays["diffraction"])

    def test_xdg_cache_home_is_the_fallback(self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        src = tmp_path / "ro"
        src.mkdir()
        path = write_npz(src / "c.npz", dataset_arrays(3, 4), compress=True)
        monkeypatch.delenv(CACHE_ENV_VAR, raising=False)
        monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
        src.chmod(0o555)
        try:
            bridge = MemmapDatasetBridge(path)
        finally:
            src.chmod(0o755)
        assert Path(bridge.diffraction.filename).parent == tmp_path / "xdg" / "ptycho_torch"

    def test_two_processes_building_at_once(self, tmp_path: Path) -> None:
        arrays = dataset_arrays(400, 32, dtype=np.float64)
        path = write_npz(tmp_path / "big.npz", arrays, compress=True)
        ctx = mp.get_context("spawn")
        barrier = ctx.Barrier(2)
        results = ctx.Queue()
        procs = [ctx.Process(target=_open_in_child, args=(str(path), barrier, results)) for _ in range(2)]
        for p in procs:
            p.start()
        outcomes = [results.get(timeout=60) for _ in procs]
        for p in procs:
            p.join(timeout=60)
            assert p.exitcode == 0
        assert all(o[0] == "ok" for o in outcomes), outcomes
        assert outcomes[0][1] == outcomes[1][1], "both processes must map the same cache file"
        assert outcomes[0][2] == outcomes[1][2]
        assert sorted(o[3] for o in outcomes) == [False, True], "exactly one process builds"
        files = cache_files(tmp_path / BESIDE_CACHE_DIRNAME)
        assert len(files) == 1
        want = arrays["diffraction"].astype(np.float32)
        np.testing.assert_array_equal(np.load(files[0], mmap_mode="r"), want)


def _open_in_child(path: str, barrier: Any, results: Any) -> None:
    import hashlib

    try:
        barrier.wait(timeout=30)
        bridge = MemmapDatasetBridge(path)
        digest = hashlib.sha256(np.ascontiguousarray(bridge.diffraction).tobytes()).hexdigest()
        results.put(("ok", bridge.diffraction.filename, digest, bridge.cache_built))
    except Exception as exc:  # noqa: BLE001 - reported to the parent, which fails the test with it
        results.put(("error", repr(exc), "", False))


class TestConversionErrors(ContractErrorChecks):
    def test_non_finite_found_when_converting(self, tmp_path: Path) -> None:
        diff = dataset_arrays(6, 8)["diffraction"].astype(np.float64)
        diff[4, 0, 0] = np.nan
        path = self._with(tmp_path, diffraction=diff, compress=True)
        self._expect(path, "non-finite", "pattern 4", cache_dir=tmp_path / "c")
        assert cache_files(tmp_path / "c") == [] and not list((tmp_path / "c").glob("*.part"))

    def test_flipped_byte_in_compressed_member(self, tmp_path: Path) -> None:
        arrays = dataset_arrays(50, 16, dtype=np.float64)
        path = write_npz(tmp_path / "flip.npz", arrays, compress=True)
        with zipfile.ZipFile(path) as zf:
            info = zf.getinfo("diffraction.npy")
        data = bytearray(path.read_bytes())
        data[info.header_offset + 200 + info.compress_size // 2] ^= 0xFF
        path.write_bytes(bytes(data))
        self._expect(path, "corrupt", "corrupt or truncated", cache_dir=tmp_path / "c")

