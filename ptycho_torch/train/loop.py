"""The training loop (nanoGPT style): DDP when torchrun set RANK, side effects (files, printing) on rank 0
only, bf16 autocast on CUDA, a checkpoint every epoch, resume restoring everything; see the package docstring.

Throughput is reported in diffraction patterns per second (groups * gridsize**2, all ranks). Losses stay on
the device and are checked for NaN/Inf every few steps; a divergence stops the run with advice and keeps the
last good checkpoint.
"""
from __future__ import annotations

import math
import random
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from torch import Tensor, nn

from ptycho_torch import physics
from ptycho_torch.bundle import BUNDLE_NAME, DataConfig, save_bundle, sha256_file
from ptycho_torch.dataset import PtychoDataset
from ptycho_torch.device import (
    DistContext,
    Precision,
    autocast,
    dist_context_from_env,
    process_group,
    resolve_device,
    resolve_precision,
)
from ptycho_torch.errors import TrainError, TrainingDivergedError
from ptycho_torch.memmap_bridge import MemmapDatasetBridge
from ptycho_torch.model import LossKind, ModelConfig, ModelConfigError, PtychoPINN
from ptycho_torch.train.checkpoint import (
    CHECKPOINT_FORMAT,
    CHECKPOINT_NAME,
    check_resume,
    load_checkpoint,
    rng_state,
    save_checkpoint,
    set_rng_state,
)
from ptycho_torch.train.config import EpochRecord, TrainConfig, TrainResult
from ptycho_torch.train.data import GroupRows, make_train_loader, mean_total_counts, row_batches, split_groups
from ptycho_torch.train.outputs import bundle_metadata, write_history, write_loss_curve


class LossModule(nn.Module):
    """Forward + loss in one module, so DDP and torch.compile see a scalar output: (B,C,N,N), (B,C,2) -> ()."""

    def __init__(self, model: PtychoPINN) -> None:
        super().__init__()
        self.model = model

    def forward(self, diffraction: Tensor, coords_relative: Tensor) -> Tensor:
        return self.model.loss(self.model(diffraction, coords_relative), diffraction)


def build_model(config: TrainConfig, bridge: MemmapDatasetBridge, scale: float) -> PtychoPINN:
    n = bridge.plan.pattern_shape[0]
    try:
        model_config = ModelConfig(N=n, gridsize=config.gridsize, n_filters=config.n_filters,
                                   depth=config.depth, loss=LossKind(config.loss))
    except ModelConfigError as exc:
        raise TrainError(str(exc)) from None
    return PtychoPINN(model_config, torch.from_numpy(bridge.probeGuess), scale)


class _StepLosses:
    """Batch losses kept on the device and checked every `every` steps: one host sync (and, under DDP, one
    all-reduce) per check instead of per step. The check names the first bad step."""

    def __init__(self, ctx: DistContext, every: int) -> None:
        self.ctx, self.every = ctx, every
        self.pending: list[tuple[int, Tensor]] = []
        self.values: list[float] = []

    def add(self, step: int, loss: Tensor, epoch: int, force: bool = False) -> None:
        self.pending.append((step, loss.detach().float()))
        if force or len(self.pending) >= self.every:
            self.flush(epoch)

    def flush(self, epoch: int) -> None:
        if not self.pending:
            return
        stacked = torch.stack([loss for _, loss in self.pending])
        if self.ctx.distributed:
            dist.all_reduce(stacked)  # a NaN on any rank reaches every rank, so all stop together
            stacked /= self.ctx.world_size
        values = stacked.tolist()
        for (step, _), value in zip(self.pending, values, strict=True):
            if not math.isfinite(value):
                raise _Diverged(epoch, step, value)
        self.values.extend(values)
        self.pending.clear()


class _Diverged(Exception):
    def __init__(self, epoch: int, step: int, value: float, what: str = "loss") -> None:
        super().__init__(epoch, step, value, what)
        self.epoch, self.step, self.value, self.what = epoch, step, value, what


@torch.no_grad()
def validation_loss(model: PtychoPINN, subset: GroupRows, config: TrainConfig, ctx: DistContext,
                    device: torch.device, precision: Precision) -> float:
    """Mean loss over this split's groups, each rank taking every world_size-th batch; NaN if empty."""
    model.eval()
    rows = np.arange(len(subset))[ctx.rank :: ctx.world_size]
    totals = torch.zeros(2, dtype=torch.float64, device=device)  # (sum of loss * groups, groups)
    for positions in row_batches(rows, config.batch_size):
        batch = subset[positions]
        diffraction = batch["diffraction"].to(device, non_blocking=True)
        coords = batch["coords_relative"].to(device, non_blocking=True)
        with autocast(device, precision):
            loss = model.loss(model(diffraction, coords), diffraction)
        totals[0] += loss.double() * len(positions)
        totals[1] += len(positions)
    if ctx.distributed:
        dist.all_reduce(totals)
    model.train()
    return float(totals[0] / totals[1]) if totals[1] > 0 else math.nan


def _progress(enabled: bool) -> Progress:
    console = Console(stderr=True)
    return Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                    console=console, transient=True, disable=not (enabled and console.is_terminal))


def train(config: TrainConfig, *, resume: bool = False, progress: bool = True,
          debug_nan_at_step: int | None = None, debug_step_delay_s: float = 0.0) -> TrainResult:
    """Train (or resume) a PtychoPINN on config.data; see the module docstring for what is written.

    debug_nan_at_step (global step, 1-based) multiplies that step's loss by NaN and debug_step_delay_s
    sleeps after every step: test hooks for the divergence and kill-and-resume tests.
    """
    ctx = dist_context_from_env()
    device = resolve_device(config.device, ctx)
    precision = resolve_precision(config.precision, device)
    with process_group(ctx, device):
        return _train(config, ctx, device, precision, resume=resume, progress=progress,
                      debug_nan_at_step=debug_nan_at_step, debug_step_delay_s=debug_step_delay_s)


def _train(config: TrainConfig, ctx: DistContext, device: torch.device, precision: Precision, *,
           resume: bool, progress: bool, debug_nan_at_step: int | None,
           debug_step_delay_s: float) -> TrainResult:
    output_dir = Path(config.output_dir)
    checkpoint_path = output_dir / CHECKPOINT_NAME
    if ctx.is_main:
        output_dir.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(config.seed)
    np.random.seed(config.seed)
    random.seed(config.seed)

    bridge = MemmapDatasetBridge(config.data)
    data_sha256 = sha256_file(bridge.path)
    scale = physics.intensity_scale(torch.from_numpy(bridge.probeGuess), mean_total_counts(bridge))
    try:
        dataset = PtychoDataset(bridge, gridsize=config.gridsize, K=config.K, nsamples=1, seed=config.seed)
    except ValueError as exc:
        raise TrainError(f"{config.data}: cannot form groups: {exc}") from None
    train_rows, val_rows = split_groups(len(dataset), config.val_fraction, config.seed)
    train_set, val_set = GroupRows(dataset, train_rows), GroupRows(dataset, val_rows)
    if len(train_set) < ctx.world_size:
        raise TrainError(f"{len(train_set)} training groups cannot be shared by {ctx.world_size} processes")
    loader, sampler = make_train_loader(train_set, config, ctx, device)

    model = build_model(config, bridge, scale).to(device)
    if device.type == "cpu" and not ctx.distributed:
        model.net.to(memory_format=torch.channels_last)  # ~2x faster convolutions on CPU (oneDNN)
    optimizer = torch.optim.Adam(model.parameters(), lr=config.lr)
    scaler = torch.amp.GradScaler(device.type, enabled=False)  # bf16 and fp32 need no loss scaling
    history: list[EpochRecord] = []
    start_epoch, global_step = 0, 0
    if resume:
        state = load_checkpoint(checkpoint_path)
        check_resume(state, config, data_sha256, checkpoint_path)
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        scaler.load_state_dict(state["scaler"])
        set_rng_state(state["rng"])
        start_epoch, global_step = int(state["epoch"]), int(state["global_step"])
        history = [EpochRecord(**r) for r in state["history"]]
        if ctx.is_main:
            print(f"resuming from {checkpoint_path} after epoch {start_epoch} (step {global_step})", flush=True)

    step_module: nn.Module = LossModule(model)
    if ctx.distributed:
        step_module = nn.parallel.DistributedDataParallel(
            step_module, device_ids=[device.index] if device.type == "cuda" else None, broadcast_buffers=False)
    if config.compile:
        step_module = torch.compile(step_module)

    channels = config.gridsize**2
    check_every = 1 if device.type == "cpu" else 16
    with _progress(progress and ctx.is_main) as bar:
        for epoch in range(start_epoch + 1, config.epochs + 1):
            sampler.set_epoch(epoch)
            losses = _StepLosses(ctx, check_every)
            task = bar.add_task(f"epoch {epoch}/{config.epochs}", total=len(loader))
            started, seen = time.perf_counter(), 0
            try:
                for batch in loader:
                    global_step += 1
                    diffraction = batch["diffraction"].to(device, non_blocking=True)
                    coords = batch["coords_relative"].to(device, non_blocking=True)
                    with autocast(device, precision):
                        loss = step_module(diffraction, coords)
                    if debug_nan_at_step == global_step:
                        loss = loss * math.nan
                    scaler.scale(loss).backward()
                    if config.grad_clip > 0:
                        scaler.unscale_(optimizer)
                        nn.utils.clip_grad_norm_(model.parameters(), config.grad_clip)
                    scaler.step(optimizer)
                    scaler.update()
                    optimizer.zero_grad(set_to_none=True)
                    seen += diffraction.shape[0]
                    losses.add(global_step, loss, epoch)
                    bar.advance(task)
                    if debug_step_delay_s > 0:
                        time.sleep(debug_step_delay_s)
                losses.flush(epoch)
                elapsed = time.perf_counter() - started
                val_loss = validation_loss(model, val_set, config, ctx, device, precision)
                if math.isinf(val_loss) or (math.isnan(val_loss) and len(val_set) > 0):
                    raise _Diverged(epoch, global_step, val_loss, "validation loss")
            except _Diverged as bad:
                raise TrainingDivergedError(_divergence_message(bad, config, checkpoint_path, epoch)) from None
            finally:
                bar.remove_task(task)
            record = EpochRecord(epoch=epoch, train_loss=float(np.mean(losses.values)), val_loss=val_loss,
                                 lr=optimizer.param_groups[0]["lr"],
                                 patterns_per_s=seen * channels * ctx.world_size / elapsed, seconds=elapsed)
            history.append(record)
            if ctx.is_main:
                print(f"epoch {epoch}/{config.epochs}  train_loss {record.train_loss:.6g}  "
                      f"val_loss {record.val_loss:.6g}  {record.patterns_per_s:.1f} patterns/s  "
                      f"lr {record.lr:.3g}  {elapsed:.1f} s", flush=True)
                save_checkpoint(checkpoint_path, {
                    "format": CHECKPOINT_FORMAT, "epoch": epoch, "global_step": global_step,
                    "model": model.state_dict(), "optimizer": optimizer.state_dict(),
                    "scaler": scaler.state_dict(), "rng": rng_state(),
                    "sampler": {"seed": config.seed, "epoch": epoch}, "history": [asdict(r) for r in history],
                    "config": asdict(config), "data_sha256": data_sha256, "intensity_scale": scale,
                })
                write_history(output_dir, history)

    bundle_path = None
    if ctx.is_main:
        write_history(output_dir, history)
        write_loss_curve(output_dir, history)
        bundle_path = save_bundle(
            output_dir / BUNDLE_NAME, model.to("cpu").to(memory_format=torch.contiguous_format),
            DataConfig(N=model.config.N, gridsize=config.gridsize, K=config.K, group_seed=config.seed),
            bundle_metadata(config, history, bridge, data_sha256, scale, device, precision, ctx),
        )
        print(f"wrote {bundle_path}", flush=True)
    return TrainResult(output_dir=output_dir, bundle_path=bundle_path, history=tuple(history),
                       intensity_scale=scale, resumed_from_epoch=start_epoch if resume else 0, device=str(device))


def _divergence_message(bad: _Diverged, config: TrainConfig, checkpoint: Path, epoch: int) -> str:
    kept = (f"the last good checkpoint {checkpoint} (end of epoch {epoch - 1}) is kept; --resume continues "
            "from it" if epoch > 1 else "no checkpoint was written yet")
    return (f"training stopped: the {bad.what} became {bad.value} at epoch {bad.epoch}, step {bad.step}; {kept}. "
            f"Try a lower --lr (now {config.lr:g}), --grad-clip 1.0, or --precision 32, and check the data "
            "with `ptycho-torch inspect --validate full`")


def train_command(*, data: str, output_dir: str, resume: bool = False, progress: bool = True,
                  debug_nan_at_step: int | None = None, debug_step_delay_s: float = 0.0,
                  **settings: Any) -> int:
    """`ptycho-torch train`: settings are TrainConfig fields; returns 0 (errors raise PtychoTorchError)."""
    config = TrainConfig(data=data, output_dir=output_dir, **settings)
    train(config, resume=resume, progress=progress, debug_nan_at_step=debug_nan_at_step,
          debug_step_delay_s=debug_step_delay_s)
    return 0
