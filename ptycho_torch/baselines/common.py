"""What the iterative baselines share beyond physics: input checks, the pattern feed, batching, statistics.

Conventions are physics': positions are (x, y) object-pixel centres (x = column), the object frame's
origin is its pixel (0, 0), the beam moves over the object's fixed pixel grid (physics.forward), the far
field is fftshift(fft2(., norm="ortho")). Stored diffraction is an
amplitude sqrt(counts); the model's counts are (A * s)^2 with A the unit-scale amplitude of object * probe
and s = physics.intensity_scale(probe, mean counts per pattern), which puts the object at |O| ~ 1.
"""
from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
import torch
from numpy.typing import ArrayLike
from torch import Tensor

from ptycho_torch import physics
from ptycho_torch.baselines.result import IterationRecord
from ptycho_torch.device import DeviceError, resolve_device
from ptycho_torch.errors import BaselineError

PRELOAD_FRACTION = 0.25  # copy the whole diffraction set to the GPU when it takes at most this much free memory
SCALE_CHUNK = 1024  # patterns per read when measuring the mean counts


# ------------------------------------------------------------------------------------------ inputs


@dataclass(frozen=True)
class Problem:
    """Checked inputs. diffraction stays whatever array-like it was (a memmap is never copied whole)."""

    diffraction: Any  # (P, N, N) amplitude, indexable by an int64 array
    positions: np.ndarray  # (P, 2) float64 (x, y)
    probe: np.ndarray  # (N, N) complex64
    object_shape: tuple[int, int]
    initial_object: np.ndarray  # (H, W) complex64

    @property
    def n_patterns(self) -> int:
        return int(self.positions.shape[0])

    @property
    def patch_size(self) -> int:
        return int(self.probe.shape[0])


def check_problem(
    diffraction: Any,
    positions: ArrayLike,
    probe: ArrayLike,
    object_shape: tuple[int, int],
    initial_object: ArrayLike | None = None,
) -> Problem:
    """Validate shapes, dtypes and that every patch lies inside the object; raise BaselineError if not."""
    shape = getattr(diffraction, "shape", None)
    if shape is None or len(shape) != 3:
        raise BaselineError(
            f"diffraction must be an (n_patterns, N, N) array of amplitudes, got shape {shape}; "
            "a legacy (N, N, n) cube must be transposed by the data bridge first"
        )
    n_patterns, height, width = (int(v) for v in shape)
    if n_patterns < 1:
        raise BaselineError("diffraction holds no patterns; nothing to reconstruct")
    if np.iscomplexobj(np.empty(0, dtype=getattr(diffraction, "dtype", np.float32))):
        raise BaselineError("diffraction must be real amplitudes sqrt(counts), not complex fields")
    try:
        pos = np.asarray(positions, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise BaselineError(f"positions must be a numeric (n_patterns, 2) array of (x, y): {exc}") from None
    if pos.ndim != 2 or pos.shape[1] != 2:
        raise BaselineError(f"positions must have shape (n_patterns, 2) = (x, y) per pattern, got {pos.shape}")
    if pos.shape[0] != n_patterns:
        raise BaselineError(
            f"{pos.shape[0]} positions but {n_patterns} diffraction patterns; they must match one to one"
        )
    if not np.isfinite(pos).all():
        bad = int(np.flatnonzero(~np.isfinite(pos).all(axis=1))[0])
        raise BaselineError(f"position {bad} is {pos[bad].tolist()}; every position must be finite")
    pr = np.asarray(probe)
    if pr.ndim != 2 or pr.shape[0] != pr.shape[1] or not np.iscomplexobj(pr):
        raise BaselineError(
            f"probe must be one complex (N, N) mode, got {pr.dtype} {pr.shape}; pass probeGuess "
            "(multi-mode probes are not supported by the baselines)"
        )
    if pr.shape != (height, width):
        raise BaselineError(f"probe is {pr.shape} but the patterns are {(height, width)}; they must match")
    if not np.isfinite(pr).all() or not np.abs(pr).max() > 0:
        raise BaselineError("probe must be finite and not all zero")
    try:
        rows, cols = (int(v) for v in object_shape)
    except (TypeError, ValueError):
        raise BaselineError(f"object_shape must be (rows, cols), got {object_shape!r}") from None
    if rows < 1 or cols < 1:
        raise BaselineError(f"object_shape must be positive (rows, cols), got {object_shape!r}")
    _check_inside(pos, height, (rows, cols))
    if initial_object is None:
        init = np.ones((rows, cols), dtype=np.complex64)
    else:
        init = np.asarray(initial_object).astype(np.complex64)
        if init.shape != (rows, cols):
            raise BaselineError(f"initial_object is {init.shape} but object_shape is {(rows, cols)}")
        if not np.isfinite(init).all():
            raise BaselineError("initial_object must be finite")
    return Problem(diffraction, pos, pr.astype(np.complex64), (rows, cols), init)


def _check_inside(pos: np.ndarray, n: int, object_shape: tuple[int, int]) -> None:
    """Every patch must lie inside the object.

    The object window is cut at the nearest pixel; the check uses the bilinear pixel range (floor to ceil),
    which bounds the nearest pixel whatever precision a solver later rounds the position in
    (physics.pixel_range), and physics.frame_shape with the same n gives the smallest frame that passes it.
    """
    rows, cols = object_shape
    before, after = n // 2, n - 1 - n // 2
    first_x, last_x = physics.pixel_range(pos[:, 0], n)
    first_y, last_y = physics.pixel_range(pos[:, 1], n)
    outside = (first_x < 0) | (last_x > cols - 1) | (first_y < 0) | (last_y > rows - 1)
    if outside.any():
        first = int(np.flatnonzero(outside)[0])
        raise BaselineError(
            f"{int(outside.sum())} of {len(pos)} positions put their {n}x{n} patch outside the "
            f"{rows}x{cols} object (first: index {first} at (x, y) = ({pos[first, 0]:.3f}, {pos[first, 1]:.3f})); centres "
            f"need x in [{before}, {cols - 1 - after}] and y in [{before}, {rows - 1 - after}]. "
            "Pass a larger object_shape or positions in the object's pixel frame"
        )


# ------------------------------------------------------------------------------------------ data


def resolve(device: str) -> torch.device:
    try:
        return resolve_device(device)
    except DeviceError as exc:
        raise BaselineError(str(exc)) from None


class PatternFeed:
    """Batches of measured amplitudes (B, N, N) float32 on the device, read lazily from any array-like.

    The whole set is copied to the GPU once when it takes at most PRELOAD_FRACTION of the free memory;
    otherwise each batch is gathered (sorted fancy indexing; a memmap is never copied whole) and moved.
    Values are checked (finite, >= 0) on their first read.
    """

    def __init__(self, diffraction: Any, device: torch.device) -> None:
        self.data = diffraction
        self.device = device
        self.n = int(diffraction.shape[0])
        self.checked = np.zeros(self.n, dtype=bool)
        self.resident: Tensor | None = None
        nbytes = self.n * int(np.prod(diffraction.shape[1:])) * 4
        if device.type == "cuda" and nbytes <= PRELOAD_FRACTION * torch.cuda.mem_get_info(device)[0]:
            parts = [self._read(np.arange(k, min(k + SCALE_CHUNK, self.n))) for k in range(0, self.n, SCALE_CHUNK)]
            self.resident = torch.cat(parts)

    def _read(self, index: np.ndarray) -> Tensor:
        block = np.asarray(self.data[index], dtype=np.float32)
        if not self.checked[index].all():
            if not np.isfinite(block).all() or (block < 0).any():
                bad = int(index[np.flatnonzero(~(np.isfinite(block) & (block >= 0)).reshape(len(index), -1).all(1))[0]])
                raise BaselineError(
                    f"diffraction pattern {bad} holds NaN, inf or negative values; amplitudes must be "
                    "finite sqrt(counts) >= 0"
                )
            self.checked[index] = True
        tensor = torch.from_numpy(block)
        if self.device.type == "cuda":
            tensor = tensor.pin_memory()
        return tensor.to(self.device, non_blocking=True)

    def batch(self, index: np.ndarray) -> Tensor:
        """index (B,) int64, sorted for locality in a memory map -> (B, N, N) float32 on the device."""
        if self.resident is not None:
            return self.resident[torch.from_numpy(index).to(self.device)]
        return self._read(index)

    def all_patterns(self) -> np.ndarray:
        """(P, N, N) float32 on the CPU: every pattern, read and checked chunk by chunk."""
        return np.concatenate([self._read(np.arange(k, min(k + SCALE_CHUNK, self.n))).cpu().numpy()
                               for k in range(0, self.n, SCALE_CHUNK)])

    def mean_counts(self) -> float:
        """Mean over patterns of sum(amplitude^2), float64 sums, read chunk by chunk."""
        total = 0.0
        for k in range(0, self.n, SCALE_CHUNK):
            block = self.batch(np.arange(k, min(k + SCALE_CHUNK, self.n)))
            total += float(block.double().square().sum())
        return total / self.n


Batches = Callable[[], Iterator[tuple[Tensor, Tensor]]]  # a fresh pass: (measured (B, N, N), centres (B, 2))


def batches(n: int, batch_size: int, rng: np.random.Generator) -> list[np.ndarray]:
    """A fresh random order of range(n) cut into batches; each batch sorted (memmap locality)."""
    order = rng.permutation(n)
    return [np.sort(order[start : start + batch_size]) for start in range(0, n, batch_size)]


def sparse_sets(
    positions: np.ndarray, window_px: int, batch_size: int, rng: np.random.Generator
) -> list[np.ndarray]:
    """Batches of at most batch_size positions (P, 2) whose window_px-wide windows never overlap.

    The object is cut into square cells of window_px + 1 pixels. Two positions in different cells of the
    same parity class (column index mod 2, row index mod 2) are more than a cell apart along some axis, so
    their windows are disjoint. Each cell's positions are ranked in a random order; a sparse set is one
    parity class and one rank, so it holds at most one position per cell. Sets larger than batch_size are
    cut; the batches come in a random order, each sorted.
    """
    cell = window_px + 1
    column = np.floor(positions[:, 0] / cell).astype(np.int64)
    row = np.floor(positions[:, 1] / cell).astype(np.int64)
    cell_id = np.unique(np.stack([row, column], axis=1), axis=0, return_inverse=True)[1].reshape(-1)
    priority = rng.permutation(len(positions))
    order = np.lexsort((priority, cell_id))  # by cell, then by the random priority
    rank = np.empty(len(positions), dtype=np.int64)
    first = np.searchsorted(cell_id[order], cell_id[order], side="left")
    rank[order] = np.arange(len(positions)) - first
    key = (rank * 2 + column % 2) * 2 + row % 2
    result: list[np.ndarray] = []
    for value in np.unique(key):
        members = np.flatnonzero(key == value)[rng.permutation(int((key == value).sum()))]
        result += [np.sort(members[start : start + batch_size]) for start in range(0, len(members), batch_size)]
    return [result[i] for i in rng.permutation(len(result))]


# ------------------------------------------------------------------------------------------ statistics


class PassStats:
    """Running sums over one pass: Poisson deviance, squared amplitude error, measured power, pixels.

    The sums stay on the device (float64) until record(), so a GPU pass is never stalled by a readback.
    """

    def __init__(self) -> None:
        self.started = time.perf_counter()
        self.sums: Tensor | None = None  # (deviance, amplitude error, measured power, measured pixels)
        self.excluded = 0.0  # seconds of the pass spent on scoring only, not counted as its time

    def exclude(self, seconds: float) -> None:
        """Leave `seconds` (spent scoring the estimate, not reconstructing) out of the pass's time."""
        self.excluded += seconds

    def add(self, rate: Tensor, measured: Tensor) -> None:
        """rate: predicted counts (B, N, N); measured: amplitudes sqrt(counts) (B, N, N), NaN where a pixel
        is held out (not counted)."""
        valid = measured.isfinite()
        amplitude = torch.where(valid, measured, 0.0).double()
        counts = amplitude.square()
        rate = torch.where(valid, rate.detach(), 0.0).double()
        # c log(c / rate), 0 where c = 0; rate floored so a dark prediction under a count stays finite
        log_term = torch.xlogy(counts, counts) - torch.xlogy(counts, rate.clamp_min(1e-30))
        part = torch.stack([
            (2.0 * (rate - counts + log_term)).sum(),
            (rate.sqrt() - amplitude).square().sum(),
            counts.sum(),
            valid.sum().double(),
        ])
        self.sums = part if self.sums is None else self.sums + part

    def record(self, iteration: int) -> IterationRecord:
        if self.sums is None:
            return IterationRecord(iteration, math.nan, math.nan, self._seconds())
        deviance, error, power, pixels = (float(v) for v in self.sums.cpu())  # the readback waits for the device
        fourier = error / power if power > 0 else math.nan
        return IterationRecord(iteration, deviance / pixels if pixels else math.nan, fourier, self._seconds())

    def _seconds(self) -> float:
        return time.perf_counter() - self.started - self.excluded


class Solver(Protocol):
    """What reconstruct_iterative() drives: object (H, W) and probe (N, N) tensors, one iterate() per iteration."""

    object: Tensor
    probe: Tensor

    def iterate(self, iteration: int, batches: Batches, stats: PassStats) -> None: ...


def check_finite(record: IterationRecord) -> None:
    if not (math.isfinite(record.deviance) and math.isfinite(record.fourier_error)):
        raise BaselineError(
            f"iteration {record.iteration}: the fit became NaN or inf; lower object_step / probe_step"
        )
