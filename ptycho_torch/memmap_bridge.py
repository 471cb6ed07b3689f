"""MemmapDatasetBridge: an NPZ ptychography dataset served as truly memory-mapped arrays.

`np.load(npz, mmap_mode="r")` silently ignores `mmap_mode` for .npz files and reads every member into RAM.
This bridge reads the zip directory itself: a diffraction member stored uncompressed as native float32
C-order (N, H, W) is mapped in place at its byte offset inside the .npz; anything else is converted once,
chunk by chunk, into a float32 .npy cache that is then mapped. Nothing is ever unpickled.

Arrays served (see docs/specs/data_contracts.md):
    diffraction  np.memmap float32 (N, H, W) amplitude; `diff3d` is the same object
    xcoords, ycoords  float64 (N,) scan positions in object pixels (x: column, y: row)
    probeGuess  complex64 (H, W); objectGuess complex64 (M, M') or None
    scan_index  int64 (N,); nphotons float or None
"""
from __future__ import annotations

import hashlib
import json
import math
import os
import struct
import tempfile
import zipfile
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np

from ptycho_torch import data_contract as dc
from ptycho_torch.atomic_io import atomic_output
from ptycho_torch.data_contract import DataContractError, DiffractionPlan, Layout, contract_error

try:
    import fcntl
except ImportError:  # pragma: no cover - non-POSIX: atomic replace alone keeps the cache consistent
    fcntl = None  # type: ignore[assignment]

CACHE_FORMAT_VERSION = 1
CACHE_ENV_VAR = "PTYCHO_TORCH_CACHE_DIR"
BESIDE_CACHE_DIRNAME = ".ptycho_torch.npy.cache"
CHUNK_BYTES = 8 * 2**20  # per conversion step: bounds RAM while converting
FAST_SAMPLE_PATTERNS = 16
MAP_SMALL_ARRAYS_FROM = 64 * 2**10  # bytes; smaller members are simply read
_LOCAL_HEADER = struct.Struct("<4s5H3L2H")
_ZIP_READ_ERRORS = (zipfile.BadZipFile, zlib.error, EOFError, OSError, ValueError, NotImplementedError,
                    RuntimeError, struct.error)

Validate = Literal["fast", "full"]


@dataclass(frozen=True)
class NpyMember:
    """One `.npy` member of an .npz: its header, and where its data lies when stored uncompressed."""

    key: str
    info: zipfile.ZipInfo = field(repr=False)
    dtype: np.dtype
    shape: tuple[int, ...]
    fortran_order: bool
    npy_header_len: int
    data_offset: int | None  # absolute offset of the array data in the .npz; None when compressed

    @property
    def compressed(self) -> bool:
        return self.data_offset is None


@dataclass(frozen=True)
class MappedArray:
    """Where an array lies in a file, so any process can map it again (nothing big is pickled)."""

    path: str
    offset: int
    dtype: str
    shape: tuple[int, ...]

    def open(self) -> np.memmap:
        return np.memmap(self.path, dtype=np.dtype(self.dtype), mode="r", offset=self.offset,
                         shape=self.shape)


def _corrupt(path: Path, detail: object) -> DataContractError:
    return contract_error(path, f"corrupt or truncated NPZ ({detail})",
                          "Re-create or re-download the file", reason="corrupt", section="files")


def _read_exact(fp: Any, n: int, path: Path) -> bytes:
    parts, left = [], n
    while left:
        part = fp.read(min(left, 1 << 24))
        if not part:
            raise _corrupt(path, f"member ended {left} bytes early")
        parts.append(part)
        left -= len(part)
    return b"".join(parts)


def _local_data_start(f: Any, info: zipfile.ZipInfo, path: Path) -> int:
    """Offset of a member's data: the local header's own name/extra lengths, which differ from the
    central directory's for zip64 members (numpy forces zip64 local headers)."""
    f.seek(info.header_offset)
    raw = f.read(_LOCAL_HEADER.size)
    if len(raw) != _LOCAL_HEADER.size:
        raise _corrupt(path, f"local header of {info.filename} cut short")
    fields = _LOCAL_HEADER.unpack(raw)
    if fields[0] != b"PK\x03\x04":
        raise _corrupt(path, f"bad local header signature for {info.filename}")
    name_len, extra_len = fields[-2], fields[-1]
    return info.header_offset + _LOCAL_HEADER.size + name_len + extra_len


def _read_npy_header(fp: Any) -> tuple[tuple[int, ...], bool, np.dtype, int]:
    version = np.lib.format.read_magic(fp)
    if version == (1, 0):
        shape, fortran, dtype = np.lib.format.read_array_header_1_0(fp)
    else:  # 2.0 and 3.0 differ from each other only in the header's text encoding
        shape, fortran, dtype = np.lib.format.read_array_header_2_0(fp)
    return tuple(shape), bool(fortran), dtype, fp.tell()


def scan_npz(path: Path) -> dict[str, NpyMember]:
    """Read the zip directory and every member's .npy header (never its data). Rejects pickles."""
    try:
        zf = zipfile.ZipFile(path)
    except OSError as exc:
        raise contract_error(path, f"cannot read file: {exc.strerror}", "Check the path and permissions",
                             reason="unreadable", section="files") from None
    except _ZIP_READ_ERRORS as exc:
        raise contract_error(path, f"not a readable NPZ (zip) archive, corrupt or truncated ({exc})",
                             "Check that the file is a complete .npz written by np.savez",
                             reason="corrupt", section="files") from None
    members: dict[str, NpyMember] = {}
    file_size = path.stat().st_size
    with zf, open(path, "rb") as raw:
        for info in zf.infolist():
            if info.is_dir():
                continue
            if not info.filename.endswith(".npy"):
                raise contract_error(path, f"member '{info.filename}' is not an .npy array (pickled or "
                                     "foreign data is never loaded)", "Store only numpy arrays (np.savez)",
                                     reason="pickle", section="files")
            key = info.filename[:-4]
            try:
                with zf.open(info) as fp:
                    shape, fortran, dtype, header_len = _read_npy_header(fp)
            except _ZIP_READ_ERRORS as exc:
                raise _corrupt(path, f"member '{info.filename}': {exc}") from None
            if dtype.hasobject:
                raise contract_error(path, f"'{key}' is an object array, which would need unpickling",
                                     "Store plain numeric arrays; nothing is ever unpickled",
                                     reason="pickle", section="dtypes")
            offset = None
            if info.compress_type == zipfile.ZIP_STORED and not info.flag_bits & 0x1:
                offset = _local_data_start(raw, info, path) + header_len
                if offset + math.prod(shape) * dtype.itemsize > file_size:
                    raise _corrupt(path, f"'{key}' data runs past the end of the file")
            members[key] = NpyMember(key, info, dtype, shape, fortran, header_len, offset)
    return members


def _read_small(zf: zipfile.ZipFile, m: NpyMember, path: Path) -> np.ndarray:
    try:
        with zf.open(m.info) as fp:
            return np.lib.format.read_array(fp, allow_pickle=False)
    except _ZIP_READ_ERRORS as exc:
        raise _corrupt(path, f"member '{m.info.filename}': {exc}") from None


# -------------------------------------------------------------------------------------------- writer

ALIGN = 64
_ALIGN_EXTRA_ID = 0xD935  # the "alignment padding" extra-field ID that Android's zipalign uses


def save_npz(path: str | os.PathLike[str], arrays: dict[str, np.ndarray], *, compress: bool = False) -> Path:
    """Write an .npz atomically, never pickling, with each stored member's array data 64-byte aligned.

    np.savez puts array data at whatever offset the zip headers leave, so an in-place map is usually
    unaligned (numpy then takes slow paths, and ndarray.take copies the whole array). A padding block in
    each local header's extra field fixes the offset; readers (zipfile, numpy) skip unknown extra blocks.
    """
    path = Path(path)
    with atomic_output(path) as f:
        method = zipfile.ZIP_DEFLATED if compress else zipfile.ZIP_STORED
        with zipfile.ZipFile(f, "w", compression=method) as zf:
            for key, value in arrays.items():
                arr = np.asanyarray(value)
                info = zipfile.ZipInfo(f"{key}.npy", date_time=(1980, 1, 1, 0, 0, 0))
                info.compress_type = method
                if not compress:
                    # local header: 30 bytes + name + extra (ours: 4 + pad) + the 20-byte zip64 block
                    start = f.tell() + 30 + len(info.filename.encode()) + 4 + 20
                    pad = -start % ALIGN
                    info.extra = struct.pack("<HH", _ALIGN_EXTRA_ID, pad) + b"\0" * pad
                with zf.open(info, "w", force_zip64=True) as fp:
                    np.lib.format.write_array(fp, arr, allow_pickle=False)
    return path


# --------------------------------------------------------------------------------------------- cache

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
            got_shape, fortran, dtype, header_len = _read_npy_header(f)
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


def _patterns_per_chunk(plan: DiffractionPlan) -> int:
    h, w = plan.pattern_shape
    return max(1, CHUNK_BYTES // (h * w * 4))


def _stream_chunks(source: Path, m: NpyMember, plan: DiffractionPlan) -> Iterator[np.ndarray]:
    """Stored values as (k, H, W) chunks, read sequentially (valid when storage order is N,H,W C-order)."""
    n, (h, w) = plan.n_patterns, plan.pattern_shape
    per = _patterns_per_chunk(plan)
    try:
        with zipfile.ZipFile(source) as zf, zf.open(m.info) as fp:
            _read_exact(fp, m.npy_header_len, source)
            for k0 in range(0, n, per):
                k = min(per, n - k0)
                buf = _read_exact(fp, k * h * w * m.dtype.itemsize, source)
                yield np.frombuffer(buf, dtype=m.dtype).reshape(k, h, w)
            if fp.read(1):  # also makes zipfile verify the member's CRC
                raise _corrupt(source, f"member '{m.info.filename}' is longer than its header says")
    except DataContractError:
        raise
    except _ZIP_READ_ERRORS as exc:
        raise _corrupt(source, f"member '{m.info.filename}': {exc}") from None


def _strided_chunks(raw: MappedArray, plan: DiffractionPlan) -> Iterator[np.ndarray]:
    """(k, H, W) chunks from a mapped Fortran-order or legacy (H,W,N) array. The map is reopened per
    chunk so that pages already read leave this process's RSS."""
    per = _patterns_per_chunk(plan)
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
            _read_exact(fp, m.npy_header_len, source)
            while block := fp.read(CHUNK_BYTES):
                out.write(block)
    except _ZIP_READ_ERRORS as exc:
        Path(tmp).unlink(missing_ok=True)
        raise _corrupt(source, f"member '{m.info.filename}': {exc}") from None
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
                raise _corrupt(source, f"member '{m.info.filename}' holds fewer bytes than its header says")
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


# -------------------------------------------------------------------------------------------- bridge

class MemmapDatasetBridge:
    """Open an NPZ dataset under the data contract; `diffraction` is a read-only float32 np.memmap.

    Opening reads the zip directory, the .npy headers and the small arrays (coordinates, probe), never the
    diffraction data, unless a conversion is needed (done once, cached). `validate="fast"` checks the
    values of FAST_SAMPLE_PATTERNS patterns spread over the set; `"full"` checks every value (and the
    member's CRC when mapped in place), chunk by chunk. A conversion always checks every value.
    """

    def __init__(self, npz_path: str | os.PathLike[str], *, cache_dir: str | os.PathLike[str] | None = None,
                 validate: Validate = "fast") -> None:
        if validate not in ("fast", "full"):
            raise ValueError(f"validate must be 'fast' or 'full', not {validate!r}")
        path = Path(npz_path)
        if not path.exists():
            raise contract_error(path, "no such file", "Check the path", reason="not-found", section="files")
        if not path.is_file():
            raise contract_error(path, "not a regular file", "Pass the path of an .npz file",
                                 reason="not-a-file", section="files")
        self.path = path.resolve()
        self.validate = validate
        members = scan_npz(self.path)
        self._check_required(members)
        stored = {k: (members[k].dtype, members[k].shape) for k in (dc.CANONICAL_KEY, dc.LEGACY_KEY)
                  if k in members}
        self.source_key = dc.resolve_diffraction_key(list(members), stored, self.path)
        self.other_keys = sorted(set(members) - set(dc.KNOWN_KEYS))
        with zipfile.ZipFile(self.path) as zf:
            def small(key: str) -> np.ndarray | None:
                if key not in members:
                    return None
                m = members[key]
                if m.data_offset is not None and m.dtype.isnative and not m.fortran_order and \
                        m.info.file_size >= MAP_SMALL_ARRAYS_FROM:
                    # coordinates grow with N: map them too, so opening stays cheap for huge datasets
                    spec = MappedArray(str(self.path), m.data_offset, m.dtype.str, m.shape)
                    return spec.open().view(np.ndarray)
                return _read_small(zf, m, self.path)

            self.xcoords, self.ycoords = dc.check_coords(small("xcoords"), small("ycoords"), self.path)
            self.probeGuess = dc.check_complex_2d(small("probeGuess"), "probeGuess", self.path)
            n = len(self.xcoords)
            self.scan_index = dc.check_scan_index(small("scan_index"), n, self.path)
            self.nphotons = dc.check_nphotons(small("nphotons"), self.path)
            self._object_spec, self._object_array = self._object_guess(zf, members.get("objectGuess"))
        m = members[self.source_key]
        self.plan = dc.plan_diffraction(self.source_key, m.dtype, m.shape, m.fortran_order, n,
                                        self.probeGuess.shape, self.path)
        self.member_compressed = m.compressed
        self.cache_built = False
        self.storage = "in-place" if self.plan.maps_in_place and m.data_offset is not None else "cache"
        if m.data_offset is not None and self.storage == "in-place":
            self._diff_spec = MappedArray(str(self.path), m.data_offset, "<f4", m.shape)
        else:
            self._diff_spec, self.cache_built = build_or_reuse_cache(self.path, m, self.plan, cache_dir)
        self._mm: np.memmap | None = None
        self._mm_pid = -1
        self.checked_patterns = self._validate_values(m)

    # ------------------------------------------------------------------ construction helpers
    def _check_required(self, members: dict[str, NpyMember]) -> None:
        missing = [k for k in dc.REQUIRED_KEYS if k not in members]
        if missing:
            raise contract_error(self.path,
                                 f"required key(s) {missing} missing; keys present: {sorted(members)}",
                                 "Add the scan positions (xcoords, ycoords) and the probe (probeGuess)",
                                 reason="missing-key", section="keys")

    def _object_guess(self, zf: zipfile.ZipFile, m: NpyMember | None
                      ) -> tuple[MappedArray | None, np.ndarray | None]:
        if m is None:
            return None, None
        if (m.data_offset is not None and m.dtype == np.dtype(np.complex64) and m.dtype.isnative
                and not m.fortran_order and len(m.shape) == 2 and 0 not in m.shape):
            return MappedArray(str(self.path), m.data_offset, m.dtype.str, m.shape), None
        return None, dc.check_complex_2d(_read_small(zf, m, self.path), "objectGuess", self.path)

    def _validate_values(self, m: NpyMember) -> int:
        spec = self._diff_spec
        n = len(self)
        if self.validate == "fast":
            idx = np.unique(np.linspace(0, n - 1, min(n, FAST_SAMPLE_PATTERNS)).astype(np.int64))
            for i in idx:
                dc.check_amplitude(np.asarray(self.diffraction[i:i + 1]), first_index=int(i),
                                   key=self.source_key, path=self.path)
            return len(idx)
        h, w = self.plan.pattern_shape
        per = _patterns_per_chunk(self.plan)
        in_place = spec.path == str(self.path)
        with open(spec.path, "rb") as f:
            crc = 0
            if in_place:
                start = spec.offset - m.npy_header_len
                f.seek(start)
                crc = zlib.crc32(f.read(m.npy_header_len))
            f.seek(spec.offset)
            for k0 in range(0, n, per):
                k = min(per, n - k0)
                raw = f.read(k * h * w * 4)
                if len(raw) != k * h * w * 4:
                    raise _corrupt(self.path, "diffraction data cut short")
                if in_place:
                    crc = zlib.crc32(raw, crc)
                chunk = np.frombuffer(raw, dtype="<f4").reshape(k, h, w)
                dc.check_amplitude(chunk, first_index=k0, key=self.source_key, path=self.path)
        if in_place and crc != m.info.CRC:
            raise _corrupt(self.path, f"CRC mismatch in member '{m.info.filename}'")
        if self._object_spec is not None and not np.isfinite(self._object_spec.open()).all():
            raise contract_error(self.path, "'objectGuess' holds NaN or Inf", "Repair 'objectGuess'",
                                 reason="non-finite", section="values")
        return n

    # ------------------------------------------------------------------ arrays
    @property
    def diffraction(self) -> np.memmap:
        """float32 (N, H, W); mapped lazily and again in each process (DataLoader workers)."""
        if self._mm is None or self._mm_pid != os.getpid():
            self._mm = self._diff_spec.open()
            self._mm_pid = os.getpid()
        return self._mm

    @property
    def diff3d(self) -> np.memmap:
        """The same array as `diffraction`, under its legacy name."""
        return self.diffraction

    @property
    def diffraction_spec(self) -> MappedArray:
        return self._diff_spec

    @property
    def objectGuess(self) -> np.ndarray | None:
        if self._object_spec is not None:
            return self._object_spec.open()
        return self._object_array

    def __len__(self) -> int:
        return self._diff_spec.shape[0]

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["_mm"], state["_mm_pid"] = None, -1
        return state

    def get_grouped_data(self, N: int, K: int = 7, nsamples: int = 1, gridsize: int = 1,
                         seed: int | None = None) -> dict[str, Any]:
        """Neighbour groups of gridsize**2 patterns; see `ptycho_torch.grouping.grouped_data`."""
        from ptycho_torch.grouping import grouped_data

        return grouped_data(self, N=N, K=K, nsamples=nsamples, gridsize=gridsize, seed=seed)

    # ------------------------------------------------------------------ reporting
    def info(self) -> dict[str, Any]:
        """A JSON-serialisable description of the dataset and how it is served."""
        obj = self.objectGuess
        sample = self.diffraction[np.unique(np.linspace(0, len(self) - 1, min(len(self), 16)).astype(int))]
        counts = np.square(sample.astype(np.float64)).sum(axis=(1, 2))
        return {
            "path": str(self.path),
            "file_bytes": self.path.stat().st_size,
            "source_key": self.source_key,
            "n_patterns": len(self),
            "pattern_shape": list(self.plan.pattern_shape),
            "stored": {"dtype": str(self.plan.stored_dtype), "shape": list(self.plan.stored_shape),
                       "layout": self.plan.layout.value, "fortran_order": self.plan.fortran_order,
                       "compressed": self.member_compressed},
            "storage": self.storage,
            "mapped_file": self._diff_spec.path,
            "mapped_offset": self._diff_spec.offset,
            "aligned_64": self._diff_spec.offset % 64 == 0,
            "cache_built_now": self.cache_built,
            "notes": self.plan.notes(),
            "xrange": [float(self.xcoords.min()), float(self.xcoords.max())],
            "yrange": [float(self.ycoords.min()), float(self.ycoords.max())],
            "probe_shape": list(self.probeGuess.shape),
            "object_shape": None if obj is None else list(obj.shape),
            "nphotons": self.nphotons,
            "sampled_mean_counts": float(counts.mean()),
            "validation": self.validate,
            "checked_patterns": self.checked_patterns,
            "other_keys": self.other_keys,
        }

    def summary(self) -> str:
        i = self.info()
        n, (h, w) = i["n_patterns"], i["pattern_shape"]
        alignment = "64-byte aligned" if i["aligned_64"] else "unaligned: np.savez layout; save_npz aligns"
        where = (f"mapped in place inside the .npz at offset {i['mapped_offset']} ({alignment})"
                 if i["storage"] == "in-place"
                 else f"mapped from float32 cache {i['mapped_file']}"
                 + (" (built now)" if i["cache_built_now"] else " (reused)"))
        obj = "absent" if i["object_shape"] is None else f"complex64 {tuple(i['object_shape'])}"
        nph = "absent" if i["nphotons"] is None else f"{i['nphotons']:g}"
        lines = [
            f"{i['path']}  ({i['file_bytes'] / 2**20:.1f} MiB)",
            (f"  diffraction   float32 ({n}, {h}, {w}) from key '{i['source_key']}', stored "
             f"{i['stored']['dtype']} {tuple(i['stored']['shape'])} "
             f"{'compressed' if i['stored']['compressed'] else 'uncompressed'}; {where}"),
            (f"  positions     {n}: x in [{i['xrange'][0]:.1f}, {i['xrange'][1]:.1f}], "
             f"y in [{i['yrange'][0]:.1f}, {i['yrange'][1]:.1f}] object pixels"),
            f"  probeGuess    complex64 {tuple(i['probe_shape'])}",
            f"  objectGuess   {obj}",
            (f"  nphotons      {nph}; mean counts per pattern (sum of amplitude^2, sampled) "
             f"{i['sampled_mean_counts']:.4g}"),
            f"  validation    {i['validation']}: {i['checked_patterns']} of {n} patterns checked",
        ]
        lines += [f"  note          {note}" for note in i["notes"]]
        if i["other_keys"]:
            lines.append(f"  other keys    {', '.join(i['other_keys'])} (ignored)")
        return "\n".join(lines)

    def __repr__(self) -> str:
        return f"MemmapDatasetBridge({str(self.path)!r}, N={len(self)}, storage={self.storage!r})"


def inspect_command(*, path: str, as_json: bool = False, validate: Validate = "fast",
                    cache_dir: str | None = None) -> int:
    """`ptycho-torch inspect`: print the bridge's summary (or its info as JSON)."""
    bridge = MemmapDatasetBridge(path, cache_dir=cache_dir, validate=validate)
    print(json.dumps(bridge.info(), indent=2) if as_json else bridge.summary())
    return 0
