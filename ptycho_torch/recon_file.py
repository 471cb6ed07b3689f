"""recon.npz, the reconstruction file: one record for every method that writes it (inference, the baselines).

The file holds three arrays, written atomically by np.savez (nothing pickled):
- `object` (H, W) complex64, the only complex array: the reconstruction in the data's objectGuess frame
  (origin at its pixel (0, 0)), NaN where not covered;
- `coverage` (H, W) bool: region.covered(weight), the pixels the scan lit well enough to be recovered;
- `weight` (H, W) float32: the summed probe intensity over all positions, each probe normalised to peak 1.

load_recon also reads what other tools write: an .npy of one complex 2-D image, or an .npz with one complex
2-D array (named `object`, or the only one) and an optional `coverage`. Torch-free on purpose: `ptycho-torch
evaluate` reads reconstructions without importing torch.
"""
from __future__ import annotations

import io
import math
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ptycho_torch.atomic_io import atomic_write_bytes
from ptycho_torch.errors import EvaluateError

RECON_NAME = "recon.npz"
UNCOVERED = np.complex64(complex(math.nan, math.nan))


@dataclass(frozen=True)
class ReconRecord:
    """What recon.npz holds (see the module docstring); build one with masked()."""

    object: np.ndarray  # (H, W) complex64, NaN where not covered
    coverage: np.ndarray  # (H, W) bool
    weight: np.ndarray  # (H, W) float32, summed peak-1 probe intensity

    def __post_init__(self) -> None:
        shape = np.shape(self.object)
        if len(shape) != 2 or not np.iscomplexobj(self.object):
            raise ValueError(f"a recon record's object must be a complex 2-D array, got "
                             f"{np.asarray(self.object).dtype} {shape}")
        for name in ("coverage", "weight"):
            if np.shape(getattr(self, name)) != shape:
                raise ValueError(f"a recon record's {name} is {np.shape(getattr(self, name))} but its object "
                                 f"is {shape}; they share one pixel frame")
        if np.asarray(self.coverage).dtype != np.bool_:
            raise ValueError(f"a recon record's coverage must be bool, got {np.asarray(self.coverage).dtype}")

    @classmethod
    def masked(cls, estimate: np.ndarray, coverage: np.ndarray, weight: np.ndarray) -> ReconRecord:
        """The record of an estimate (H, W): NaN outside coverage, each array in its stored dtype."""
        mask = np.asarray(coverage, dtype=bool)
        obj = np.where(mask, estimate, UNCOVERED).astype(np.complex64)
        return cls(object=obj, coverage=mask, weight=np.asarray(weight, dtype=np.float32))


def save_recon(path: str | Path, record: ReconRecord) -> None:
    """Write the record's three arrays to `path` (an .npz) atomically."""
    buffer = io.BytesIO()
    np.savez(buffer, object=record.object, coverage=record.coverage, weight=record.weight)
    atomic_write_bytes(path, buffer.getvalue())


def read_arrays(path: str | Path, what: str) -> np.ndarray | dict[str, np.ndarray]:
    """An .npy array or all arrays of an .npz, read without pickle; EvaluateError naming `what` (the
    option the path came from) when it is missing or unreadable."""
    source = Path(path)
    if not source.is_file():
        raise EvaluateError(f"{what} {source}: no such file")
    try:
        loaded = np.load(source, allow_pickle=False)
        if isinstance(loaded, np.ndarray):
            return loaded
        with loaded as npz:
            return {key: npz[key] for key in npz.files}
    except (ValueError, OSError, EOFError, zipfile.BadZipFile) as exc:
        raise EvaluateError(f"{what} {source}: not a readable .npz/.npy without pickle ({exc})") from None


def _is_complex_image(array: np.ndarray) -> bool:
    return np.iscomplexobj(array) and array.ndim == 2


def load_recon(path: str | Path) -> tuple[np.ndarray, np.ndarray | None]:
    """(object (H, W) complex, coverage (H, W) bool or None) from a reconstruction file; EvaluateError,
    naming --recon and what was found, when it holds no such object."""
    loaded = read_arrays(path, "--recon")
    if isinstance(loaded, np.ndarray):
        arrays: dict[str, np.ndarray] = {"(array)": loaded}
    else:
        arrays = loaded
    if "object" in arrays:
        obj = arrays["object"]
        if not _is_complex_image(obj):
            raise EvaluateError(f"--recon {path}: 'object' must be a complex 2-D array, got {obj.dtype} "
                                f"{obj.shape}")
    else:
        candidates = [k for k, v in arrays.items() if _is_complex_image(v)]
        if len(candidates) != 1:
            raise EvaluateError(
                f"--recon {path}: expected exactly one complex 2-D array (or one named 'object'), found "
                f"{len(candidates)} ({candidates}); keys present: {sorted(arrays)}")
        obj = arrays[candidates[0]]
    coverage = arrays.get("coverage")
    if coverage is not None and (coverage.shape != obj.shape or coverage.dtype != np.bool_):
        raise EvaluateError(f"--recon {path}: 'coverage' must be bool with the object's shape {obj.shape}, "
                            f"got {coverage.dtype} {coverage.shape}")
    return obj, coverage
