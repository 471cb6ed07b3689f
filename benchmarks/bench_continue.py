"""A study's continued networks against the same time spent at the start's own gridsize (issue 23).

    python benchmarks/bench_continue.py --study STUDY_DIR [--config docs/studies/dose_overlap/cpu.yaml]
                                        [--conditions 1e5_dense ...] [--arms unseen self] [--no-write]

A study with `continue_from: {2: 1}` trains each gridsize-2 network on from the gridsize-1 network of its
own condition and arm, so its row has the gridsize-1 training behind it too. Whether the overlap
constraint helps, or only the extra steps do, needs a control: the same gridsize-1 network trained on at
gridsize 1 for as many steps as the gridsize-2 network took, on the same data, with the study's settings
otherwise. Per condition and arm this trains that control with the study's own stage functions
(stages.train_network with the gridsize-1 run as its start, infer_network, evaluate_unit: scored on the
study's region like every row of its table) in a folder of its own, and prints the three rows: gridsize 1
as the study trained it, gridsize 2 continued, gridsize 1 continued. The study folder is only read.
Appends a section to benchmarks/RESULTS.md (machine, date, threads, load average) unless --no-write.
"""
from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

from results_file import machine, publish

from ptycho_torch.study.config import Condition, Network, conditions
from ptycho_torch.study.load import load_config
from ptycho_torch.study.stages import evaluate_unit, infer_network, train_network

HERE = Path(__file__).resolve().parent


def read(path: Path) -> dict:
    return json.loads(path.read_text())


def scores(run: Path) -> tuple[float, float]:
    found = read(run / "metrics.json")
    return found["amplitude"]["ssim"], found["phase"]["ssim"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--study", type=Path, required=True, help="a finished study's output folder")
    parser.add_argument("--config", type=Path, default=HERE.parent / "docs/studies/dose_overlap/cpu.yaml")
    parser.add_argument("--conditions", nargs="*", default=None, help="e.g. 1e5_dense (default: all)")
    parser.add_argument("--arms", nargs="*", default=None, help="unseen, self (default: the study's)")
    parser.add_argument("--workdir", type=Path, default=None, help="keep the control runs here")
    parser.add_argument("--results", type=Path, default=HERE / "RESULTS.md")
    parser.add_argument("--no-write", action="store_true", help="print only; do not append to RESULTS.md")
    args = parser.parse_args()
    config = load_config(args.config)
    if not config.continue_from:
        parser.error(f"{args.config} has no continue_from: there is no continued network to control")
    chosen: list[Condition] = [c for c in conditions(config) if not args.conditions or c.name in args.conditions]
    arms = args.arms or list(config.arms)
    unfinished = [str(run) for c in chosen for arm in arms for g in (*config.continue_from, *config.continue_from.values())
                  if not (run := args.study / c.run_dir(Network(g, arm).folder) / "metrics.json").is_file()]
    if unfinished:
        parser.error(f"the study in {args.study} is not finished (no {', '.join(unfinished)}); run it to the end first")
    load_start = os.getloadavg()[0]
    lines = []
    with tempfile.TemporaryDirectory() as scratch:
        work = args.workdir or Path(scratch)
        for c in chosen:
            for arm in arms:
                for target, source in sorted(config.continue_from.items()):
                    start, continued = Network(source, arm), Network(target, arm)
                    start_run, continued_run = args.study / c.run_dir(start.folder), args.study / c.run_dir(
                        continued.folder)
                    steps = read(continued_run / "train.json")["steps"]
                    control = work / f"{c.name}_{start.folder}_plus{steps}"
                    settings = replace(config, train_by_gridsize={}, train=replace(
                        config.train_for(source), max_steps=steps, steps=0, epochs=None))
                    started = time.perf_counter()
                    train_network(settings, args.study / c.data_dir / start.train_file, control, source, False,
                                  start=start_run)
                    infer_network(settings, args.study / c.data_dir, control)
                    evaluate_unit(config.evaluation, args.study / c.data_dir, control, with_recon=True)
                    seconds = time.perf_counter() - started
                    rows = [(f"gridsize {source} (the study's)", start_run, read(start_run / "train.json")),
                            (f"gridsize {target} continued from it (the study's)", continued_run,
                             read(continued_run / "train.json")),
                            (f"gridsize {source} continued from it (control)", control, read(control / "train.json"))]
                    for label, run, trained in rows:
                        amp, phase = scores(run)
                        lines.append(f"| {c.name} | {arm} | {label} | {trained['steps']} | "
                                     f"{trained['seconds']:.0f} | {amp:.3f} | {phase:.3f} |")
                    print("\n".join(lines[-3:]), f"(control {seconds:.0f} s)", flush=True)
    now = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    text = "\n".join([
        f"\n\n## Continued networks against their control (bench_continue, {now})\n",
        (f"`python benchmarks/bench_continue.py --study {args.study.name} --config {args.config.name}"
         f"{' --conditions ' + ' '.join(args.conditions) if args.conditions else ''}"
         f"{' --arms ' + ' '.join(args.arms) if args.arms else ''}`. "
         f"{machine(f'{config.train.threads} thread(s) per training', (load_start, os.getloadavg()[0]))}. steps "
         "and seconds: each run's own (a continued run also has its start's behind it). SSIM on the study's "
         "region, scored as its table is.\n"),
        "| condition | arm | network | steps | seconds | amp SSIM | phase SSIM |",
        "|---|---|---|---:|---:|---:|---:|",
        *lines,
    ]) + "\n"
    publish(args.results, text, write=not args.no_write)


if __name__ == "__main__":
    main()
