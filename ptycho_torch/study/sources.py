"""The study's object and probe, built or read once, with content hashes for the manifest.

A file source is read without pickle and must hold a finite complex 2-D array; the object is centre-cropped
to data.object_size, the probe must be data.N square.
"""
from __future__ import annotations

import hashlib
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ptycho_torch.errors import StudyError
from ptycho_torch.simulate import make_object, make_probe
from ptycho_torch.study.config import StudyConfig


@dataclass(frozen=True)
class Sources:
    """object (S, S) complex64 and probe (N, N) complex64, with content hashes for the manifest."""

    object: np.ndarray
    probe: np.ndarray
    object_sha256: str
    probe_sha256: str


def array_sha256(array: np.ndarray) -> str:
    """SHA256 of an array's dtype, shape and bytes: its content, wherever it came from."""
    digest = hashlib.sha256(f"{array.dtype.str}{array.shape}".encode())
    digest.update(np.ascontiguousarray(array).tobytes())
    return digest.hexdigest()


def read_npz_array(path: Path, key: str, what: str) -> np.ndarray:
    """npz[key] as complex64; StudyError (naming `what`, the option or key the path came from) if the file
    is missing, unreadable without pickle, lacks the key, or the array is not a finite complex 2-D one."""
    if not path.is_file():
        raise StudyError(f"{what} {path}: no such file")
    try:
        with np.load(path, allow_pickle=False) as npz:
            if key not in npz.files:
                raise StudyError(f"{what} {path}: no {key!r} array (keys: {sorted(npz.files)})")
            array = npz[key]
    except (ValueError, OSError, EOFError, zipfile.BadZipFile) as exc:
        raise StudyError(f"{what} {path}: not a readable .npz without pickle ({exc})") from None
    if array.ndim != 2 or not np.iscomplexobj(array) or not np.isfinite(array).all():
        raise StudyError(f"{what} {path}: {key} must be a finite complex 2-D array, got {array.dtype} "
                         f"{array.shape}")
    return array.astype(np.complex64)


def load_sources(config: StudyConfig) -> Sources:
    data = config.data
    if data.probe.is_file:
        probe = read_npz_array(config.base_dir / data.probe.source, "probeGuess", "data.probe.source")
        if probe.shape != (data.N, data.N):
            raise StudyError(f"data.probe.source {data.probe.recorded}: the probe is {probe.shape} but data.N "
                             f"is {data.N}; set data.N: {probe.shape[0]} (square probes only)")
    else:
        probe = make_probe(data.N, aperture_radius_px=data.probe.aperture_radius_px,
                           defocus_rad=data.probe.defocus_rad)
    size = data.object_size
    if data.object.is_file:
        full = read_npz_array(config.base_dir / data.object.source, "objectGuess", "data.object.source")
        if min(full.shape) < size:
            raise StudyError(f"data.object.source {data.object.recorded}: objectGuess is {full.shape}, smaller "
                             f"than data.object_size {size}; lower data.object_size")
        top, left = (full.shape[0] - size) // 2, (full.shape[1] - size) // 2
        obj = full[top : top + size, left : left + size]
    else:
        obj = make_object((size, size), seed=config.seeds.data, feature_px=data.object.feature_px)
    return Sources(obj, probe, array_sha256(obj), array_sha256(probe))
