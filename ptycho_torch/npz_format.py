"""The NPZ container at byte level: where each `.npy` member's data lies, and a writer that aligns it.

An `.npz` is a zip archive of `.npy` files. A member written with `ZIP_STORED` (no compression, no
encryption) is a plain `.npy` at a byte offset: local file header (30 bytes + name + extra field), then the
`.npy` magic and header, then the array data. That data can be memory-mapped in place with `np.memmap`;
`np.load(npz, mmap_mode="r")` ignores `mmap_mode` for archives and reads the whole member into RAM, which
is why the bridge maps members itself. A compressed member has no such offset and must be extracted.

Conventions:
- Zip64: numpy writes every member with zip64 local headers, whose extra field (sizes) the central
  directory does not repeat. A member's data offset is therefore computed from its local header's own
  name and extra lengths, never from the central directory's `ZipInfo.extra`.
- Alignment: `save_npz` pads each stored member's local header with an extra-field block of ID 0xD935
  (the "alignment padding" ID of Android's zipalign) so the array data starts on a 64-byte boundary. Zip
  readers (zipfile, numpy, unzip) skip extra blocks they do not know.
- Nothing is unpickled: a member that is not `.npy`, or whose dtype holds Python objects, is rejected
  before its data is read. Every zip or header failure becomes a `DataContractError` naming the file.
"""
from __future__ import annotations

import math
import os
import struct
import zipfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ptycho_torch.atomic_io import atomic_output
from ptycho_torch.data_contract import DataContractError, contract_error

ALIGN = 64
_ALIGN_EXTRA_ID = 0xD935
_LOCAL_HEADER = struct.Struct("<4s5H3L2H")  # signature ... name length, extra length
_LOCAL_HEADER_SIGNATURE = b"PK\x03\x04"
# What reading a damaged archive can raise, from zipfile, zlib and numpy's header parser.
ZIP_READ_ERRORS = (zipfile.BadZipFile, zlib.error, EOFError, OSError, ValueError, NotImplementedError,
                   RuntimeError, struct.error)


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


def corrupt_error(path: Path, detail: object) -> DataContractError:
    """The contract error for a damaged archive: what was found, and that the file must be re-made."""
    return contract_error(path, f"corrupt or truncated NPZ ({detail})",
                          "Re-create or re-download the file", reason="corrupt", section="files")


def read_exact(fp: Any, n: int, path: Path) -> bytes:
    """Exactly `n` bytes from `fp`, read in pieces of at most 16 MiB; a short member is a corrupt file."""
    parts, left = [], n
    while left:
        part = fp.read(min(left, 1 << 24))
        if not part:
            raise corrupt_error(path, f"member ended {left} bytes early")
        parts.append(part)
        left -= len(part)
    return b"".join(parts)


def read_npy_header(fp: Any) -> tuple[tuple[int, ...], bool, np.dtype, int]:
    """(shape, fortran_order, dtype, header length) of the `.npy` stream at `fp`, left after its header."""
    version = np.lib.format.read_magic(fp)
    if version == (1, 0):
        shape, fortran, dtype = np.lib.format.read_array_header_1_0(fp)
    else:  # 2.0 and 3.0 differ from each other only in the header's text encoding
        shape, fortran, dtype = np.lib.format.read_array_header_2_0(fp)
    return tuple(shape), bool(fortran), dtype, fp.tell()


def _local_data_start(f: Any, info: zipfile.ZipInfo, path: Path) -> int:
    """Offset of a member's data: the local header's own name/extra lengths, which differ from the
    central directory's for zip64 members (numpy forces zip64 local headers)."""
    f.seek(info.header_offset)
    raw = f.read(_LOCAL_HEADER.size)
    if len(raw) != _LOCAL_HEADER.size:
        raise corrupt_error(path, f"local header of {info.filename} cut short")
    fields = _LOCAL_HEADER.unpack(raw)
    if fields[0] != _LOCAL_HEADER_SIGNATURE:
        raise corrupt_error(path, f"bad local header signature for {info.filename}")
    name_len, extra_len = fields[-2], fields[-1]
    return info.header_offset + _LOCAL_HEADER.size + name_len + extra_len


def scan_npz(path: Path) -> dict[str, NpyMember]:
    """Read the zip directory and every member's .npy header (never its data). Rejects pickles."""
    try:
        zf = zipfile.ZipFile(path)
    except OSError as exc:
        raise contract_error(path, f"cannot read file: {exc.strerror}", "Check the path and permissions",
                             reason="unreadable", section="files") from None
    except ZIP_READ_ERRORS as exc:
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
                    shape, fortran, dtype, header_len = read_npy_header(fp)
            except ZIP_READ_ERRORS as exc:
                raise corrupt_error(path, f"member '{info.filename}': {exc}") from None
            if dtype.hasobject:
                raise contract_error(path, f"'{key}' is an object array, which would need unpickling",
                                     "Store plain numeric arrays; nothing is ever unpickled",
                                     reason="pickle", section="dtypes")
            nbytes = math.prod(shape) * dtype.itemsize
            if header_len + nbytes != info.file_size:
                # a stored member is mapped by its header's shape: a short one would serve the bytes of
                # whatever follows it in the archive as data
                raise corrupt_error(path, f"member '{info.filename}' holds {info.file_size - header_len} bytes "
                                    f"of data but its .npy header describes {nbytes}")
            offset = None
            if info.compress_type == zipfile.ZIP_STORED and not info.flag_bits & 0x1:  # bit 0: encrypted
                offset = _local_data_start(raw, info, path) + header_len
                if offset + nbytes > file_size:
                    raise corrupt_error(path, f"'{key}' data runs past the end of the file")
            members[key] = NpyMember(key, info, dtype, shape, fortran, header_len, offset)
    return members


def read_member(zf: zipfile.ZipFile, m: NpyMember, path: Path) -> np.ndarray:
    """A whole member read into RAM (for small arrays), never unpickled; damage is a contract error."""
    try:
        with zf.open(m.info) as fp:
            return np.lib.format.read_array(fp, allow_pickle=False)
    except ZIP_READ_ERRORS as exc:
        raise corrupt_error(path, f"member '{m.info.filename}': {exc}") from None


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
                    start = f.tell() + _LOCAL_HEADER.size + len(info.filename.encode()) + 4 + 20
                    pad = -start % ALIGN
                    info.extra = struct.pack("<HH", _ALIGN_EXTRA_ID, pad) + b"\0" * pad
                with zf.open(info, "w", force_zip64=True) as fp:
                    np.lib.format.write_array(fp, arr, allow_pickle=False)
    return path
