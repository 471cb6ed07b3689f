"""Small NPZ datasets and checks shared by the data-layer tests (bridge, NPZ format, conversion cache)."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from ptycho_torch.data_contract import DataContractError
from ptycho_torch.memmap_bridge import MemmapDatasetBridge


def dataset_arrays(n: int = 10, h: int = 64, w: int | None = None, *, seed: int = 0,
                   dtype: Any = np.float32) -> dict[str, np.ndarray]:
    """A small contract-valid dataset: diffraction (n, h, w) and its companions."""
    w = h if w is None else w
    rng = np.random.default_rng(seed)
    return {
        "diffraction": (rng.random((n, h, w)) * 50).astype(dtype),
        "xcoords": rng.random(n) * 100,
        "ycoords": rng.random(n) * 100,
        "probeGuess": (rng.random((h, w)) + 1j * rng.random((h, w))).astype(np.complex64),
    }


def write_npz(path: Path, arrays: dict[str, Any], *, compress: bool = False) -> Path:
    (np.savez_compressed if compress else np.savez)(path, **arrays)
    return path


def reference_amplitude(stored: np.ndarray) -> np.ndarray:
    """The contract's conversion, written independently: counts -> sqrt in float64, floats -> float32."""
    if stored.dtype.kind in "iu":
        return np.sqrt(stored.astype(np.float64)).astype(np.float32)
    return stored.astype(np.float32)


def cache_files(directory: Path) -> list[Path]:
    return sorted(directory.glob("*.npy")) if directory.is_dir() else []


class ContractErrorChecks:
    """Test-class base: open a damaged or invalid file and check the contract error it gives."""

    def _expect(self, path: Path, reason: str, *needles: str, validate: str = "fast",
                cache_dir: Path | None = None) -> DataContractError:
        with pytest.raises(DataContractError) as info:
            MemmapDatasetBridge(path, validate=validate, cache_dir=cache_dir)  # type: ignore[arg-type]
        err = info.value
        assert err.reason == reason, str(err)
        msg = str(err)
        assert str(path.resolve() if path.exists() else path) in msg
        assert "docs/specs/data_contracts.md#" in msg
        for needle in needles:
            assert needle in msg, (needle, msg)
        return err

    def _with(self, tmp_path: Path, name: str = "bad.npz", compress: bool = False, **changes: Any) -> Path:
        arrays = dataset_arrays(6, 8)
        arrays.update(changes)
        kept = {k: v for k, v in arrays.items() if v is not None}
        return write_npz(tmp_path / name, kept, compress=compress)


class UnpickleTrap:
    """Unpickling this creates a marker file, proving whether anything was unpickled."""

    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[Any, tuple[str, str]]:
        return (_touch, (self.marker, "x"))


def _touch(path: str, text: str) -> None:
    Path(path).write_text(text)

