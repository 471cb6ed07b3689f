"""The PtychoPINN trainer: `ptycho-torch train`, `python -m ptycho_torch.train`, and under torchrun.

    torchrun --nproc_per_node=K -m ptycho_torch.train --data D.npz --output-dir O [flags of `ptycho-torch train`]

One readable loop (nanoGPT style): DDP when torchrun set RANK, side effects (files, printing) on rank 0
only, bf16 autocast on CUDA, checkpoint every epoch, resume restoring everything.

Data: the NPZ is opened through MemmapDatasetBridge and PtychoDataset (patterns are gathered per batch from
the memory map, never copied whole). Groups are split into train / validation by a seeded permutation.
Batches come from a DistributedSampler (one replica when not distributed) whose order depends only on
(seed, epoch), so a resumed run continues with exactly the batches the interrupted one would have seen.

Outputs in --output-dir (rank 0): checkpoint.pt (latest epoch; torch.save of tensors and plain containers,
loadable with weights_only=True), history.json, loss_curve.png, wts.h5.zip + wts.h5.zip.sha256 (bundle.py).
Throughput is reported in diffraction patterns per second (groups * gridsize**2, all ranks).
"""
from __future__ import annotations

import datetime as dt
import io
import json
import math
import pickle  # only for its error type: torch.load(weights_only=True) raises pickle.UnpicklingError
import platform
import random
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
from torch import Tensor, nn
from torch.utils.data import DataLoader, Dataset, DistributedSampler

from ptycho_torch import __version__, options, physics
from ptycho_torch.atomic_io import atomic_write_bytes
from ptycho_torch.bundle import BUNDLE_NAME, DataConfig, save_bundle, sha256_file
from ptycho_torch.dataset import PtychoDataset, Sample, SortedBatchSampler
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

CHECKPOINT_NAME = "checkpoint.pt"
HISTORY_NAME = "history.json"
CURVE_NAME = "loss_curve.png"
CHECKPOINT_FORMAT = 1
COUNTS_CHUNK = 256  # patterns per read when measuring the mean total counts


def _flag(field_name: str) -> str:
    return f"--{field_name.replace('_', '-')}"


@dataclass(frozen=True)
class TrainConfig:
    """Everything a run depends on; stored in each checkpoint so a resume can check it continues the same run."""

    data: str
    output_dir: str
    epochs: int = 5
    batch_size: int = 16
    lr: float = 1e-3
    seed: int = 0
    val_fraction: float = 0.1
    gridsize: int = 1
    K: int = 7
    n_filters: int = 16
    depth: int = 3
    loss: str = "poisson"
    grad_clip: float = 0.0  # max gradient norm; 0 = no clipping
    device: str = "auto"
    precision: str = "auto"
    compile: bool = False
    num_workers: int = 0

    def __post_init__(self) -> None:
        for name in ("epochs", "batch_size", "gridsize", "K", "n_filters", "depth"):
            options.integer(getattr(self, name), _flag(name), minimum=1, error=TrainError)
        options.integer(self.num_workers, "--num-workers", minimum=0, error=TrainError)
        options.number(self.lr, "--lr", above=0, error=TrainError)
        options.number(self.val_fraction, "--val-fraction", minimum=0, below=1, error=TrainError)
        options.number(self.grad_clip, "--grad-clip (0 = off)", minimum=0, error=TrainError)
        options.choice(LossKind, self.loss, "--loss", error=TrainError)

    def run_identity(self) -> dict[str, Any]:
        """The fields a resumed run must share with the checkpoint (epochs may grow; device may change)."""
        keep = ("batch_size", "lr", "seed", "val_fraction", "gridsize", "K", "n_filters", "depth", "loss",
                "grad_clip")
        return {k: getattr(self, k) for k in keep}


@dataclass(frozen=True)
class EpochRecord:
    epoch: int  # 1-based
    train_loss: float  # mean over the epoch's steps of the (all-rank) batch loss
    val_loss: float  # mean over validation groups; NaN when there is no validation split
    lr: float
    patterns_per_s: float  # training patterns (groups * C) per second over all ranks
    seconds: float


@dataclass(frozen=True)
class TrainResult:
    output_dir: Path
    bundle_path: Path | None  # None on ranks other than 0
    history: tuple[EpochRecord, ...]
    intensity_scale: float
    resumed_from_epoch: int = 0
    device: str = field(default="cpu")


# ----------------------------------------------------------------------------------------------- data


def mean_total_counts(bridge: MemmapDatasetBridge, chunk: int = COUNTS_CHUNK) -> float:
    """Mean over patterns of sum(amplitude^2), read chunk by chunk from the memory map (float64 sums)."""
    data = bridge.diffraction.view(np.ndarray)
    total = 0.0
    for start in range(0, len(data), chunk):
        block = np.asarray(data[start : start + chunk], dtype=np.float64)
        total += float(np.square(block).sum())
    return total / len(data)


def split_groups(count: int, val_fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(train_rows, val_rows), each sorted: a seeded permutation of the group rows, the first part val."""
    n_val = round(count * val_fraction)
    if val_fraction > 0 and count >= 2:
        n_val = min(max(n_val, 1), count - 1)
    perm = np.random.default_rng(seed).permutation(count)
    return np.sort(perm[n_val:]), np.sort(perm[:n_val])


class GroupRows(Dataset[Sample]):
    """A subset of a PtychoDataset's groups; indexed by a list of positions it returns a whole batch."""

    def __init__(self, dataset: PtychoDataset, rows: np.ndarray) -> None:
        self.dataset = dataset
        self.rows = np.asarray(rows, dtype=np.int64)

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, positions: Sequence[int]) -> Sample:  # type: ignore[override]
        return self.dataset.get_batch(self.rows[np.asarray(positions, dtype=np.int64)])


def make_train_loader(subset: GroupRows, config: TrainConfig, ctx: DistContext,
                      device: torch.device) -> tuple[DataLoader, DistributedSampler]:
    """One gather per batch (rows ascending); the order is a function of (seed, epoch) only."""
    sampler = DistributedSampler(subset, num_replicas=ctx.world_size, rank=ctx.rank, shuffle=True,
                                 seed=config.seed, drop_last=False)
    batches = SortedBatchSampler(sampler, batch_size=config.batch_size, drop_last=False)
    loader = DataLoader(subset, sampler=batches, batch_size=None, num_workers=config.num_workers,
                        pin_memory=device.type == "cuda", persistent_workers=config.num_workers > 0)
    return loader, sampler


def _batches(rows: np.ndarray, batch_size: int) -> Iterator[np.ndarray]:
    for start in range(0, len(rows), batch_size):
        yield rows[start : start + batch_size]


# ----------------------------------------------------------------------------------------------- model


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


# ----------------------------------------------------------------------------------------------- state


def rng_state() -> dict[str, Any]:
    """torch / numpy / python RNG states as tensors and plain containers (weights_only-loadable)."""
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    state: dict[str, Any] = {
        "torch": torch.get_rng_state(),
        "numpy": {"kind": kind, "keys": torch.from_numpy(keys.astype(np.int64)), "pos": int(pos),
                  "has_gauss": int(has_gauss), "cached_gaussian": float(cached)},
        "python": random.getstate(),
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    np_state = state["numpy"]
    np.random.set_state((np_state["kind"], np_state["keys"].numpy().astype(np.uint32), np_state["pos"],
                         np_state["has_gauss"], np_state["cached_gaussian"]))
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state(state["cuda"])


def save_checkpoint(path: Path, state: dict[str, Any]) -> None:
    buffer = io.BytesIO()
    torch.save(state, buffer)
    atomic_write_bytes(path, buffer.getvalue())


def load_checkpoint(path: Path) -> dict[str, Any]:
    """Load a checkpoint with weights_only=True (no pickled objects); raises TrainError if unreadable."""
    if not path.is_file():
        raise TrainError(f"--resume: no checkpoint at {path}; run without --resume to start a new run")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError, OSError, ValueError, KeyError) as exc:
        raise TrainError(f"{path}: cannot load the checkpoint ({exc}); delete it to start over") from None
    if not isinstance(state, dict) or state.get("format") != CHECKPOINT_FORMAT:
        raise TrainError(f"{path}: not a ptycho_torch checkpoint (format {CHECKPOINT_FORMAT})")
    return state


def _check_resume(state: dict[str, Any], config: TrainConfig, data_sha256: str, path: Path) -> None:
    if state["data_sha256"] != data_sha256:
        raise TrainError(f"--resume: {path} was trained on other data (SHA256 {state['data_sha256'][:12]}...) "
                         f"than {config.data} ({data_sha256[:12]}...); pass the same --data or a new --output-dir")
    saved = state["config"]
    changed = {k: (saved.get(k), v) for k, v in config.run_identity().items() if saved.get(k) != v}
    if changed:
        detail = ", ".join(f"{k}: checkpoint {old!r} vs now {new!r}" for k, (old, new) in changed.items())
        raise TrainError(f"--resume: settings differ from the checkpoint's ({detail}); use the same flags "
                         "(only --epochs, --device, --precision, --num-workers may change)")


# ----------------------------------------------------------------------------------------------- outputs


def write_history(output_dir: Path, history: Sequence[EpochRecord]) -> None:
    text = json.dumps([asdict(r) for r in history], indent=2)  # NaN -> NaN literal, read back by json
    atomic_write_bytes(output_dir / HISTORY_NAME, text.encode())


def write_loss_curve(output_dir: Path, history: Sequence[EpochRecord]) -> None:
    from matplotlib.figure import Figure  # no pyplot: no global backend state, Agg is used for PNG

    fig = Figure(figsize=(5, 3.5), layout="constrained")
    ax = fig.add_subplot()
    epochs = [r.epoch for r in history]
    ax.plot(epochs, [r.train_loss for r in history], "o-", label="train")
    if any(math.isfinite(r.val_loss) for r in history):
        ax.plot(epochs, [r.val_loss for r in history], "s--", label="validation")
    ax.set_xlabel("epoch")
    ax.set_ylabel("loss (mean per pixel)")
    ax.legend()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=100)
    atomic_write_bytes(output_dir / CURVE_NAME, buffer.getvalue())


def _versions() -> dict[str, str]:
    import safetensors

    return {"ptycho_torch": __version__, "torch": torch.__version__, "numpy": np.__version__,
            "safetensors": safetensors.__version__, "python": platform.python_version()}


# ----------------------------------------------------------------------------------------------- loop


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
    for positions in _batches(rows, config.batch_size):
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


def _progress(enabled: bool) -> Any:
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

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
        _check_resume(state, config, data_sha256, checkpoint_path)
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
            _metadata(config, history, bridge, data_sha256, scale, device, precision, ctx),
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


def _metadata(config: TrainConfig, history: Sequence[EpochRecord], bridge: MemmapDatasetBridge, sha: str,
              scale: float, device: torch.device, precision: Precision, ctx: DistContext) -> dict[str, Any]:
    last = history[-1] if history else None
    return {
        "created_utc": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "versions": _versions(),
        "seed": config.seed,
        "dataset": {"path": str(bridge.path), "sha256": sha, "n_patterns": len(bridge),
                    "nphotons_metadata": bridge.nphotons},
        "epochs": len(history),
        "final_train_loss": None if last is None else last.train_loss,
        "final_val_loss": None if last is None else last.val_loss,
        "intensity_scale": scale,
        "device": str(device),
        "precision": precision.value,
        "world_size": ctx.world_size,
        "train_config": asdict(config),
        "complex_tensors": "stored as float32 (..., 2) real/imag views; see bundle.py",
    }


# ----------------------------------------------------------------------------------------------- CLI


def train_command(*, data: str, output_dir: str, resume: bool = False, progress: bool = True,
                  debug_nan_at_step: int | None = None, debug_step_delay_s: float = 0.0,
                  **settings: Any) -> int:
    """`ptycho-torch train`: settings are TrainConfig fields; returns 0 (errors raise PtychoTorchError)."""
    config = TrainConfig(data=data, output_dir=output_dir, **settings)
    train(config, resume=resume, progress=progress, debug_nan_at_step=debug_nan_at_step,
          debug_step_delay_s=debug_step_delay_s)
    return 0


if __name__ == "__main__":
    from ptycho_torch.cli import main

    sys.exit(main(["train", *sys.argv[1:]]))
