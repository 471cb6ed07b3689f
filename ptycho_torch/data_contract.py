"""The NPZ data contract for ptychography datasets (normative text: docs/specs/data_contracts.md).

This module makes the contract's decisions on metadata and small arrays, with no file IO: which key holds
the diffraction, which layout a shape is in, how a stored dtype becomes float32 amplitude, and whether
values are legal. `memmap_bridge` (with `npz_format` and `npy_cache`) reads the file and asks this module.

Shapes: diffraction (N, H, W) amplitude; xcoords, ycoords (N,) float64; probeGuess (H, W) complex64;
objectGuess (M, M') complex64; scan_index (N,) int64; nphotons a scalar.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

import numpy as np

from ptycho_torch.errors import DataContractError

log = logging.getLogger(__name__)

SPEC_PATH = "docs/specs/data_contracts.md"
CANONICAL_KEY = "diffraction"
LEGACY_KEY = "diff3d"
REQUIRED_KEYS = ("xcoords", "ycoords", "probeGuess")
OPTIONAL_KEYS = ("objectGuess", "scan_index", "nphotons")
KNOWN_KEYS = (CANONICAL_KEY, LEGACY_KEY, *REQUIRED_KEYS, *OPTIONAL_KEYS)


def spec_ref(section: str) -> str:
    return f"{SPEC_PATH}#{section}"


def contract_error(path: str | Path, problem: str, fix: str, *, reason: str,
                   section: str) -> DataContractError:
    """Build the one message format every contract violation uses: what, where, what to do, which rule."""
    return DataContractError(
        f"{path}: {problem}. {fix} (see {spec_ref(section)})", path=path, reason=reason, section=section
    )


class Layout(StrEnum):
    NHW = "N,H,W"
    LEGACY_HWN = "H,W,N"


class ValueKind(StrEnum):
    """What the stored numbers mean: floats are amplitudes, integers are legacy photon counts."""

    AMPLITUDE = "amplitude"
    COUNTS = "counts"


@dataclass(frozen=True)
class DiffractionPlan:
    """How the stored diffraction becomes a float32 (N, H, W) amplitude array."""

    key: str
    layout: Layout
    kind: ValueKind
    stored_dtype: np.dtype
    stored_shape: tuple[int, ...]
    fortran_order: bool

    @property
    def n_patterns(self) -> int:
        return self.stored_shape[0] if self.layout is Layout.NHW else self.stored_shape[2]

    @property
    def pattern_shape(self) -> tuple[int, int]:
        s = self.stored_shape
        return (s[1], s[2]) if self.layout is Layout.NHW else (s[0], s[1])

    @property
    def maps_in_place(self) -> bool:
        """True when the stored bytes already are the float32 C-order (N, H, W) array we serve."""
        return (
            self.layout is Layout.NHW
            and self.kind is ValueKind.AMPLITUDE
            and self.stored_dtype == np.dtype(np.float32)
            and self.stored_dtype.isnative
            and not self.fortran_order
        )

    def notes(self) -> list[str]:
        out: list[str] = []
        if self.key == LEGACY_KEY:
            out.append(f"read from legacy key '{LEGACY_KEY}' ('{CANONICAL_KEY}' absent)")
        if self.kind is ValueKind.COUNTS:
            out.append(f"integer {self.stored_dtype} counts converted to amplitude sqrt(counts) float32")
        elif self.stored_dtype != np.dtype(np.float32) or not self.stored_dtype.isnative:
            out.append(f"{self.stored_dtype} converted to float32")
        if self.layout is Layout.LEGACY_HWN:
            out.append(f"legacy layout (H,W,N) {self.stored_shape} transposed to (N,H,W)")
        if self.fortran_order:
            out.append("Fortran-order array rewritten in C order")
        return out


def resolve_diffraction_key(keys: list[str], stored: dict[str, tuple[np.dtype, tuple[int, ...]]],
                            path: str | Path) -> str:
    """Pick the key holding diffraction: canonical first, legacy alias only when canonical is absent.

    `stored` maps key -> (dtype, shape) for the two candidate keys that exist; used only to warn when
    both exist and disagree.
    """
    has_canonical, has_legacy = CANONICAL_KEY in keys, LEGACY_KEY in keys
    if has_canonical and has_legacy:
        (d1, s1), (d2, s2) = stored[CANONICAL_KEY], stored[LEGACY_KEY]
        if d1 != d2 or s1 != s2:
            log.warning(
                "%s: both '%s' %s %s and legacy '%s' %s %s are present and differ; using '%s' "
                "(the canonical key wins; see %s)",
                path, CANONICAL_KEY, d1, s1, LEGACY_KEY, d2, s2, CANONICAL_KEY, spec_ref("keys"),
            )
        return CANONICAL_KEY
    if has_canonical:
        return CANONICAL_KEY
    if has_legacy:
        return LEGACY_KEY
    raise contract_error(
        path,
        f"no diffraction array: neither the canonical key '{CANONICAL_KEY}' nor the legacy key "
        f"'{LEGACY_KEY}' is present; keys present: {sorted(keys)}",
        f"Save the (N,H,W) diffraction amplitudes under '{CANONICAL_KEY}'",
        reason="missing-key", section="keys",
    )


def value_kind(dtype: np.dtype, *, key: str, path: str | Path) -> ValueKind:
    if dtype.hasobject or dtype.names is not None:
        raise contract_error(path, f"'{key}' has dtype {dtype}, which is not a plain numeric array",
                             "Store a numeric array", reason="dtype", section="dtypes")
    if dtype.kind == "f":
        return ValueKind.AMPLITUDE
    if dtype.kind in "iu":
        return ValueKind.COUNTS
    raise contract_error(
        path, f"'{key}' has dtype {dtype}; diffraction must be real amplitudes (float) or counts (integer)",
        "Store float32 amplitudes (sqrt of counts)", reason="dtype", section="dtypes",
    )


def decide_layout(shape: tuple[int, ...], n_positions: int, probe_shape: tuple[int, ...], *, key: str,
                  path: str | Path) -> Layout:
    """(N,H,W) whenever the shape is valid as such (cubes included); legacy (H,W,N) only when that
    reading is the only valid one; otherwise an error naming the mismatch."""
    if len(shape) != 3:
        raise contract_error(path, f"'{key}' has {len(shape)} dimensions, shape {shape}; expected 3 (N,H,W)",
                             "Stack the patterns into one (N,H,W) array", reason="ndim", section="layouts")
    if 0 in shape or n_positions == 0:
        raise contract_error(path, f"empty dataset: '{key}' has shape {shape} and there are {n_positions} "
                             "scan positions", "Write at least one pattern and its position",
                             reason="empty", section="layouts")
    hw = tuple(probe_shape)
    if shape[0] == n_positions and shape[1:] == hw:
        return Layout.NHW
    if shape[2] == n_positions and shape[:2] == hw:
        return Layout.LEGACY_HWN
    if shape[1:] == hw or (shape[0] != n_positions and shape[2] != n_positions):
        problem = (f"length mismatch: '{key}' {shape} holds {shape[0]} patterns but xcoords/ycoords hold "
                   f"{n_positions} positions")
        fix = "Write one (x, y) position per pattern"
        reason = "length"
    else:
        problem = (f"pattern size mismatch: '{key}' {shape} has patterns of "
                   f"{shape[1:] if shape[0] == n_positions else shape[:2]} but probeGuess is {hw}")
        fix = "Patterns and probe must have the same (H,W)"
        reason = "pattern-size"
    raise contract_error(path, problem, fix, reason=reason, section="layouts")


def plan_diffraction(key: str, dtype: np.dtype, shape: tuple[int, ...], fortran_order: bool,
                     n_positions: int, probe_shape: tuple[int, ...], path: str | Path) -> DiffractionPlan:
    kind = value_kind(dtype, key=key, path=path)
    layout = decide_layout(shape, n_positions, probe_shape, key=key, path=path)
    return DiffractionPlan(key, layout, kind, dtype, tuple(shape), fortran_order)


def to_amplitude(chunk: np.ndarray, kind: ValueKind, *, first_index: int, key: str,
                 path: str | Path) -> np.ndarray:
    """Convert a (k, H, W) chunk of stored values to float32 amplitude and check it.

    Counts go through float64 so that no integer arithmetic can overflow; sqrt(uint16 max) is exact there.
    """
    if kind is ValueKind.COUNTS:
        if chunk.dtype.kind == "i" and chunk.size and chunk.min() < 0:
            bad = _first_pattern(chunk < 0, first_index)
            raise contract_error(path, f"'{key}' holds negative counts (first at pattern {bad})",
                                 "Counts must be >= 0", reason="negative", section="values")
        out = np.sqrt(chunk.astype(np.float64)).astype(np.float32)
    else:
        with np.errstate(over="ignore"):  # values beyond float32 become Inf and are reported just below
            out = chunk.astype(np.float32, copy=False)
    check_amplitude(out, first_index=first_index, key=key, path=path)
    return out


def _first_pattern(bad: np.ndarray, first_index: int) -> int:
    """Index in the whole set of the first pattern of a (k, H, W) chunk with a True in `bad`."""
    return first_index + int(np.argwhere(bad)[0][0])


def check_amplitude(chunk: np.ndarray, *, first_index: int, key: str, path: str | Path) -> None:
    """Raise on NaN, Inf or negative values in a float32 (k, H, W) chunk, naming the first bad pattern."""
    finite = np.isfinite(chunk)
    if not finite.all():
        bad = _first_pattern(~finite, first_index)
        raise contract_error(path, f"'{key}' holds NaN or Inf (first at pattern {bad}; after conversion to "
                             "float32 when stored in another dtype)", "Remove or repair the bad patterns",
                             reason="non-finite", section="values")
    if chunk.size and chunk.min() < 0:
        bad = _first_pattern(chunk < 0, first_index)
        raise contract_error(path, f"'{key}' holds negative amplitudes (first at pattern {bad})",
                             "Amplitudes are sqrt(counts) and must be >= 0", reason="negative",
                             section="values")


def _numeric(arr: np.ndarray, key: str, path: str | Path, *, allow_complex: bool) -> None:
    ok = arr.dtype.kind in ("fiuc" if allow_complex else "fiu") and not arr.dtype.hasobject
    if not ok:
        want = "numeric" if allow_complex else "real numeric"
        raise contract_error(path, f"'{key}' has dtype {arr.dtype}; expected {want}",
                             "Store a plain numeric array", reason="dtype", section="dtypes")


def check_finite(arr: np.ndarray, key: str, path: str | Path) -> None:
    """Raise when `arr` holds NaN or Inf, naming `key`."""
    if not np.isfinite(arr).all():
        raise contract_error(path, f"'{key}' holds NaN or Inf", f"Repair '{key}'", reason="non-finite",
                             section="values")


def check_coords(x: np.ndarray, y: np.ndarray, path: str | Path) -> tuple[np.ndarray, np.ndarray]:
    """Return (xcoords, ycoords) as float64 (N,) arrays."""
    for key, arr in (("xcoords", x), ("ycoords", y)):
        _numeric(arr, key, path, allow_complex=False)
        if arr.ndim != 1:
            raise contract_error(path, f"'{key}' has shape {arr.shape}; expected (N,)",
                                 "Store one coordinate per pattern", reason="ndim", section="layouts")
    if x.shape != y.shape:
        raise contract_error(path, f"length mismatch: xcoords has {x.shape[0]} entries, ycoords {y.shape[0]}",
                             "Write one (x, y) pair per pattern", reason="length", section="layouts")
    x64, y64 = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)  # no copy if float64
    check_finite(x64, "xcoords", path)
    check_finite(y64, "ycoords", path)
    return x64, y64


def check_complex_2d(arr: np.ndarray, key: str, path: str | Path) -> np.ndarray:
    """probeGuess / objectGuess: any numeric 2-D array, returned as complex64."""
    _numeric(arr, key, path, allow_complex=True)
    if arr.ndim != 2 or 0 in arr.shape:
        raise contract_error(path, f"'{key}' has shape {arr.shape}; expected a non-empty 2-D array",
                             f"Store '{key}' as (H,W)", reason="ndim", section="layouts")
    out = arr.astype(np.complex64)
    check_finite(out, key, path)
    return out


def check_scan_index(arr: np.ndarray | None, n: int, path: str | Path) -> np.ndarray:
    if arr is None:
        return np.arange(n, dtype=np.int64)
    if arr.dtype.kind not in "iu":
        raise contract_error(path, f"'scan_index' has dtype {arr.dtype}; expected integers",
                             "Store scan_index as an integer array", reason="dtype", section="dtypes")
    if arr.shape != (n,):
        raise contract_error(path, f"'scan_index' has shape {arr.shape}; expected ({n},)",
                             "One index per pattern", reason="length", section="layouts")
    return np.asarray(arr, dtype=np.int64)


def check_nphotons(arr: np.ndarray | None, path: str | Path) -> float | None:
    if arr is None:
        return None
    _numeric(arr, "nphotons", path, allow_complex=False)
    if arr.size != 1:
        raise contract_error(path, f"'nphotons' has shape {arr.shape}; expected a scalar",
                             "Store nphotons as a 0-d array", reason="ndim", section="layouts")
    value = float(arr.reshape(()))
    if not np.isfinite(value) or value <= 0:
        raise contract_error(path, f"'nphotons' is {value}; expected a positive finite number",
                             "Store the mean total counts per pattern", reason="values", section="values")
    return value
