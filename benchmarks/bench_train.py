"""Benchmark of PtychoPINN training and inference throughput, and of what the memmap DataLoader costs a step.

    python benchmarks/bench_train.py                  # CPU here, or CUDA + bf16 where available; appends to RESULTS.md
    python benchmarks/bench_train.py --device cpu --steps 10 --no-write

For gridsize 1 and 2 on simulated N = 64 data, with the trainer's own pieces (PtychoDataset over the
memory-mapped NPZ, the trainer's DataLoader and LossModule, Adam, gradient clipping, autocast as
`ptycho-torch train` uses it, the trainer's default precision), at the trainer's default thread count
(device.resolve_threads) and at each count given with --threads:
1. step time fed by the real DataLoader (gather from the memmap, to device, forward, backward, step);
2. step time on one batch already in memory on the device (the same work minus the loading);
3. the loader alone (next batch + copy to device).
The loader's cost is reported as (1 - 2) / 2 and as 3 / 2; target: under 10% of a step. Rounds of every
configuration are interleaved and the median taken, because the machines are shared and timings are noisy;
the load average (other work on the machine) is recorded beside every round.
Then inference (`infer.reconstruct`: batched prediction + stitching) in patterns/s.
Throughput counts diffraction patterns: groups x gridsize**2. Targets (issue 11, CPU, N 64, default model,
default threads): >= 100 training patterns/s at gridsize 1 and >= 200 at gridsize 2.
"""
from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

HERE = Path(__file__).resolve()
sys.path.insert(0, str(HERE.parents[1]))

from ptycho_torch import physics
from ptycho_torch.atomic_io import atomic_write_bytes
from ptycho_torch.bundle import DataConfig, load_bundle, save_bundle
from ptycho_torch.dataset import PtychoDataset
from ptycho_torch.device import (
    DistContext,
    autocast,
    load_average,
    resolve_device,
    resolve_precision,
    resolve_threads,
    torch_threads,
)
from ptycho_torch.infer import reconstruct
from ptycho_torch.memmap_bridge import MemmapDatasetBridge
from ptycho_torch.simulate import simulate_dataset, write_npz
from ptycho_torch.train.config import TrainConfig
from ptycho_torch.train.data import GroupRows, make_train_loader, mean_total_counts
from ptycho_torch.train.loop import LossModule, build_model


def machine(device: torch.device) -> str:
    cpu = platform.processor() or "?"
    try:
        cpu = next(line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                   if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    gpu = f"; GPU {torch.cuda.get_device_name(device)}" if device.type == "cuda" else ""
    return (f"{platform.platform()}; {cpu}; {os.cpu_count()} logical CPUs (shared with other jobs){gpu}; "
            f"Python {platform.python_version()}, torch {torch.__version__}")


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def timed(fn: Callable[[], Any], count: int, device: torch.device) -> float:
    """Seconds per call of fn, over `count` calls."""
    sync(device)
    start = time.perf_counter()
    for _ in range(count):
        fn()
    sync(device)
    return (time.perf_counter() - start) / count


def endless(loader: Any) -> Iterator[dict[str, torch.Tensor]]:
    epoch = 0
    while True:
        loader.sampler.sampler.set_epoch(epoch)
        yield from loader
        epoch += 1


@dataclass
class Bench:
    """One configuration (gridsize, threads) with its model, optimizer and batches, timed round by round."""

    gridsize: int
    threads: int
    precision: str
    step: Callable[[Any, Any, Any], None]
    batches: Iterator[dict[str, torch.Tensor]]
    to_device: Callable[[dict[str, torch.Tensor]], tuple[torch.Tensor, torch.Tensor, torch.Tensor]]
    resident: tuple[torch.Tensor, torch.Tensor, torch.Tensor]
    loader_step: list[float]
    memory_step: list[float]
    load_only: list[float]


def make_bench(data: Path, gridsize: int, threads: int, a: argparse.Namespace, device: torch.device) -> Bench:
    config = TrainConfig(data=str(data), output_dir="unused", batch_size=a.batch_size, gridsize=gridsize,
                         n_filters=a.n_filters, depth=a.depth, device=str(device), precision=a.precision)
    precision = resolve_precision(config.precision, device)
    bridge = MemmapDatasetBridge(data)
    scale = physics.intensity_scale(torch.from_numpy(bridge.probeGuess), mean_total_counts(bridge))
    dataset = PtychoDataset(bridge, gridsize=gridsize)
    loader, _, _ = make_train_loader(GroupRows(dataset, np.arange(len(dataset))), config, DistContext(), device)
    batches = endless(loader)
    torch.manual_seed(0)
    model = build_model(config, bridge, scale).to(device)
    if device.type == "cpu":
        model.net.to(memory_format=torch.channels_last)  # as the trainer does
    step_module = LossModule(model)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-4)

    def to_device(batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        return (batch["diffraction"].to(device, non_blocking=True),
                batch["coords_relative"].to(device, non_blocking=True),
                batch["coords_global"].to(device, non_blocking=True))

    def step(diffraction: torch.Tensor, coords: torch.Tensor, positions: torch.Tensor) -> None:  # the trainer's
        with autocast(device, precision):
            loss = step_module(diffraction, coords, positions)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), config.grad_clip)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    with torch_threads(threads):
        for _ in range(a.warmup):
            step(*to_device(next(batches)))
    return Bench(gridsize, threads, precision.value, step, batches, to_device, to_device(next(batches)), [], [], [])


def run_round(bench: Bench, a: argparse.Namespace, device: torch.device) -> None:
    with torch_threads(bench.threads):
        bench.loader_step.append(timed(lambda: bench.step(*bench.to_device(next(bench.batches))), a.steps, device))
        bench.memory_step.append(timed(lambda: bench.step(*bench.resident), a.steps, device))
        bench.load_only.append(timed(lambda: bench.to_device(next(bench.batches)), a.steps, device))


def summarize(bench: Bench, a: argparse.Namespace) -> dict[str, Any]:
    with_loader, in_memory = statistics.median(bench.loader_step), statistics.median(bench.memory_step)
    loading = statistics.median(bench.load_only)
    patterns = a.batch_size * bench.gridsize**2
    return {"gridsize": bench.gridsize, "threads": bench.threads, "patterns_per_step": patterns,
            "loader_step_s": with_loader, "memory_step_s": in_memory, "load_s": loading,
            "train_patterns_per_s": patterns / with_loader, "best_patterns_per_s": patterns / min(bench.loader_step),
            "overhead": (with_loader - in_memory) / in_memory, "load_fraction": loading / in_memory,
            "precision": bench.precision}


def bench_inference(data: Path, workdir: Path, a: argparse.Namespace, device: torch.device,
                    threads: int) -> dict[str, Any]:
    config = TrainConfig(data=str(data), output_dir="unused", n_filters=a.n_filters, depth=a.depth)
    bridge = MemmapDatasetBridge(data)
    scale = physics.intensity_scale(torch.from_numpy(bridge.probeGuess), mean_total_counts(bridge))
    torch.manual_seed(0)
    model = build_model(config, bridge, scale)
    path = save_bundle(workdir / "wts.h5.zip", model, DataConfig(N=model.config.N), {"benchmark": True})
    precision = resolve_precision(a.precision, device)
    with torch_threads(threads):
        reconstruct(load_bundle(path), bridge, batch_size=a.infer_batch_size, device=device, precision=precision)
        runs = [reconstruct(load_bundle(path), bridge, batch_size=a.infer_batch_size, device=device,
                            precision=precision) for _ in range(a.rounds)]
    best = statistics.median(r.patterns_per_s for r in runs)
    return {"patterns": len(bridge), "patterns_per_s": best, "precision": precision.value, "threads": threads}


def render(a: argparse.Namespace, device: torch.device, rows: list[dict[str, Any]], inference: dict[str, Any],
           loads: list[float], default_threads: int, argv: list[str]) -> str:
    when = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    lines = [
        f"## bench_train: PtychoPINN training and inference throughput ({when})",
        "",
        f"- Command: `{' '.join(['python', 'benchmarks/bench_train.py', *argv])}`",
        f"- Machine: {machine(device)}",
        (f"- Device: {device} ({rows[0]['precision']} precision); model N = 64, n_filters {a.n_filters}, depth "
         f"{a.depth}; batch {a.batch_size} groups; {a.n_images} simulated patterns (memory-mapped NPZ, page cache "
         f"warm); median of {a.rounds} interleaved rounds of {a.steps} steps after {a.warmup} warm-up steps."),
        (f"- Threads: the trainer's default here is {default_threads} (`--threads 0`: the cores this process may "
         f"use). Load average (1 min) over the rounds: {min(loads):.1f} to {max(loads):.1f}, on "
         f"{os.cpu_count()} logical CPUs."),
        "",
        ("| gridsize | threads | patterns/step | step with DataLoader (ms) | step, batch in memory (ms) "
         "| loader alone (ms) | training patterns/s (median) | best round | loader alone / step |"),
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        default = " (default)" if r["threads"] == default_threads else ""
        lines.append(f"| {r['gridsize']} | {r['threads']}{default} | {r['patterns_per_step']} | "
                     f"{1e3 * r['loader_step_s']:.1f} | {1e3 * r['memory_step_s']:.1f} | {1e3 * r['load_s']:.2f} | "
                     f"{r['train_patterns_per_s']:.1f} | {r['best_patterns_per_s']:.1f} | "
                     f"{100 * r['load_fraction']:.2f}% |")
    targets = {1: 100.0, 2: 200.0}
    defaults = [r for r in rows if r["threads"] == default_threads]
    verdicts = ", ".join(f"gridsize {r['gridsize']}: {r['train_patterns_per_s']:.0f} patterns/s vs "
                         f"{targets.get(r['gridsize'], 0):.0f} ({'met' if r['train_patterns_per_s'] >= targets.get(r['gridsize'], 0) else 'missed'})"
                         for r in defaults)
    lines += [
        "",
        f"Targets at the default thread count (>= 100 patterns/s at gridsize 1, >= 200 at gridsize 2): {verdicts}.",
        "",
        (f"Inference (`infer.reconstruct`: batched prediction and stitching, batch {a.infer_batch_size}, "
         f"{inference['precision']}, {inference['threads']} threads): **{inference['patterns_per_s']:.1f} "
         f"patterns/s** over {inference['patterns']} patterns."),
        "",
        (f"Loader cost under 10% of a step: **{'yes' if all(r['load_fraction'] < 0.10 for r in rows) else 'no'}** "
         "(loader alone / step). On shared CPU cores every number here moves by tens of percent between runs; "
         "compare rows of one section only."),
        "",
    ]
    return "\n".join(lines)


def append_results(results: Path, section: str) -> None:
    old = results.read_text() if results.exists() else (
        "# Benchmark results\n\nAppended by the scripts in this folder; each section names its command, "
        "machine and date. Timings on shared machines are noisy: compare ratios within a section.\n")
    atomic_write_bytes(results, (old.rstrip("\n") + "\n\n" + section).encode())


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--device", default="auto", help="auto (CUDA if available), cpu, cuda")
    ap.add_argument("--precision", default="auto", choices=["auto", "32", "bf16"], help="as `ptycho-torch train`")
    ap.add_argument("--threads", type=int, nargs="*", default=[1],
                    help="thread counts measured besides the trainer's default (default: 1)")
    ap.add_argument("--n-images", type=int, default=512)
    ap.add_argument("--batch-size", type=int, default=16, help="groups per step (the trainer's default)")
    ap.add_argument("--infer-batch-size", type=int, default=64)
    ap.add_argument("--n-filters", type=int, default=16)
    ap.add_argument("--depth", type=int, default=3)
    ap.add_argument("--steps", type=int, default=8, help="steps per timed round")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--results", default=str(HERE.parent / "RESULTS.md"))
    ap.add_argument("--no-write", action="store_true", help="print only; do not append to RESULTS.md")
    a = ap.parse_args()
    device = resolve_device(a.device, DistContext())
    default_threads = resolve_threads(0)
    thread_counts = [default_threads, *(t for t in a.threads if t != default_threads)]
    with tempfile.TemporaryDirectory(prefix="bench_train.") as tmp:
        workdir = Path(tmp)
        data = write_npz(workdir / "data.npz", simulate_dataset(a.n_images, nphotons=1e4, overlap=0.7, seed=0))
        benches = [make_bench(data, gridsize, threads, a, device) for gridsize in (1, 2) for threads in thread_counts]
        loads = []
        for number in range(a.rounds):  # interleaved, so that changes of load on the machine hit every row alike
            loads.append(load_average())
            for bench in benches:
                run_round(bench, a, device)
            print(f"round {number + 1}/{a.rounds} done (load average {loads[-1]:.1f})", flush=True)
        rows = [summarize(bench, a) for bench in benches]
        for r in rows:
            print(f"gridsize {r['gridsize']}, {r['threads']} threads: {r['train_patterns_per_s']:.1f} training "
                  f"patterns/s, loader alone {100 * r['load_fraction']:.2f}% of a step", flush=True)
        inference = bench_inference(data, workdir, a, device, default_threads)
        print(f"inference: {inference['patterns_per_s']:.1f} patterns/s", flush=True)
    shown = [arg for arg, before in zip(sys.argv[1:], ["", *sys.argv[1:]], strict=False)
             if not arg.startswith("--results") and before != "--results"]  # no folder of this machine
    section = render(a, device, rows, inference, loads, default_threads, shown)
    print(section)
    if not a.no_write:
        append_results(Path(a.results), section)
        print(f"appended to {a.results}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
