"""Device, precision and process-group choices shared by training and inference.

- Device "auto" means CUDA when available, else CPU. Under torchrun each process takes the GPU named by
  its LOCAL_RANK.
- Precision "auto" means bf16 autocast on CUDA and float32 on CPU. bf16 needs no GradScaler (its exponent
  range is float32's); a disabled scaler is still kept so checkpoints always carry a scaler state.
- Distributed: a process started by torchrun has RANK, WORLD_SIZE and LOCAL_RANK in its environment; the
  backend is NCCL for CUDA and gloo for CPU.
"""
from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from dataclasses import dataclass
from enum import StrEnum

import torch
import torch.distributed as dist

from ptycho_torch.errors import DeviceError


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


def resolve_precision(value: str | None, device: torch.device) -> Precision:
    """"auto" -> bf16 on CUDA, 32 on CPU. bf16 on CPU is allowed (CPU autocast) but rarely faster."""
    try:
        precision = Precision("auto" if value is None else str(value))
    except ValueError:
        raise DeviceError(f"unknown precision {value!r}; choose 32, bf16 or auto") from None
    if precision is Precision.AUTO:
        return Precision.BF16 if device.type == "cuda" else Precision.FP32
    if precision is Precision.BF16 and device.type == "cuda" and not torch.cuda.is_bf16_supported():
        raise DeviceError(f"{device} does not support bf16; use --precision 32")
    return precision


def autocast(device: torch.device, precision: Precision) -> contextlib.AbstractContextManager[object]:
    """Autocast to bf16 when asked; a no-op context for float32."""
    if precision is Precision.BF16:
        return torch.autocast(device_type=device.type, dtype=torch.bfloat16)
    return contextlib.nullcontext()


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
