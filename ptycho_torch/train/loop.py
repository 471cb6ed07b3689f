"""The training loop (nanoGPT style): DDP when torchrun set RANK, side effects (files, printing) on rank 0
only, bf16 autocast on CUDA, clip -> step -> zero_grad, a checkpoint every epoch and at the end, resume
restoring everything; see the package docstring.

A run lasts config.steps optimizer steps (or config.epochs epochs). Its progress is watched against the
flat-object plateau (progress.py): an attempt still on the plateau after config.plateau_steps is abandoned
and a new one starts from a new seed (fresh weights, optimizer and schedule; the data order runs on), at
most config.max_restarts times; the length counts the final attempt's steps.

Throughput is reported in diffraction patterns per second (groups * gridsize**2, all ranks). Losses stay on
the device and are looked at every progress.CHECK_EVERY steps (NaN/Inf check, plateau watch): no host sync
per step. A divergence stops the run with advice and keeps the last good checkpoint.
"""
from __future__ import annotations

import math
import random
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
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
from ptycho_torch.model import LossKind, ModelConfig, ModelConfigError, PtychoPINN
from ptycho_torch.train import checkpoint
from ptycho_torch.train.config import EpochRecord, RestartRecord, TrainConfig, TrainResult
from ptycho_torch.train.data import GroupRows, make_train_loader, mean_total_counts, split_groups
from ptycho_torch.train.outputs import RunSummary, bundle_metadata, write_history, write_loss_curve
from ptycho_torch.train.progress import CHECK_EVERY, NonFinite, PlateauWatch, StepLosses, reference_losses
from ptycho_torch.train.validation import validation_loss


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


def attempt_seed(seed: int, attempt: int) -> int:
    """The initialisation seed of an attempt: the run's seed first, then one derived from (seed, attempt)."""
    if attempt == 0:
        return seed
    return int(np.random.SeedSequence([seed, attempt]).generate_state(1, dtype=np.uint32)[0])


@dataclass
class _Run:
    """Where a run stands: everything a checkpoint holds besides weights, optimizer and RNG states."""

    epoch: int = 0  # the epoch under way or last finished (1-based)
    batches_done: int = 0  # batches of that epoch already run; 0 when it is finished
    global_step: int = 0  # optimizer steps over all attempts
    attempt: int = 0
    attempt_step: int = 0  # optimizer steps of the current attempt
    restarts: list[RestartRecord] = field(default_factory=list)
    history: list[EpochRecord] = field(default_factory=list)


class _Diverged(Exception):
    def __init__(self, epoch: int, step: int, value: float, what: str = "loss") -> None:
        super().__init__(epoch, step, value, what)
        self.epoch, self.step, self.value, self.what = epoch, step, value, what


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
        return _train(config, ctx, device, precision, threads, resume=resume, progress=progress,
                      debug_nan_at_step=debug_nan_at_step, debug_step_delay_s=debug_step_delay_s)


def _train(config: TrainConfig, ctx: DistContext, device: torch.device, precision: Precision, threads: int, *,
           resume: bool, progress: bool, debug_nan_at_step: int | None, debug_step_delay_s: float) -> TrainResult:
    output_dir = Path(config.output_dir)
    checkpoint_path = output_dir / checkpoint.CHECKPOINT_NAME
    load = load_average()
    if ctx.is_main:
        output_dir.mkdir(parents=True, exist_ok=True)
        note = oversubscription_note(threads) if device.type == "cpu" else None
        if note:
            print(note, flush=True)
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
    loader, sampler, batches = make_train_loader(train_set, config, ctx, device)

    model = build_model(config, bridge, scale).to(device)
    if device.type == "cpu" and not ctx.distributed:
        model.net.to(memory_format=torch.channels_last)  # ~2x faster convolutions on CPU (oneDNN)
    references = reference_losses(model, train_set, config.batch_size, ctx, device)
    optimizer = torch.optim.Adam(model.parameters(), lr=config.lr)
    scaler = torch.amp.GradScaler(device.type, enabled=False)  # bf16 and fp32 need no loss scaling
    watch = PlateauWatch(config, references)
    run = _Run()
    if resume:
        state = checkpoint.load_checkpoint(checkpoint_path)
        checkpoint.check_resume(state, config, data_sha256, checkpoint_path, ctx.world_size)
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        scaler.load_state_dict(state["scaler"])
        checkpoint.set_rng_state(state["rng"])
        watch.load_state_dict(state["watch"])
        run = _Run(**checkpoint.run_fields(state))
        if ctx.is_main:
            print(f"resuming from {checkpoint_path} after epoch {run.epoch} (step {run.global_step})", flush=True)
    resumed_from_epoch = run.epoch if resume else 0

    step_module: nn.Module = LossModule(model)
    if ctx.distributed:
        step_module = nn.parallel.DistributedDataParallel(
            step_module, device_ids=[device.index] if device.type == "cuda" else None, broadcast_buffers=False)
    if config.compile:
        step_module = torch.compile(step_module)

    def restart() -> None:
        """Abandon the attempt on the plateau: fresh weights from a new seed, a fresh optimizer and watch."""
        nonlocal optimizer, watch
        seed = attempt_seed(config.seed, run.attempt)
        run.restarts.append(RestartRecord(attempt=run.attempt, seed=seed, steps=run.attempt_step,
                                          gap_closed=watch.gap_closed(), at_step=run.global_step))
        run.attempt, run.attempt_step = run.attempt + 1, 0
        torch.manual_seed(attempt_seed(config.seed, run.attempt))
        model.load_state_dict(build_model(config, bridge, scale).state_dict())
        optimizer = torch.optim.Adam(model.parameters(), lr=config.lr)
        watch = PlateauWatch(config, references)
        if ctx.is_main:
            last = run.restarts[-1]
            print(f"restart {run.attempt}/{config.max_restarts}: still on the flat-object plateau after "
                  f"{last.steps} steps (gap closed {last.gap_closed:.1%} < {config.escape_gap:.1%}); "
                  f"new seed {attempt_seed(config.seed, run.attempt)}", flush=True)

    stuck_reported = False

    def look(losses: StepLosses) -> None:
        """Check the pending losses; note an escape; restart when the attempt stays on the plateau (not when
        it has just finished its steps)."""
        nonlocal stuck_reported
        losses.flush()
        escaped_before = watch.escaped_at is not None
        stuck = watch.observe(losses.drain(), run.attempt_step, optimizer)
        if stuck and run.attempt < config.max_restarts and run.attempt_step < total:
            restart()
        elif stuck and not stuck_reported and ctx.is_main:
            stuck_reported = True
            print(f"still on the flat-object plateau after {config.max_restarts} restarts; training on. Try "
                  f"another --seed, a lower --lr (now {config.lr:g}) or more --max-restarts", flush=True)
        elif watch.escaped_at is not None and not escaped_before and ctx.is_main:
            print(f"off the flat-object plateau at step {watch.escaped_at} of attempt {run.attempt} "
                  f"(gap closed {watch.gap_closed():.1%})", flush=True)

    per_epoch = len(loader)
    total = config.steps if config.steps > 0 else config.epochs * per_epoch
    with _progress(progress and ctx.is_main) as bar:
        while run.attempt_step < total:
            if run.batches_done == 0:
                run.epoch += 1
            epoch = run.epoch
            sampler.set_epoch(epoch)
            batches.skip = run.batches_done
            losses = StepLosses(ctx)
            task = bar.add_task(f"epoch {epoch}", total=per_epoch - run.batches_done)
            started, seen = time.perf_counter(), 0
            try:
                for batch in loader:
                    run.global_step += 1
                    run.attempt_step += 1
                    run.batches_done += 1
                    diffraction = batch["diffraction"].to(device, non_blocking=True)
                    coords = batch["coords_relative"].to(device, non_blocking=True)
                    with autocast(device, precision):
                        loss = step_module(diffraction, coords)
                    if debug_nan_at_step == run.global_step:
                        loss = loss * math.nan
                    scaler.scale(loss).backward()
                    if config.grad_clip > 0:
                        scaler.unscale_(optimizer)
                        nn.utils.clip_grad_norm_(model.parameters(), config.grad_clip)
                    scaler.step(optimizer)
                    scaler.update()
                    optimizer.zero_grad(set_to_none=True)
                    seen += diffraction.shape[0]
                    losses.add(run.global_step, loss)
                    if run.attempt_step % CHECK_EVERY == 0:
                        look(losses)
                    bar.advance(task)
                    if debug_step_delay_s > 0:
                        time.sleep(debug_step_delay_s)
                    if run.attempt_step >= total:
                        break
                if run.batches_done >= per_epoch:
                    look(losses)  # the end of a whole epoch: a check step
                else:  # a run that ends inside an epoch: the NaN check; the decision waits for the next
                    losses.flush()  # check step, as in a run that goes on (so --resume decides alike)
                    watch.record(losses.drain())
                elapsed = time.perf_counter() - started
                val_loss = validation_loss(model, val_set, config.batch_size, ctx, device, precision)
                if math.isinf(val_loss) or (math.isnan(val_loss) and len(val_set) > 0):
                    raise _Diverged(epoch, run.global_step, val_loss, "validation loss")
            except NonFinite as bad:
                raise TrainingDivergedError(_divergence_message(_Diverged(epoch, bad.step, bad.value), config,
                                                                checkpoint_path, run.history)) from None
            except _Diverged as bad:
                raise TrainingDivergedError(_divergence_message(bad, config, checkpoint_path, run.history)) from None
            finally:
                bar.remove_task(task)
            if run.batches_done >= per_epoch:
                run.batches_done = 0
            train_loss = float(np.mean(losses.values)) if losses.values else math.nan
            record = EpochRecord(epoch=epoch, train_loss=train_loss, val_loss=val_loss,
                                 lr=optimizer.param_groups[0]["lr"],
                                 patterns_per_s=seen * config.gridsize**2 * ctx.world_size / elapsed,
                                 seconds=elapsed, step=run.global_step, attempt=run.attempt,
                                 gap_closed=references.gap_closed(train_loss))
            run.history.append(record)
            if ctx.is_main:
                planned = epoch + math.ceil((total - run.attempt_step) / per_epoch)
                print(f"epoch {epoch}/{planned}  step {run.attempt_step}/{total}  train_loss {train_loss:.6g}  "
                      f"val_loss {val_loss:.6g}  gap closed {record.gap_closed:.1%}  "
                      f"{record.patterns_per_s:.1f} patterns/s  lr {record.lr:.3g}  {elapsed:.1f} s", flush=True)
                checkpoint.save_checkpoint(checkpoint_path, checkpoint.run_state(
                    run, model=model, optimizer=optimizer, scaler=scaler, watch=watch, config=config,
                    data_sha256=data_sha256, scale=scale, world_size=ctx.world_size))
                write_history(output_dir, run.history, _summary(run, watch, references, threads, load))

    bundle_path = None
    summary = _summary(run, watch, references, threads, load)
    if ctx.is_main:
        write_history(output_dir, run.history, summary)
        write_loss_curve(output_dir, run.history, summary)
        bundle_path = save_bundle(
            output_dir / BUNDLE_NAME, model.to("cpu").to(memory_format=torch.contiguous_format),
            DataConfig(N=model.config.N, gridsize=config.gridsize, K=config.K, group_seed=config.seed),
            bundle_metadata(config, run.history, summary, bridge, data_sha256, scale, device, precision, ctx),
        )
        print(f"wrote {bundle_path}", flush=True)
    return TrainResult(output_dir=output_dir, bundle_path=bundle_path, history=tuple(run.history),
                       intensity_scale=scale, resumed_from_epoch=resumed_from_epoch, device=str(device),
                       restarts=tuple(run.restarts), escaped_at_step=watch.escaped_at, threads=threads)


def _summary(run: _Run, watch: PlateauWatch, references: Any, threads: int, load: float) -> RunSummary:
    return RunSummary(threads=threads, load_average=load, flat_loss=references.flat, best_loss=references.best,
                      restarts=tuple(run.restarts), attempt=run.attempt, steps=run.global_step,
                      attempt_steps=run.attempt_step, escaped_at_step=watch.escaped_at)


def _divergence_message(bad: _Diverged, config: TrainConfig, path: Path, history: list[EpochRecord]) -> str:
    kept = (f"the last good checkpoint {path} (end of epoch {history[-1].epoch}) is kept; --resume continues "
            "from it" if history else "no checkpoint was written yet")
    return (f"training stopped: the {bad.what} became {bad.value} at epoch {bad.epoch}, step {bad.step}; {kept}. "
            f"Try a lower --lr (now {config.lr:g}), a --grad-clip (now {config.grad_clip:g}; 1.0 by default), "
            "or --precision 32, and check the data with `ptycho-torch inspect --validate full`")


def train_command(*, data: str, output_dir: str, resume: bool = False, progress: bool = True,
                  debug_nan_at_step: int | None = None, debug_step_delay_s: float = 0.0,
                  **settings: Any) -> int:
    """`ptycho-torch train`: settings are TrainConfig fields; returns 0 (errors raise PtychoTorchError)."""
    config = TrainConfig(data=data, output_dir=output_dir, **settings)
    train(config, resume=resume, progress=progress, debug_nan_at_step=debug_nan_at_step,
          debug_step_delay_s=debug_step_delay_s)
    return 0
