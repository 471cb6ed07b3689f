"""MemmapDatasetBridge: an NPZ ptychography dataset served as truly memory-mapped arrays.

`np.load(npz, mmap_mode="r")` silently ignores `mmap_mode` for .npz files and reads every member into RAM.
This bridge reads the zip directory itself (`npz_format`): a diffraction member stored uncompressed as
native float32 C-order (N, H, W) is mapped in place at its byte offset inside the .npz; anything else is
converted once, chunk by chunk, into a float32 .npy cache that is then mapped (`npy_cache`). Nothing is
ever unpickled. The bridge pickles as file names and offsets; each process maps the files again.

Arrays served (see docs/specs/data_contracts.md):
    diffraction  np.memmap float32 (N, H, W) amplitude; `diff3d` is the same object
    xcoords, ycoords  float64 (N,) scan positions in object pixels (x: column, y: row)
    probeGuess  complex64 (H, W); objectGuess complex64 (M, M') or None
    scan_index  int64 (N,); nphotons float or None
"""
from __future__ import annotations

import json
import os
import zipfile
import zlib
from pathlib import Path
from typing import Any, Literal

import numpy as np

from ptycho_torch import data_contract as dc
from ptycho_torch.data_contract import contract_error
from ptycho_torch.npy_cache import build_or_reuse_cache, patterns_per_chunk
from ptycho_torch.npz_format import (
    ALIGN,
    MappedArray,
    NpyMember,
    corrupt_error,
    read_member,
    save_npz,
    scan_npz,
)

# save_npz stays importable from here: it writes the files this bridge maps in place.
__all__ = ["FAST_SAMPLE_PATTERNS", "MAP_SMALL_ARRAYS_FROM", "MappedArray", "MemmapDatasetBridge", "Validate",
           "inspect_command", "save_npz"]

FAST_SAMPLE_PATTERNS = 16
MAP_SMALL_ARRAYS_FROM = 64 * 2**10  # bytes; smaller members are simply read

Validate = Literal["fast", "full"]


def _spread_indices(n: int, k: int = FAST_SAMPLE_PATTERNS) -> np.ndarray:
    """Up to `k` distinct pattern indices spread evenly over 0..n-1, first and last included."""
    return np.unique(np.linspace(0, n - 1, min(n, k)).astype(np.int64))


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
                return read_member(zf, m, self.path)

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
        return None, dc.check_complex_2d(read_member(zf, m, self.path), "objectGuess", self.path)

    def _validate_values(self, m: NpyMember) -> int:
        spec = self._diff_spec
        n = len(self)
        if self.validate == "fast":
            idx = _spread_indices(n)
            for i in idx:
                dc.check_amplitude(np.asarray(self.diffraction[i:i + 1]), first_index=int(i),
                                   key=self.source_key, path=self.path)
            return len(idx)
        h, w = self.plan.pattern_shape
        per = patterns_per_chunk(self.plan)
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
                    raise corrupt_error(self.path, "diffraction data cut short")
                if in_place:
                    crc = zlib.crc32(raw, crc)
                chunk = np.frombuffer(raw, dtype="<f4").reshape(k, h, w)
                dc.check_amplitude(chunk, first_index=k0, key=self.source_key, path=self.path)
        if in_place and crc != m.info.CRC:
            raise corrupt_error(self.path, f"CRC mismatch in member '{m.info.filename}'")
        if self._object_spec is not None:
            dc.check_finite(self._object_spec.open(), "objectGuess", self.path)
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
        sample = self.diffraction[_spread_indices(len(self))]
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
            "aligned_64": self._diff_spec.offset % ALIGN == 0,
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
