"""Device, precision and process-group choices shared by training and inference.

- Device "auto" means CUDA when available, else CPU. Under torchrun each process takes the GPU named by
  its LOCAL_RANK.
- Precision "auto" means bf16 autocast on CUDA and on CPUs with bf16 matrix units (AMX: Intel Xeon from
  Sapphire Rapids on), float32 on other CPUs. On such a CPU a training step ran 2.4 times faster in bf16,
  with the same losses within run-to-run noise (docs/findings.md, TRAIN-002); where bf16 is emulated it is
  slower than float32. Only the network runs in bf16: the physics (complex patches, FFTs, loss) stays in
  float32. bf16 needs no GradScaler (its exponent range is float32's); a disabled scaler is still kept so
  checkpoints always carry a scaler state.
- Distributed: a process started by torchrun has RANK, WORLD_SIZE and LOCAL_RANK in its environment; the
  backend is NCCL for CUDA and gloo for CPU.
- CPU threads: 0 ("auto") means the cores this process may use (its CPU affinity), shared among the
  processes of a torchrun job on this node, never more than torch's own default (which follows
  OMP_NUM_THREADS and the physical cores), and at most MAX_AUTO_THREADS. More threads than free cores
  make torch's threads wait for each other: on 2 shared cores 2 threads ran a step 3 to 6 times slower
  than 1 (docs/findings.md, TRAIN-002); pass --threads 1 on a busy machine.
"""
from __future__ import annotations

import contextlib
import math
import os
from collections.abc import Iterator
from dataclasses import dataclass
from enum import StrEnum

import torch
import torch.distributed as dist

from ptycho_torch.errors import DeviceError

MAX_AUTO_THREADS = 16  # beyond this, small convolutions gain little from more threads


class Precision(StrEnum):
    AUTO = "auto"
    FP32 = "32"
    BF16 = "bf16"


@dataclass(frozen=True)
class DistContext:
    """Where this process sits in a (possibly one-process) job."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        """Only the main process writes files and prints."""
        return self.rank == 0


def dist_context_from_env() -> DistContext:
    """RANK / WORLD_SIZE / LOCAL_RANK as torchrun sets them; a plain process is rank 0 of 1."""
    if "RANK" not in os.environ or "WORLD_SIZE" not in os.environ:
        return DistContext()
    try:
        rank, world = int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"])
        local = int(os.environ.get("LOCAL_RANK", rank))
    except ValueError as exc:
        raise DeviceError(f"RANK/WORLD_SIZE/LOCAL_RANK must be integers (set by torchrun): {exc}") from None
    return DistContext(rank=rank, world_size=world, local_rank=local)


def resolve_device(name: str | None, ctx: DistContext = DistContext()) -> torch.device:
    """"auto"/None -> cuda:<local rank> when CUDA is available, else cpu; "cpu", "cuda", "cuda:K" as given."""
    choice = "auto" if name is None else str(name).strip().lower()
    if choice == "auto":
        choice = "cuda" if torch.cuda.is_available() else "cpu"
    try:
        device = torch.device(choice)
    except RuntimeError:
        raise DeviceError(f"unknown device {name!r}; use auto, cpu, cuda or cuda:K") from None
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise DeviceError(f"device {name!r} asked for CUDA but no CUDA device is available; use --device cpu")
        if device.index is None:
            device = torch.device("cuda", ctx.local_rank % torch.cuda.device_count())
        if device.index >= torch.cuda.device_count():
            raise DeviceError(f"device {device} does not exist: {torch.cuda.device_count()} CUDA device(s) here")
    elif device.type != "cpu":
        raise DeviceError(f"device type {device.type!r} is not supported; use auto, cpu or cuda")
    return device


def cpu_has_bf16_units() -> bool:
    """Whether this CPU multiplies bf16 matrices natively (AMX tiles); False where torch cannot tell."""
    check = getattr(torch.cpu, "_is_amx_tile_supported", None)  # private in torch 2.x: guarded
    try:
        return bool(check()) if check is not None else False
    except (RuntimeError, AttributeError):
        return False


def resolve_precision(value: str | None, device: torch.device) -> Precision:
    """"auto" -> bf16 on CUDA devices that support it and on CPUs with bf16 units (cpu_has_bf16_units), else 32. bf16 on another
    CPU is allowed (CPU autocast) but slower than 32."""
    try:
        precision = Precision("auto" if value is None else str(value))
    except ValueError:
        raise DeviceError(f"unknown precision {value!r}; choose 32, bf16 or auto") from None
    if precision is Precision.AUTO:
        fast_bf16 = ((device.type == "cuda" and torch.cuda.is_bf16_supported())
                     or (device.type == "cpu" and cpu_has_bf16_units()))
        return Precision.BF16 if fast_bf16 else Precision.FP32
    if precision is Precision.BF16 and device.type == "cuda" and not torch.cuda.is_bf16_supported():
        raise DeviceError(f"{device} does not support bf16; use --precision 32")
    return precision


def autocast(device: torch.device, precision: Precision) -> contextlib.AbstractContextManager[object]:
    """Autocast to bf16 when asked; a no-op context for float32."""
    if precision is Precision.BF16:
        return torch.autocast(device_type=device.type, dtype=torch.bfloat16)
    return contextlib.nullcontext()


def usable_cores() -> int:
    """The CPU cores this process may run on (its affinity; all of them where affinity is unknown)."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # not on Linux
        return os.cpu_count() or 1


def resolve_threads(requested: int, ctx: DistContext = DistContext(), local_world_size: int | None = None) -> int:
    """Torch CPU threads for this process: `requested` when > 0, else (auto) the usable cores shared among
    the job's processes on this node, capped by torch's default and MAX_AUTO_THREADS; at least 1."""
    if requested < 0:
        raise DeviceError(f"--threads must be >= 0 (0 = auto), got {requested}")
    if requested > 0:
        return requested
    local = local_world_size or int(os.environ.get("LOCAL_WORLD_SIZE", ctx.world_size))
    share = usable_cores() // max(1, local)
    return max(1, min(share, torch.get_num_threads(), MAX_AUTO_THREADS))


def load_average() -> float:
    """The 1-minute load average (runnable processes), NaN where the system does not report it."""
    try:
        return os.getloadavg()[0]
    except (AttributeError, OSError):
        return math.nan


def oversubscription_note(threads: int) -> str | None:
    """Advice when the machine's other work leaves fewer free cores than `threads`, else None."""
    load, cores = load_average(), usable_cores()
    if threads <= 1 or not load > cores - threads + 0.5:
        return None
    return (f"note: load average {load:.1f} on {cores} cores: {threads} torch threads will wait for each other "
            "(docs/findings.md, TRAIN-002); --threads 1 is likely faster")


@contextlib.contextmanager
def torch_threads(count: int) -> Iterator[int]:
    """Run the block with `count` torch intra-op threads, restoring the previous count afterwards."""
    before = torch.get_num_threads()
    torch.set_num_threads(count)
    try:
        yield count
    finally:
        torch.set_num_threads(before)


def init_process_group(ctx: DistContext, device: torch.device) -> None:
    """Join the torchrun job (NCCL on CUDA, gloo on CPU); nothing to do for one process."""
    if not ctx.distributed or (dist.is_available() and dist.is_initialized()):
        return
    if not dist.is_available():
        raise DeviceError("this torch build has no torch.distributed; run one process")
    if device.type == "cuda":
        torch.cuda.set_device(device)
    dist.init_process_group(backend="nccl" if device.type == "cuda" else "gloo")


@contextlib.contextmanager
def process_group(ctx: DistContext, device: torch.device) -> Iterator[None]:
    """Join the job for the duration of the block and leave it afterwards, also on error."""
    init_process_group(ctx, device)
    try:
        yield
    finally:
        if ctx.distributed and dist.is_initialized():
            dist.destroy_process_group()
