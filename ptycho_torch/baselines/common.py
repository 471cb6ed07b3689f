"""What the iterative baselines share: options, the result record, input checks, batched data, statistics.

Conventions are physics.py's: positions are (x, y) object-pixel centres (x = column), the object frame's
origin is its pixel (0, 0), the far field is fftshift(fft2(., norm="ortho")). Stored diffraction is an
amplitude sqrt(counts); the model's counts are (A * s)^2 with A the unit-scale amplitude of object * probe
and s = physics.intensity_scale(probe, mean counts per pattern), which puts the object at |O| ~ 1.
"""
from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Protocol

import numpy as np
import torch
from numpy.typing import ArrayLike
from torch import Tensor

from ptycho_torch import options, physics
from ptycho_torch.device import DeviceError, resolve_device
from ptycho_torch.errors import BaselineError
from ptycho_torch.region import COVERAGE_THRESHOLD
from ptycho_torch.simulate import FOURIER_PAD

PRELOAD_FRACTION = 0.25  # copy the whole diffraction set to the GPU when it takes at most this much free memory
SCALE_CHUNK = 1024  # patterns per read when measuring the mean counts


class Method(StrEnum):
    EPIE = "epie"  # mini-batch rPIE over sparse sets of positions (epie.py)
    ML = "ml"  # Poisson maximum likelihood, preconditioned conjugate gradients, autograd gradients (ml.py)


# Default step sizes per method: (object, probe). ePIE: fractions of the full PIE step. ML: the first step
# the line search tries along the preconditioned direction, and the probe direction's weight.
DEFAULT_STEPS: dict[Method, tuple[float, float]] = {Method.EPIE: (1.0, 1.0), Method.ML: (1.0, 1.0)}


@dataclass(frozen=True)
class ReconstructionConfig:
    """Options of an iterative reconstruction; validated on creation (BaselineError).

    method: "epie" or "ml". iterations: passes over all patterns.
    batch_size: ePIE: the most positions updated together (a sparse set is cut to this size); ML: patterns
        per forward/backward chunk, which bounds memory only (every iteration uses every pattern).
    object_step / probe_step: None takes DEFAULT_STEPS[method]. ePIE: fractions of the full PIE update.
        ML: the line search's first trial step, and the weight of the probe's direction against the object's.
    pie_alpha: the regularisation of both methods' illumination preconditioner (rPIE's alpha): denominator
        (1 - a) |P|^2 + a max |P|^2; 1 is ePIE's max-normalised step, smaller moves dim pixels faster.
    refine_probe: also update the probe, from iteration `probe_start` (1-based) on, so the object settles
        first. ml_warmup (ML only): iterations over which the damping of the Poisson gradient fades out
        (ml.py); 0 = the exact gradient from the start. seed: the order of the updates (the only randomness).
    device: "auto" (CUDA when available), "cpu", "cuda", "cuda:K".
    interpolation: how sub-pixel positions are applied (physics.Interpolation). fourier_pad_px: with
        "fourier", each patch is shifted in a window this many pixels wider on each side, then cropped, so
        the window's wrap-around rings mostly outside the patch; the default, simulate.FOURIER_PAD, makes the
        model simulate.py's exactly (amplitudes agree to 1e-6; "bilinear" differs by 5.5%, measured on the
        32 px test scan). coverage_threshold: see Reconstruction.coverage.
    """

    method: str = Method.EPIE
    iterations: int = 50
    batch_size: int = 32
    object_step: float | None = None
    probe_step: float | None = None
    pie_alpha: float = 0.1
    refine_probe: bool = False
    probe_start: int = 3
    ml_warmup: int = 30
    seed: int = 0
    device: str = "auto"
    interpolation: str = physics.Interpolation.FOURIER
    fourier_pad_px: int = FOURIER_PAD
    coverage_threshold: float = COVERAGE_THRESHOLD

    def __post_init__(self) -> None:
        object.__setattr__(self, "method", options.choice(Method, self.method, "method", error=BaselineError))
        object.__setattr__(self, "interpolation", options.choice(
            physics.Interpolation, self.interpolation, "interpolation", error=BaselineError))
        for name in ("iterations", "batch_size", "probe_start"):
            options.integer(getattr(self, name), name, minimum=1, error=BaselineError)
        for name in ("ml_warmup", "fourier_pad_px"):
            options.integer(getattr(self, name), name, minimum=0, error=BaselineError)
        for name in ("object_step", "probe_step"):
            if getattr(self, name) is not None:
                options.number(getattr(self, name), name, above=0, error=BaselineError)
        for name in ("pie_alpha", "coverage_threshold"):
            options.number(getattr(self, name), name, above=0, maximum=1, error=BaselineError)
        options.boolean(self.refine_probe, "refine_probe", error=BaselineError)
        options.integer(self.seed, "seed", error=BaselineError)

    @property
    def pad(self) -> int:
        """Pixels added on each side of the patch window before a sub-pixel shift (0 for bilinear)."""
        return self.fourier_pad_px if self.interpolation is physics.Interpolation.FOURIER else 0

    @property
    def steps(self) -> tuple[float, float]:
        """(object step, probe step) with the method's defaults filled in."""
        default_object, default_probe = DEFAULT_STEPS[Method(self.method)]
        return (
            default_object if self.object_step is None else float(self.object_step),
            default_probe if self.probe_step is None else float(self.probe_step),
        )


@dataclass(frozen=True)
class IterationRecord:
    """Statistics of one iteration's pass over the data, accumulated batch by batch. ePIE: each batch is
    scored on the estimate it is about to update. ML: the estimate at the start of the iteration (the
    objective itself, which never rises).

    deviance: mean Poisson deviance per detector pixel, 2 (rate - c + c log(c / rate)) with counts c =
        measured amplitude^2; 0 for a perfect fit, about 1 per bright pixel at the truth for Poisson data.
    fourier_error: sum (s A - measured)^2 / sum measured^2, the classic ePIE amplitude error.
    """

    iteration: int  # 1-based
    deviance: float
    fourier_error: float
    seconds: float  # wall time of this pass


Progress = Callable[[IterationRecord], None]


@dataclass(frozen=True)
class Reconstruction:
    """Result of an iterative reconstruction.

    object: (H, W) complex64 in the frame of the given object_shape (objectGuess's), origin pixel (0, 0);
        pixels outside `coverage` keep (roughly) their initial value: use `masked_object` or the mask.
    probe: (N, N) complex64 in the given probe's scale (the given probe itself unless refine_probe).
    coverage: (H, W) bool, summed probe intensity over all positions (each normalised to peak 1) >=
        config.coverage_threshold; the same rule as infer.py. weight: (H, W) float32, that sum.
    history: one record per iteration. intensity_scale: s, counts = (s |F(O P)|)^2.
    seconds: wall time of the iterations (setup excluded).
    """

    object: np.ndarray
    probe: np.ndarray
    coverage: np.ndarray
    weight: np.ndarray
    history: tuple[IterationRecord, ...]
    intensity_scale: float
    seconds: float
    n_patterns: int
    config: ReconstructionConfig
    device: str

    @property
    def losses(self) -> tuple[float, ...]:
        """Mean Poisson deviance per iteration."""
        return tuple(r.deviance for r in self.history)

    @property
    def patterns_per_second(self) -> float:
        """Pattern updates per second: n_patterns * iterations / seconds."""
        done = self.n_patterns * len(self.history)
        return done / self.seconds if self.seconds > 0 else math.inf

    @property
    def masked_object(self) -> np.ndarray:
        """object with NaN outside coverage, as infer.py writes it (metrics.evaluate reads NaN as uncovered)."""
        return np.where(self.coverage, self.object, np.complex64(complex(math.nan, math.nan))).astype(
            np.complex64
        )


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
    *,
    pad: int = 0,
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
    _check_inside(pos, height, (rows, cols), pad)
    if initial_object is None:
        init = np.ones((rows, cols), dtype=np.complex64)
    else:
        init = np.asarray(initial_object).astype(np.complex64)
        if init.shape != (rows, cols):
            raise BaselineError(f"initial_object is {init.shape} but object_shape is {(rows, cols)}")
        if not np.isfinite(init).all():
            raise BaselineError("initial_object must be finite")
    return Problem(diffraction, pos, pr.astype(np.complex64), (rows, cols), init)


def _check_inside(pos: np.ndarray, n: int, object_shape: tuple[int, int], pad: int) -> None:
    """Every patch, with the extra pixels sub-pixel interpolation reads, must lie inside the object."""
    rows, cols = object_shape
    before, after = n // 2 + pad, n - 1 - n // 2 + pad
    x, y = pos[:, 0], pos[:, 1]
    outside = (
        (np.floor(x) - before < 0) | (np.ceil(x) + after > cols - 1)
        | (np.floor(y) - before < 0) | (np.ceil(y) + after > rows - 1)
    )
    if outside.any():
        first = int(np.flatnonzero(outside)[0])
        raise BaselineError(
            f"{int(outside.sum())} of {len(pos)} positions put their {n}x{n} patch (+{pad} px for sub-pixel "
            f"shifts) outside the "
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


class PatternSource:
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
        self.sums: Tensor | None = None  # (deviance, amplitude error, measured power)
        self.pixels = 0

    def add(self, rate: Tensor, measured: Tensor) -> None:
        """rate: predicted counts (B, N, N); measured: amplitudes sqrt(counts) (B, N, N)."""
        counts = measured.double().square()
        rate = rate.detach().double()
        # c log(c / rate), 0 where c = 0; rate floored so a dark prediction under a count stays finite
        log_term = torch.xlogy(counts, counts) - torch.xlogy(counts, rate.clamp_min(1e-30))
        part = torch.stack([
            (2.0 * (rate - counts + log_term)).sum(),
            (rate.sqrt() - measured.double()).square().sum(),
            counts.sum(),
        ])
        self.sums = part if self.sums is None else self.sums + part
        self.pixels += measured.numel()

    def record(self, iteration: int) -> IterationRecord:
        if self.sums is None or self.pixels == 0:
            return IterationRecord(iteration, math.nan, math.nan, time.perf_counter() - self.started)
        deviance, error, power = (float(v) for v in self.sums.cpu())  # the readback waits for the device
        fourier = error / power if power > 0 else math.nan
        return IterationRecord(iteration, deviance / self.pixels, fourier, time.perf_counter() - self.started)


class Solver(Protocol):
    """What reconstruct() drives: object (H, W) and probe (N, N) tensors, one iterate() per iteration."""

    object: Tensor
    probe: Tensor

    def iterate(self, iteration: int, batches: Batches, stats: PassStats) -> None: ...


def check_finite(record: IterationRecord) -> None:
    if not (math.isfinite(record.deviance) and math.isfinite(record.fourier_error)):
        raise BaselineError(
            f"iteration {record.iteration}: the fit became NaN or inf; lower object_step / probe_step"
        )


def illumination(probe: Tensor, centres: Tensor, object_shape: tuple[int, int]) -> Tensor:
    """(H, W) float32 sum over positions of |P|^2 / max |P|^2 placed (bilinear, as infer.py) at centres (P, 2)."""
    power = probe.real.square() + probe.imag.square()
    power = power / power.max()
    total = torch.zeros(object_shape, dtype=torch.float32, device=probe.device)
    for start in range(0, centres.shape[0], SCALE_CHUNK):
        part = centres[start : start + SCALE_CHUNK]
        patches = power.expand(part.shape[0], *power.shape)
        total += physics.reassemble_patches(patches, part, object_shape)[0]
    return total


def extract(obj: Tensor, centres: Tensor, n: int, config: ReconstructionConfig) -> Tensor:
    """(H, W) object -> (B, N, N) patches at centres (B, 2), shifted in a window config.pad px wider."""
    pad = config.pad
    wide = physics.extract_patches(obj, centres, n + 2 * pad, interpolation=config.interpolation)
    return wide[..., pad : pad + n, pad : pad + n]


def place(patches: Tensor, centres: Tensor, object_shape: tuple[int, int], config: ReconstructionConfig) -> Tensor:
    """The adjoint of extract(): (B, N, N) patches summed onto an (H, W) canvas."""
    pad = config.pad
    wide = torch.nn.functional.pad(patches, (pad, pad, pad, pad)) if pad else patches
    return physics.reassemble_patches(wide, centres, object_shape, interpolation=config.interpolation)[0]


def back_propagate(far: Tensor) -> Tensor:
    """Inverse of physics.far_field: ifft2(ifftshift(F), norm="ortho") over the last two axes."""
    return torch.fft.ifft2(torch.fft.ifftshift(far, dim=(-2, -1)), norm="ortho")
