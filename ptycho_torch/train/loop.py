"""The training loop (nanoGPT style): DDP when torchrun set RANK, side effects (files, printing) on rank 0
only, bf16 autocast on CUDA, clip -> step -> update -> zero_grad, a checkpoint every epoch and at the end,
resume restoring everything; see the package docstring.

train() sets the run up (_start: seeds, data, model, reference losses, a Run, the resume), runs
train_epoch until the final attempt has its steps, and writes the outputs (_finish). The Run (run.py)
holds the model, optimizer, scaler, plateau watch and the one step counter; train_epoch is the epoch a
reader follows top to bottom.

A run lasts config.steps optimizer steps (or config.epochs epochs, or at most config.max_steps), and stops
earlier once its validation loss has not improved for config.patience steps; with config.keep_best the saved
model has the weights of the lowest validation loss (best.py). Its progress is watched against the
flat-object plateau (progress.py): an attempt still on the plateau after config.plateau_steps is abandoned
and a new one starts from a new seed (fresh weights, optimizer and schedule; the data order runs on), at
most config.max_restarts times; the length counts the final attempt's steps.

Throughput is reported in diffraction patterns per second (groups * gridsize**2, all ranks). Losses stay on
the device and are looked at every progress.CHECK_EVERY steps (NaN/Inf check, plateau watch): no host sync
per step. A divergence stops the run with advice (errors.TrainingDivergedError) and keeps the last good
checkpoint.
"""
from __future__ import annotations

import functools
import math
import random
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from torch import Tensor, nn
from torch.utils.data import DataLoader, DistributedSampler

from ptycho_torch import physics
from ptycho_torch.bundle import BUNDLE_NAME, DataConfig, save_bundle, sha256_file
from ptycho_torch.device import (
    DistContext,
    Precision,
    autocast,
    dist_context_from_env,
    load_average,
    oversubscription_note,
    process_group,
    resolve_device,
    resolve_precision,
    resolve_threads,
    torch_threads,
)
from ptycho_torch.errors import TrainError, TrainingDivergedError
from ptycho_torch.memmap_bridge import MemmapDatasetBridge
from ptycho_torch.model import PtychoPINN
from ptycho_torch.train import checkpoint
from ptycho_torch.train.config import EpochRecord, TrainConfig, TrainResult
from ptycho_torch.train.data import (
    GroupRows,
    ResumableBatches,
    held_out_sets,
    make_train_loader,
    mean_total_counts,
)
from ptycho_torch.train.outputs import RunSummary, bundle_metadata, write_history, write_loss_curve
from ptycho_torch.train.progress import CHECK_EVERY, PlateauWatch, StepLosses, reference_losses
from ptycho_torch.train.run import Run, new_optimizer
from ptycho_torch.train.start_weights import StartWeights, load_start_weights
from ptycho_torch.train.validation import validation_loss


class LossModule(nn.Module):
    """Forward + loss in one module, so DDP and torch.compile see a scalar output:
    diffraction (B,C,N,N), coords_relative and positions (B,C,2) -> ()."""

    def __init__(self, model: PtychoPINN) -> None:
        super().__init__()
        self.model = model

    def forward(self, diffraction: Tensor, coords_relative: Tensor, positions: Tensor) -> Tensor:
        return self.model.loss(self.model(diffraction, coords_relative, positions), diffraction)


def build_model(config: TrainConfig, bridge: MemmapDatasetBridge, scale: float,
                start: StartWeights | None = None) -> PtychoPINN:
    """A new model of the run: fresh weights, or the network weights of `start` (--init-from)."""
    model = PtychoPINN(config.model_config(bridge.plan.pattern_shape[0]), torch.from_numpy(bridge.probeGuess), scale)
    if start is not None:
        model.load_state_dict(start.state, strict=False)  # the network only; probe and scale are this data's
    return model


@dataclass(frozen=True)
class Feed:
    """What every epoch reads and never changes: the step module (LossModule around run.model, under DDP
    and torch.compile when asked), the loader with its sampler and batch sampler, the validation groups,
    where the run computes, the checkpoint's path (for the divergence advice) and the test hooks:
    nan_at_step (the global step, 1-based, whose loss is multiplied by NaN) and step_delay_s (a sleep
    after every step)."""

    step_module: nn.Module
    loader: DataLoader
    sampler: DistributedSampler
    batches: ResumableBatches
    val_set: GroupRows
    ctx: DistContext
    device: torch.device
    precision: Precision
    checkpoint_path: Path
    nan_at_step: int | None = None
    step_delay_s: float = 0.0


@dataclass(frozen=True)
class _Inputs:
    """The opened data, its SHA256 and the intensity scale from its counts: what every checkpoint and the
    bundle record beside the Run."""

    bridge: MemmapDatasetBridge
    data_sha256: str
    scale: float
    start: StartWeights | None = None


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
    with process_group(ctx, device), torch_threads(resolve_threads(config.threads, ctx)) as threads:
        load = load_average()
        output_dir = Path(config.output_dir)
        if ctx.is_main:
            output_dir.mkdir(parents=True, exist_ok=True)
            note = oversubscription_note(threads) if device.type == "cpu" else None
            if note:
                print(note, flush=True)
        run, feed, inputs = _start(config, ctx, device, precision, resume=resume,
                                   nan_at_step=debug_nan_at_step, step_delay_s=debug_step_delay_s)
        resumed_from_epoch = run.epoch if resume else 0
        with _progress(progress and ctx.is_main) as bar:
            while not run.finished:
                record = train_epoch(run, feed, bar)
                run.history.append(record)
                run.judge(record.val_loss)
                if ctx.is_main:
                    print(f"epoch {record.epoch}/{run.planned_epochs}  step {run.attempt_step}/{run.total}  "
                          f"train_loss {record.train_loss:.6g}  val_loss {record.val_loss:.6g}  "
                          f"gap closed {record.gap_closed:.1%}  {record.patterns_per_s:.1f} patterns/s  "
                          f"lr {record.lr:.3g}  {record.seconds:.1f} s", flush=True)
                    checkpoint.save_checkpoint(feed.checkpoint_path, run.checkpoint_state(
                        data_sha256=inputs.data_sha256, scale=inputs.scale, world_size=ctx.world_size))
                    write_history(output_dir, run.history, _summary(run, threads, load))
        return _finish(run, feed, inputs, _summary(run, threads, load), resumed_from_epoch)


def _start(config: TrainConfig, ctx: DistContext, device: torch.device, precision: Precision, *, resume: bool,
           nan_at_step: int | None, step_delay_s: float) -> tuple[Run, Feed, _Inputs]:
    """Seed every RNG, open the data, split and load it, build the model, measure the reference losses, and
    make the Run (restored from the checkpoint when resuming) and the Feed its epochs read. The order fixes
    what each RNG has drawn at the first step: a run repeats exactly only if it stays."""
    checkpoint_path = Path(config.output_dir) / checkpoint.CHECKPOINT_NAME
    torch.manual_seed(config.seed)
    np.random.seed(config.seed)
    random.seed(config.seed)

    bridge = MemmapDatasetBridge(config.data)
    data_sha256 = sha256_file(bridge.path)
    scale = physics.intensity_scale(torch.from_numpy(bridge.probeGuess), mean_total_counts(bridge))
    train_set, val_set = held_out_sets(bridge, gridsize=config.gridsize, K=config.K,
                                       val_fraction=config.val_fraction, seed=config.seed,
                                       groups_per_position=config.groups_per_position,
                                       channel_order=config.channel_order)
    if len(train_set) < ctx.world_size:
        raise TrainError(f"{len(train_set)} training groups cannot be shared by {ctx.world_size} processes")
    loader, sampler, batches = make_train_loader(train_set, config, ctx, device)

    start = load_start_weights(config.init_from, config.model_config(bridge.plan.pattern_shape[0])) if config.init_from else None
    model = build_model(config, bridge, scale, start).to(device)
    if device.type == "cpu" and not ctx.distributed:
        model.net.to(memory_format=torch.channels_last)  # ~2x faster convolutions on CPU (oneDNN)
    references = reference_losses(model, train_set, config.batch_size, ctx, device)
    per_epoch = len(loader)
    run = Run(config=config, model=model, optimizer=new_optimizer(model, config),
              scaler=torch.amp.GradScaler(device.type, enabled=False),  # bf16 and fp32 need no loss scaling
              watch=PlateauWatch(config, references), references=references,
              fresh_model=functools.partial(build_model, config, bridge, scale, start), per_epoch=per_epoch,
              total=config.planned_steps(per_epoch), is_main=ctx.is_main)
    if resume:
        state = checkpoint.load_checkpoint(checkpoint_path)
        checkpoint.check_resume(state, config, data_sha256, checkpoint_path, ctx.world_size)
        run.resume(state, checkpoint_path)
        if ctx.is_main:
            print(f"resuming from {checkpoint_path} after epoch {run.epoch} (step {run.step})", flush=True)

    step_module: nn.Module = LossModule(model)
    if ctx.distributed:
        step_module = nn.parallel.DistributedDataParallel(
            step_module, device_ids=[device.index] if device.type == "cuda" else None, broadcast_buffers=False)
    if config.compile:
        step_module = torch.compile(step_module)
    feed = Feed(step_module=step_module, loader=loader, sampler=sampler, batches=batches, val_set=val_set,
                ctx=ctx, device=device, precision=precision, checkpoint_path=checkpoint_path,
                nan_at_step=nan_at_step, step_delay_s=step_delay_s)
    return run, feed, _Inputs(bridge=bridge, data_sha256=data_sha256, scale=scale, start=start)


def train_epoch(run: Run, feed: Feed, bar: Progress) -> EpochRecord:
    """Run the epoch under way (after a resume inside it, its remaining batches) and score it.

    Each batch is one optimizer step: forward and loss under autocast, backward, clip, step, update,
    zero_grad(set_to_none=True); its loss stays on the device. Every CHECK_EVERY steps of the attempt, and
    at the end of a whole epoch, the Run checks the losses (NaN, plateau, restart). The epoch stops early
    once the attempt has its steps; the validation loss follows. A non-finite loss raises
    TrainingDivergedError with its epoch and the advice.
    """
    config = run.config
    epoch, skip = run.step // run.per_epoch + 1, run.batches_done
    feed.sampler.set_epoch(epoch)
    feed.batches.skip = skip
    losses = StepLosses(feed.ctx)
    task = bar.add_task(f"epoch {epoch}", total=run.per_epoch - skip)
    started, seen = time.perf_counter(), 0
    try:
        for batch in feed.loader:
            run.step += 1
            diffraction = batch["diffraction"].to(feed.device, non_blocking=True)  # (B, C, N, N)
            coords = batch["coords_relative"].to(feed.device, non_blocking=True)  # (B, C, 2)
            positions = batch["coords_global"].to(feed.device, non_blocking=True)  # (B, C, 2)
            with autocast(feed.device, feed.precision):
                loss = feed.step_module(diffraction, coords, positions)
            if feed.nan_at_step == run.step:
                loss = loss * math.nan
            run.scaler.scale(loss).backward()
            if config.grad_clip > 0:
                run.scaler.unscale_(run.optimizer)
                nn.utils.clip_grad_norm_(run.model.parameters(), config.grad_clip)
            run.warm_up()
            run.scaler.step(run.optimizer)
            run.scaler.update()
            run.optimizer.zero_grad(set_to_none=True)
            seen += diffraction.shape[0]
            losses.add(run.step, loss)
            if run.attempt_step % CHECK_EVERY == 0:
                run.check(losses)
            bar.advance(task)
            if feed.step_delay_s > 0:
                time.sleep(feed.step_delay_s)
            if run.finished:
                break
        if run.batches_done == 0:  # the whole epoch has run: a check step
            run.check(losses)
        else:  # a run that ends inside an epoch: the NaN check; the decision waits for the next
            losses.flush()  # check step, as in a run that goes on (so --resume decides alike)
            run.watch.record(losses.drain())
        elapsed = time.perf_counter() - started
        val_loss = validation_loss(run.model, feed.val_set, config.batch_size, feed.ctx, feed.device,
                                   feed.precision)
        if math.isinf(val_loss) or (math.isnan(val_loss) and len(feed.val_set) > 0):
            raise TrainingDivergedError(what="validation loss", value=val_loss, step=run.step)
    except TrainingDivergedError as bad:
        raise bad.in_epoch(epoch, _divergence_advice(config, feed.checkpoint_path, run.history)) from None
    finally:
        bar.remove_task(task)
    train_loss = float(np.mean(losses.values)) if losses.values else math.nan
    patterns = seen * config.gridsize**2 * feed.ctx.world_size
    return EpochRecord(epoch=epoch, train_loss=train_loss, val_loss=val_loss,
                       lr=run.optimizer.param_groups[0]["lr"], patterns_per_s=patterns / elapsed,
                       seconds=elapsed, step=run.step, attempt=run.attempt,
                       gap_closed=run.references.gap_closed(train_loss))


def _finish(run: Run, feed: Feed, inputs: _Inputs, summary: RunSummary,
            resumed_from_epoch: int) -> TrainResult:
    """history.json, loss_curve.png and the bundle (rank 0); the result every rank returns."""
    config, ctx, model = run.config, feed.ctx, run.model
    output_dir = Path(config.output_dir)
    bundle_path = None
    if config.keep_best and run.best.state:
        model.load_state_dict(run.best.state)  # the checkpoint keeps the last weights, for --resume
    if ctx.is_main:
        write_history(output_dir, run.history, summary)
        write_loss_curve(output_dir, run.history, summary)
        bundle_path = save_bundle(
            output_dir / BUNDLE_NAME, model.to("cpu").to(memory_format=torch.contiguous_format),
            DataConfig(N=model.config.N, gridsize=config.gridsize, K=config.K, group_seed=config.seed,
                       channel_order=config.channel_order),
            bundle_metadata(config, run.history, summary, inputs.bridge, inputs.data_sha256, inputs.scale,
                            feed.device, feed.precision, ctx,
                            init_from=None if inputs.start is None else inputs.start.record()),
        )
        print(f"wrote {bundle_path}", flush=True)
    return TrainResult(output_dir=output_dir, bundle_path=bundle_path, history=tuple(run.history),
                       intensity_scale=inputs.scale, resumed_from_epoch=resumed_from_epoch,
                       device=str(feed.device), restarts=tuple(run.restarts),
                       escaped_at_step=run.watch.escaped_at, threads=summary.threads)


def _summary(run: Run, threads: int, load: float) -> RunSummary:
    config = run.config
    return RunSummary(threads=threads, load_average=load, flat_loss=run.references.flat,
                      best_loss=run.references.best, restarts=tuple(run.restarts), attempt=run.attempt,
                      steps=run.step, attempt_steps=run.attempt_step, escaped_at_step=run.watch.escaped_at,
                      planned_steps=run.total, patience=config.patience, keep_best=config.keep_best,
                      best_val_loss=run.best.val_loss, best_val_step=run.best.step if run.best.found else None,
                      stopped_early=run.stopped_early)


def _divergence_advice(config: TrainConfig, path: Path, history: list[EpochRecord]) -> str:
    kept = (f"the last good checkpoint {path} (end of epoch {history[-1].epoch}) is kept; --resume continues "
            "from it" if history else "no checkpoint was written yet")
    return (f"{kept}. Try a lower --lr (now {config.lr:g}), a --grad-clip (now {config.grad_clip:g}; 1.0 by "
            "default), or --precision 32, and check the data with `ptycho-torch inspect --validate full`")


def train_command(*, data: str, output_dir: str, resume: bool = False, progress: bool = True,
                  debug_nan_at_step: int | None = None, debug_step_delay_s: float = 0.0,
                  **settings: Any) -> int:
    """`ptycho-torch train`: settings are TrainConfig fields; returns 0 (errors raise PtychoTorchError)."""
    config = TrainConfig(data=data, output_dir=output_dir, **settings)
    train(config, resume=resume, progress=progress, debug_nan_at_step=debug_nan_at_step,
          debug_step_delay_s=debug_step_delay_s)
    return 0
