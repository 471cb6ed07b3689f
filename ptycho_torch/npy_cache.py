"""The float32 conversion cache: a diffraction member that cannot be mapped as it is stored, served as a
float32 C-order (N, H, W) `.npy` file written once and then memory-mapped.

A member needs the cache when it is compressed, of another dtype, Fortran-ordered, in the legacy (H,W,N)
layout or integer counts (`DiffractionPlan.maps_in_place` is False). Conventions:
- Bounded memory: the conversion streams CHUNK_BYTES of patterns at a time (a sequential read for
  (N,H,W) C-order; a map reopened per chunk for strided layouts; a compressed strided member is first
  extracted to a temporary raw file beside the cache). RAM never holds the whole array.
- Every value is checked while converting (`data_contract.to_amplitude`); a bad value leaves no cache file.
- Key: the file name carries a hash of the source's resolved path, size, mtime, the member's CRC-32 and
  sizes, its dtype/shape/layout and CACHE_FORMAT_VERSION, so a changed source is never served stale.
- Concurrency: the file is written to a temporary name and renamed into place (correctness); an `flock`
  on a never-deleted `<cache>.lock` makes a second opener wait and reuse the result (saves the work).
- Location: see `choose_cache_dir` and docs/specs/data_contracts.md#how-the-bridge-serves-a-file.
"""
from __future__ import annotations

import hashlib
import json
import os
import tempfile
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from ptycho_torch import data_contract as dc
from ptycho_torch.atomic_io import atomic_output
from ptycho_torch.data_contract import DataContractError, DiffractionPlan, Layout, contract_error
from ptycho_torch.npz_format import (
    ZIP_READ_ERRORS,
    MappedArray,
    NpyMember,
    corrupt_error,
    read_exact,
    read_npy_header,
)

try:
    import fcntl
except ImportError:  # pragma: no cover - non-POSIX: atomic replace alone keeps the cache consistent
    fcntl = None  # type: ignore[assignment]

CACHE_FORMAT_VERSION = 1
CACHE_ENV_VAR = "PTYCHO_TORCH_CACHE_DIR"
BESIDE_CACHE_DIRNAME = ".ptycho_torch.npy.cache"
CHUNK_BYTES = 8 * 2**20  # per conversion step: bounds RAM while converting


def user_cache_dir() -> Path:
    """PTYCHO_TORCH_CACHE_DIR, else $XDG_CACHE_HOME/ptycho_torch, else ~/.cache/ptycho_torch."""
    if os.environ.get(CACHE_ENV_VAR):
        return Path(os.environ[CACHE_ENV_VAR])
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "ptycho_torch"


def _writable_dir(d: Path) -> bool:
    # A directory with no write bit is read-only by intent even for root (containers often run as root).
    try:
        st = d.stat()
    except OSError:
        return False
    return bool(st.st_mode & 0o222) and os.access(d, os.W_OK)


def choose_cache_dir(source: Path, cache_dir: str | Path | None) -> Path:
    """The explicit `cache_dir`, else a hidden folder beside the source, else the user cache dir."""
    if cache_dir is not None:
        candidates = [Path(cache_dir)]
    else:
        beside = source.parent / BESIDE_CACHE_DIRNAME
        usable = _writable_dir(beside) if beside.is_dir() else _writable_dir(source.parent)
        candidates = [beside, user_cache_dir()] if usable else [user_cache_dir()]
    errors = []
    for d in candidates:
        try:
            d.mkdir(parents=True, exist_ok=True)
            if _writable_dir(d):
                return d
            errors.append(f"{d}: not writable")
        except OSError as exc:
            errors.append(f"{d}: {exc.strerror}")
    raise contract_error(source, "needs a float32 cache but no cache directory is writable "
                         f"({'; '.join(errors)})",
                         f"Pass cache_dir=... or set {CACHE_ENV_VAR}", reason="cache", section="files")


def cache_key(source: Path, m: NpyMember, plan: DiffractionPlan) -> str:
    """Changes whenever the source bytes could have changed: path, size, mtime and the member's CRC."""
    st = source.stat()
    ident = {
        "v": CACHE_FORMAT_VERSION, "path": str(source.resolve()), "size": st.st_size,
        "mtime_ns": st.st_mtime_ns, "member": m.info.filename, "crc": m.info.CRC,
        "csize": m.info.compress_size, "usize": m.info.file_size, "dtype": m.dtype.str,
        "shape": list(m.shape), "fortran": m.fortran_order, "layout": plan.layout.value,
        "kind": plan.kind.value,
    }
    return hashlib.sha256(json.dumps(ident, sort_keys=True).encode()).hexdigest()[:20]


def _valid_cache_offset(path: Path, shape: tuple[int, ...]) -> int | None:
    """The data offset of a complete float32 C-order .npy of `shape`, or None if it is anything else."""
    try:
        with open(path, "rb") as f:
            got_shape, fortran, dtype, header_len = read_npy_header(f)
            size = os.fstat(f.fileno()).st_size
    except (OSError, ValueError):
        return None
    ok = got_shape == shape and not fortran and dtype == np.dtype("<f4")
    return header_len if ok and size == header_len + int(np.prod(shape)) * 4 else None


@contextmanager
def _exclusive(lock_path: Path) -> Iterator[None]:
    # flock on a file that is never deleted: no stale-lock race. The lock only saves duplicate work;
    # correctness comes from the atomic os.replace.
    if fcntl is None:
        yield
        return
    with open(lock_path, "a") as lock:
        fcntl.flock(lock.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock.fileno(), fcntl.LOCK_UN)


def _write_npy_atomically(dest: Path, shape: tuple[int, ...], chunks: Iterator[np.ndarray]) -> None:
    with atomic_output(dest) as f:
        np.lib.format.write_array_header_1_0(f, {"descr": "<f4", "fortran_order": False, "shape": shape})
        for chunk in chunks:
            f.write(np.ascontiguousarray(chunk, dtype="<f4").data)


def patterns_per_chunk(plan: DiffractionPlan) -> int:
    h, w = plan.pattern_shape
    return max(1, CHUNK_BYTES // (h * w * 4))


def _stream_chunks(source: Path, m: NpyMember, plan: DiffractionPlan) -> Iterator[np.ndarray]:
    """Stored values as (k, H, W) chunks, read sequentially (valid when storage order is N,H,W C-order)."""
    n, (h, w) = plan.n_patterns, plan.pattern_shape
    per = patterns_per_chunk(plan)
    try:
        with zipfile.ZipFile(source) as zf, zf.open(m.info) as fp:
            read_exact(fp, m.npy_header_len, source)
            for k0 in range(0, n, per):
                k = min(per, n - k0)
                buf = read_exact(fp, k * h * w * m.dtype.itemsize, source)
                yield np.frombuffer(buf, dtype=m.dtype).reshape(k, h, w)
            if fp.read(1):  # also makes zipfile verify the member's CRC
                raise corrupt_error(source, f"member '{m.info.filename}' is longer than its header says")
    except DataContractError:
        raise
    except ZIP_READ_ERRORS as exc:
        raise corrupt_error(source, f"member '{m.info.filename}': {exc}") from None


def _strided_chunks(raw: MappedArray, plan: DiffractionPlan) -> Iterator[np.ndarray]:
    """(k, H, W) chunks from a mapped Fortran-order or legacy (H,W,N) array. The map is reopened per
    chunk so that pages already read leave this process's RSS."""
    per = patterns_per_chunk(plan)
    order = "F" if plan.fortran_order else "C"
    for k0 in range(0, plan.n_patterns, per):
        mm = np.memmap(raw.path, dtype=np.dtype(raw.dtype), mode="r", offset=raw.offset, shape=raw.shape,
                       order=order)
        view = mm if plan.layout is Layout.NHW else mm.transpose(2, 0, 1)
        block = np.array(view[k0:k0 + per])
        del view, mm
        yield block


def _extract_raw(source: Path, m: NpyMember, dest_dir: Path) -> Path:
    """Decompress a member's array bytes into a temporary file, in bounded memory."""
    fd, tmp = tempfile.mkstemp(prefix=".raw.", suffix=".part", dir=dest_dir)
    try:
        with os.fdopen(fd, "wb") as out, zipfile.ZipFile(source) as zf, zf.open(m.info) as fp:
            read_exact(fp, m.npy_header_len, source)
            while block := fp.read(CHUNK_BYTES):
                out.write(block)
    except ZIP_READ_ERRORS as exc:
        Path(tmp).unlink(missing_ok=True)
        raise corrupt_error(source, f"member '{m.info.filename}': {exc}") from None
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return Path(tmp)


def _converted_chunks(source: Path, m: NpyMember, plan: DiffractionPlan,
                      work_dir: Path) -> Iterator[np.ndarray]:
    sequential = plan.layout is Layout.NHW and not plan.fortran_order
    raw_tmp: Path | None = None
    try:
        if sequential:
            chunks = _stream_chunks(source, m, plan)
        elif m.data_offset is not None:
            chunks = _strided_chunks(MappedArray(str(source), m.data_offset, m.dtype.str, m.shape), plan)
        else:
            raw_tmp = _extract_raw(source, m, work_dir)
            if raw_tmp.stat().st_size != int(np.prod(m.shape)) * m.dtype.itemsize:
                raise corrupt_error(source, f"member '{m.info.filename}' holds fewer bytes than its header says")
            chunks = _strided_chunks(MappedArray(str(raw_tmp), 0, m.dtype.str, m.shape), plan)
        first = 0
        for chunk in chunks:
            yield dc.to_amplitude(chunk, plan.kind, first_index=first, key=plan.key, path=source)
            first += chunk.shape[0]
    finally:
        if raw_tmp is not None:
            raw_tmp.unlink(missing_ok=True)


def build_or_reuse_cache(source: Path, m: NpyMember, plan: DiffractionPlan,
                         cache_dir: str | Path | None) -> tuple[MappedArray, bool]:
    """Return the mapped float32 cache for `m` and whether this call built it."""
    shape = (plan.n_patterns, *plan.pattern_shape)
    directory = choose_cache_dir(source, cache_dir)
    dest = directory / f"{source.stem}.{plan.key}.{cache_key(source, m, plan)}.npy"
    built = False
    with _exclusive(Path(f"{dest}.lock")):
        offset = _valid_cache_offset(dest, shape)
        if offset is None:
            _write_npy_atomically(dest, shape, _converted_chunks(source, m, plan, directory))
            built = True
            offset = _valid_cache_offset(dest, shape)
            assert offset is not None, "a cache file just written must read back"
    return MappedArray(str(dest), offset, "<f4", shape), built
