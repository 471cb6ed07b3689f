"""Does PtychoPINN training converge? Escape from the flat-object plateau, quality by steps, gridsize 1 vs 2.

    python benchmarks/bench_convergence.py escape --probe-from PATH/fly001_probe64.npz     # seeds 0 1 2, 1000 steps
    python benchmarks/bench_convergence.py gridsize --probe-from PATH/fly001_probe64.npz   # same patterns seen
    python benchmarks/bench_convergence.py options --steps 1200                            # the reference's constraints
    python benchmarks/bench_convergence.py dose --steps 2400 --doses 1e3 1e5               # quality by dose
    python benchmarks/bench_convergence.py pipeline                                        # the README's run
    python benchmarks/bench_convergence.py warmstart --seeds 0 1                           # gridsize 2 from 1

Every run goes through the CLI as a user runs it (`ptycho-torch simulate | train | infer | evaluate`, in this
process), with one torch thread, on data simulated here:

- escape, gridsize: issue 11's data: a 512 px object scanned densely (overlap 0.7) at a dose of 1e5, split
  into a training region (280 patterns) and an unseen region (120); the probe from --probe-from (the
  fly001 probe; recorded by its SHA256) or the default simulated one. `escape` trains each seed with
  restarts switched off (--plateau-steps 0), so the step at which it leaves the plateau is its own, and
  reports that step, the gap closed, the SSIMs and the correlation of the predicted patches with the true
  patches and with the twin image (SIM-003). `gridsize` trains gridsize 1 for S steps and gridsize 2 for
  S/4 (each group holds 4 patterns: the same number of patterns seen) and scores both; --equal-steps adds
  gridsize 2 for S steps (4 times the patterns), --equal-batch gridsize 2 for S steps of BATCH/4 groups
  (the same patterns per step, steps and patterns seen as gridsize 1).
- options: issue 11's data; gridsize 1 and 2 runs with the reference PtychoPINN's constraints as options
  (support window, probe mask, quadrant channel order, central-window merge, two groups per position) and
  wider networks (--n-filters 32, 64), each scored on both regions beside its patterns/s (OPTION_RUNS).
- dose: issue 11's data at each of --doses (only the counts differ), trained with the defaults for at most
  --steps, scored on both regions: does the quality rise with dose (issue 23's first target)?
- pipeline: the README's commands with defaults, --nphotons 1e5, --steps 4000.
- warmstart: issue 11's data; gridsize 1 against gridsize 2 at equal patterns seen, gridsize 2 trained
  alone (both encoders) or continuing a gridsize-1 network (`--encoder pattern --init-from`); TRAIN-011.

Results are appended to RESULTS.md with the machine, the date, the threads and the load average. Training
takes minutes to an hour on a shared CPU.
"""
from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import json
import os
import platform
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import torch

HERE = Path(__file__).resolve()
sys.path.insert(0, str(HERE.parents[1]))

from results_file import append_section

from ptycho_torch import metrics, physics
from ptycho_torch.atomic_io import atomic_write_bytes
from ptycho_torch.bundle import load_bundle
from ptycho_torch.cli import main as cli
from ptycho_torch.dataset import PtychoDataset
from ptycho_torch.device import load_average
from ptycho_torch.memmap_bridge import MemmapDatasetBridge
from ptycho_torch.recon_file import load_recon

BATCH = 16  # the trainer's default batch size (groups per step)


def issue_data(*, nphotons: float = 1e5, n_images: int = 400, object_size: int = 512) -> list[str]:
    """`ptycho-torch simulate` flags of issue 11's data: a dense scan (overlap 0.7), 30% held out as the
    unseen region, seed 1; the dose and the scan's size as given."""
    return ["--n-images", str(n_images), "--object-size", str(object_size), "--nphotons", f"{nphotons:g}",
            "--overlap", "0.7", "--split", "0.3", "--seed", "1", "--no-progress"]


ISSUE_DATA = issue_data()


def run(*argv: str) -> None:
    code = cli(list(argv))
    if code != 0:
        raise SystemExit(f"`ptycho-torch {' '.join(argv)}` failed with exit code {code}")


def simulate(out: Path, extra: list[str], probe_from: str | None) -> tuple[Path, Path]:
    run("simulate", "--out", str(out), *extra, *(["--probe-from", probe_from] if probe_from else []))
    return out.with_name(f"{out.stem}_train.npz"), out.with_name(f"{out.stem}_test.npz")


def score(run_dir: Path, part: str, data: Path) -> dict[str, float]:
    """infer + evaluate (the CLI's defaults) on one region: amplitude and phase SSIM, and a constant's."""
    run("infer", "--bundle", str(run_dir / "wts.h5.zip"), "--data", str(data), "--output-dir", str(run_dir / part))
    run("evaluate", "--recon", str(run_dir / part / "recon.npz"), "--truth", str(data))
    report = json.loads((run_dir / part / "metrics.json").read_text())
    # the same scoring without removing a linear phase ramp (see the pipeline section's note)
    unramped = metrics.evaluate(load_recon(run_dir / part / "recon.npz")[0],
                                MemmapDatasetBridge(data).objectGuess,
                                options=metrics.AlignOptions(remove_ramp=False))
    return {"amplitude": report["amplitude"]["ssim"], "phase": report["phase"]["ssim"],
            "phase_no_ramp": unramped.phase.ssim,
            "constant_amplitude": report["baseline"]["amplitude"]["ssim"],
            "constant_phase": report["baseline"]["phase"]["ssim"]}


@torch.no_grad()
def twin_correlation(bundle: Path, data: Path) -> tuple[float, float]:
    """Mean correlation (probe-intensity weighted, complex, per patch) of the predicted patches with the true
    patches and with the twin image conj(O(-r)) conj(P)/P, which fits every pattern as well when P(-r) = P(r)."""
    model = load_bundle(bundle).model.eval()
    bridge = MemmapDatasetBridge(data)
    batch = PtychoDataset(bridge).get_batch(np.arange(len(bridge)))
    predicted = model.predict_object_patches(batch["diffraction"], batch["coords_relative"],
                                             batch["coords_global"])[:, 0]
    n = predicted.shape[-1]
    truth = physics.object_windows(torch.from_numpy(np.array(bridge.objectGuess)),
                                   batch["coords_global"].double()[:, 0], n)
    probe = model.probe[0]
    flipped = torch.roll(torch.flip(truth, (-2, -1)), (1, 1), (-2, -1))  # O(-r) on the patch grid
    twin = flipped.conj() * probe.conj() / torch.where(probe.abs() > 0, probe, torch.ones_like(probe))
    weights = probe.abs() ** 2 / (probe.abs() ** 2).sum()

    def correlation(a: torch.Tensor, b: torch.Tensor) -> float:
        a = a - (weights * a).sum((-2, -1), keepdim=True)
        b = b - (weights * b).sum((-2, -1), keepdim=True)
        inner = (weights * a * b.conj()).sum((-2, -1)).abs()
        norms = ((weights * a.abs() ** 2).sum((-2, -1)) * (weights * b.abs() ** 2).sum((-2, -1))).sqrt()
        return float((inner / norms).mean())

    return correlation(predicted, truth), correlation(predicted, twin)


def history(run_dir: Path) -> dict[str, Any]:
    return json.loads((run_dir / "history.json").read_text())


def train(run_dir: Path, data: Path, steps: int, *extra: str) -> float:
    """Train (unless --work already holds a bundle of this very command on this very data); the training's
    seconds, from its history."""
    argv = ["train", "--data", str(data), "--output-dir", str(run_dir), "--steps", str(steps), "--threads", "1",
            "--no-progress", *extra]
    stamp = run_dir / "bench_command.json"
    wanted = {"argv": argv, "data_sha256": hashlib.sha256(data.read_bytes()).hexdigest()}
    reuse = (run_dir / "wts.h5.zip").is_file() and stamp.is_file() and json.loads(stamp.read_text()) == wanted
    if not reuse:
        if run_dir.exists():
            shutil.rmtree(run_dir)
        run(*argv)
        atomic_write_bytes(stamp, json.dumps(wanted).encode())
    return sum(epoch["seconds"] for epoch in history(run_dir)["epochs"])


def trained(out: Path, train_npz: Path, test_npz: Path, steps: int,
            *extra: str) -> tuple[float, dict[str, Any], dict[str, float], dict[str, float]]:
    """train, then score on the region trained on and on the unseen one: (seconds, history, own, unseen)."""
    seconds = train(out, train_npz, steps, *extra)
    return seconds, history(out), score(out, "own", train_npz), score(out, "unseen", test_npz)


def scored_cells(seconds: float, record: dict[str, Any], own: dict[str, float], unseen: dict[str, float]) -> str:
    """The last four cells of a trained run's row: own and unseen amplitude / phase SSIM, minutes, load."""
    return (f"{own['amplitude']:.3f} / {own['phase']:.3f} | {unseen['amplitude']:.3f} / {unseen['phase']:.3f} | "
            f"{seconds / 60:.1f} | {record['load_average']:.1f} |")


def progress_row(lead: list[Any], seconds: float, record: dict[str, Any], own: dict[str, float],
                 unseen: dict[str, float]) -> str:
    """A trained run's row, printed as it is made: the `lead` cells, then the gap closed at the end, the step
    of the lowest validation loss and scored_cells."""
    row = (f"| {' | '.join(map(str, lead))} | {record['epochs'][-1]['gap_closed']:.1%} | {record['best_val_step']} | "
           f"{scored_cells(seconds, record, own, unseen)}")
    print(row, flush=True)
    return row


def escape(a: argparse.Namespace, work: Path) -> list[str]:
    train_npz, test_npz = simulate(work / "data.npz", ISSUE_DATA, a.probe_from)
    lines = [("| seed | left the plateau at step | gap closed at the end | own amp / phase SSIM | unseen amp / "
             "phase SSIM | corr. with truth / twin | minutes | load |"), "|---:|---:|---:|---|---|---|---:|---:|"]
    for seed in a.seeds:
        out = work / f"seed{seed}"
        seconds = train(out, train_npz, a.steps, "--seed", str(seed), "--plateau-steps", "0")
        record = history(out)
        load = record["load_average"]  # when the training started
        own, unseen = score(out, "own", train_npz), score(out, "unseen", test_npz)
        truth, twin = twin_correlation(out / "wts.h5.zip", train_npz)
        lines.append(f"| {seed} | {record['escaped_at_step']} | {record['epochs'][-1]['gap_closed']:.1%} | "
                     f"{own['amplitude']:.3f} / {own['phase']:.3f} ({own['phase_no_ramp']:.3f}) | "
                     f"{unseen['amplitude']:.3f} / {unseen['phase']:.3f} ({unseen['phase_no_ramp']:.3f}) | "
                     f"{truth:.2f} / {twin:.3f} | {seconds / 60:.1f} | {load:.1f} |")
        print(lines[-1], flush=True)
    constant = score_constant(own, unseen)
    return [(f"{a.steps} steps per seed, restarts off (--plateau-steps 0); plateau left = gap closed >= 5%. "
            "Phase SSIM in brackets: scored without removing a linear phase ramp."),
            "", *lines, "", constant]


def score_constant(own: dict[str, float], unseen: dict[str, float]) -> str:
    return (f"A constant object scores {own['constant_amplitude']:.3f} / {own['constant_phase']:.3f} (own) and "
            f"{unseen['constant_amplitude']:.3f} / {unseen['constant_phase']:.3f} (unseen).")


def gridsize(a: argparse.Namespace, work: Path) -> list[str]:
    train_npz, test_npz = simulate(work / "data.npz", ISSUE_DATA, a.probe_from)
    lines = [("| gridsize | groups per step | steps | patterns seen | gap closed | own amp / phase SSIM | unseen "
              "amp / phase SSIM | minutes | load |"), "|---:|---:|---:|---:|---:|---|---|---:|---:|"]
    runs = [("gs1", 1, a.steps, BATCH), ("gs2", 2, a.steps // 4, BATCH),
            *([("gs2_equal_steps", 2, a.steps, BATCH)] if a.equal_steps else []),
            *([("gs2_equal_batch", 2, a.steps, BATCH // 4)] if a.equal_batch else [])]
    for folder, size, steps, batch in runs:
        out = work / folder
        seconds, record, own, unseen = trained(out, train_npz, test_npz, steps, "--gridsize", str(size),
                                               "--seed", str(a.seeds[0]),
                                               *(["--batch-size", str(batch)] if batch != BATCH else []))
        lines.append(f"| {size} | {batch} | {record['steps']} | {record['steps'] * batch * size**2} | "
                     f"{record['epochs'][-1]['gap_closed']:.1%} | {scored_cells(seconds, record, own, unseen)}")
        print(lines[-1], flush=True)
    return [(f"Seed {a.seeds[0]}; defaults otherwise (restarts on: steps and patterns seen "
             "count every attempt). Minutes: training time."), "",
            *lines, "",
            score_constant(own, unseen)]


OPTION_RUNS: dict[str, tuple[int, list[str]]] = {  # name: (gridsize, train flags)
    "gs1": (1, []),
    "gs1_support48": (1, ["--support", "48"]),
    "gs1_reference": (1, ["--support", "32", "--support-fill", "zero", "--probe-mask-radius", "16"]),
    "gs1_filters32": (1, ["--n-filters", "32"]),
    "gs1_filters64": (1, ["--n-filters", "64"]),
    "gs2": (2, []),
    "gs2_quadrant": (2, ["--channel-order", "quadrant"]),
    "gs2_quadrant_central": (2, ["--channel-order", "quadrant", "--merge", "central"]),
    "gs2_quadrant_2groups": (2, ["--channel-order", "quadrant", "--groups-per-position", "2"]),
}


def reference_options(a: argparse.Namespace, work: Path) -> list[str]:
    """The reference PtychoPINN's constraints as options, each trained on issue 11's data: gridsize 1 for
    --steps steps, gridsize 2 for half as many (a gridsize-2 step costs about twice as much here)."""
    train_npz, test_npz = simulate(work / "data.npz", ISSUE_DATA, a.probe_from)
    lines = [("| run | train flags | steps | patterns/s | gap closed | best val step | own amp / phase SSIM | "
              "unseen amp / phase SSIM | minutes | load |"), "|---|---|---:|---:|---:|---:|---|---|---:|---:|"]
    for name in a.runs:
        size, flags = OPTION_RUNS[name]
        out = work / name
        steps = a.steps if size == 1 else a.steps // 2
        seconds, record, own, unseen = trained(out, train_npz, test_npz, steps, "--gridsize", str(size),
                                               "--seed", str(a.seeds[0]), *flags)
        patterns = record["steps"] * BATCH * size**2
        lines.append(progress_row([name, " ".join(flags) or "(defaults)", record["steps"], f"{patterns / seconds:.0f}"],
                                  seconds, record, own, unseen))
    return [(f"Seed {a.seeds[0]}; gridsize 1 for {a.steps} steps, gridsize 2 for {a.steps // 2}; batch {BATCH} "
             "groups; every other option at its default. Scored with `infer` (a model with a support is stitched "
             "by probe intensity within it) and `evaluate`. Patterns/s: patterns seen per second of training."), "",
            *lines, "", score_constant(own, unseen)]


GS2_SAME_PATTERNS = ["--gridsize", "2", "--batch-size", str(BATCH // 4)]  # 16 patterns a step, as gridsize 1
WARM_GS2 = [*GS2_SAME_PATTERNS, "--encoder", "pattern"]


def warm_start(a: argparse.Namespace, work: Path) -> list[str]:
    """Gridsize 2 from a gridsize-1 network (TRAIN-011), issue 11's data, each seed of --seeds: gridsize 1 for
    S steps against gridsize 2 for S steps (the default group encoder, and one shared network per pattern),
    and against gridsize 1 for S/2 steps continued by S/2 steps of gridsize 2 with one shared network per
    pattern (--init-from), or of gridsize 1 (the control). Gridsize 2 takes BATCH/4 groups per step: the
    same 16 patterns per step, so equal steps are equal patterns seen and about equal time."""
    train_npz, test_npz = simulate(work / "data.npz", ISSUE_DATA, a.probe_from)
    half = a.steps // 2
    lines = [("| seed | run | steps | patterns seen | gap closed | best val step | own amp / phase SSIM | "
              "unseen amp / phase SSIM | minutes (with its start) | load |"),
             "|---:|---|---:|---:|---:|---:|---|---|---:|---:|"]
    for seed in a.seeds:
        first = work / f"s{seed}_gs1_half"
        runs = [("gridsize 1", f"s{seed}_gs1", a.steps, [], None),
                ("gridsize 2, `--encoder group`", f"s{seed}_gs2_group", a.steps, GS2_SAME_PATTERNS, None),
                ("gridsize 2, `--encoder pattern`", f"s{seed}_gs2_pattern", a.steps, WARM_GS2, None),
                (f"gridsize 1, {half} steps", first.name, half, [], None),
                (f"then gridsize 1, {half} more", f"s{seed}_gs1_then_gs1", half, [], first),
                (f"then gridsize 2 `--encoder pattern`, {half}", f"s{seed}_gs1_then_gs2", half, WARM_GS2, first)]
        for label, name, steps, flags, start in runs:
            start_flags = ["--init-from", str(start / "wts.h5.zip")] if start else []
            seconds, record, own, unseen = trained(work / name, train_npz, test_npz, steps, "--seed", str(seed),
                                                   *flags, *start_flags)
            before = history(start)["epochs"] if start else []
            total = seconds + sum(epoch["seconds"] for epoch in before)
            patterns = ((before[-1]["step"] if before else 0) + record["steps"]) * BATCH  # 16 patterns a step
            lines.append(progress_row([seed, label, record["steps"], patterns], total, record, own, unseen))
    return [(f"Gridsize 2 groups: {BATCH // 4} per step (16 patterns, as gridsize 1's {BATCH}). Patterns seen and "
             "minutes include the gridsize-1 start of a continued run. Every other option at its default "
             "(the weights of the lowest validation loss are kept)."), "", *lines, "",
            score_constant(own, unseen)]


def dose(a: argparse.Namespace, work: Path) -> list[str]:
    """Issue 23's first target: does the network's quality rise with dose? Issue 11's data at each of --doses
    (the same scan, object and seed; only the counts differ), trained for --steps with every other option at
    its default (early stopping included), scored on the region it trained on and on the unseen one."""
    rate_flags, rate_suffix = (["--lr", f"{a.lr:g}"], f"_lr{a.lr:g}") if a.lr is not None else ([], "")
    lines = [("| dose | steps run | best val step | stopped early | gap closed | own amp / phase SSIM | unseen "
              "amp / phase SSIM | minutes | load |"), "|---|---:|---:|---|---:|---|---|---:|---:|"]
    for value in a.doses:
        label = f"{value:.0e}".replace("+0", "").replace("+", "")
        # --n-images: a larger scan of a larger object (the study's dense sets: 1,560 patterns on 928 px)
        size = {"n_images": a.n_images, "object_size": a.object_size} if a.n_images else {}
        train_npz, test_npz = simulate(work / f"data_{label}.npz", issue_data(nphotons=value, **size), a.probe_from)
        out = work / (f"dose_{label}" + rate_suffix)
        seconds, record, own, unseen = trained(out, train_npz, test_npz, a.steps, "--seed", str(a.seeds[0]),
                                               *rate_flags)
        lines.append(f"| {label} | {record['steps']} | {record['best_val_step']} | {record['stopped_early']} | "
                     f"{record['epochs'][-1]['gap_closed']:.1%} | {scored_cells(seconds, record, own, unseen)}")
        print(lines[-1], flush=True)
    rate = "" if a.lr is None else f"learning rate {a.lr:g}; "
    return [(f"Seed {a.seeds[0]}; {rate}at most {a.steps} steps, every other option at its default (the weights of "
             "the lowest validation loss are kept; patience 1,000 steps). Issue 23's target: own-region "
             "amplitude SSIM at 1e5 at least 0.15 above 1e3."), "", *lines, "", score_constant(own, unseen)]


def pipeline(a: argparse.Namespace, work: Path) -> list[str]:
    train_npz, test_npz = simulate(work / "data.npz", ["--nphotons", "1e5", "--split", "0.3", "--seed", "1",
                                                       "--no-progress"], None)
    out = work / "run"
    seconds = train(out, train_npz, a.steps)
    record = history(out)
    load = record["load_average"]
    own, unseen = score(out, "own", train_npz), score(out, "unseen", test_npz)
    return [(f"`ptycho-torch simulate --out data.npz --nphotons 1e5 --split 0.3 --seed 1`, `train --data "
            f"data_train.npz --steps {a.steps} --threads 1`, `infer` + `evaluate` on data_train.npz (own region) "
            "and data_test.npz (unseen region), every other option at its default."), "",
            "| region | amplitude SSIM | phase SSIM | phase SSIM, no ramp removed | constant object |",
            "|---|---:|---:|---:|---|",
            (f"| own (trained on) | {own['amplitude']:.3f} | {own['phase']:.3f} | {own['phase_no_ramp']:.3f} | "
             f"{own['constant_amplitude']:.3f} / {own['constant_phase']:.3f} |"),
            (f"| unseen | {unseen['amplitude']:.3f} | {unseen['phase']:.3f} | {unseen['phase_no_ramp']:.3f} | "
             f"{unseen['constant_amplitude']:.3f} / {unseen['constant_phase']:.3f} |"), "",
            (f"Left the plateau at step {record['escaped_at_step']} (attempt {record['attempt']}, "
            f"{len(record['restarts'])} restarts); gap closed at the end {record['epochs'][-1]['gap_closed']:.1%}; "
            f"training took {seconds / 60:.1f} min (load average {load:.1f} at the start).")]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("what", choices=["escape", "gridsize", "options", "dose", "pipeline", "warmstart"])
    ap.add_argument("--doses", type=float, nargs="+", default=[1e3, 1e4, 1e5],
                    help="dose: mean total counts per pattern of each dataset (default 1e3 1e4 1e5)")
    ap.add_argument("--n-images", type=int, default=None,
                    help="dose: patterns of each dataset, 70%% trained on (default: issue 11's 400)")
    ap.add_argument("--object-size", type=int, default=928,
                    help="dose, with --n-images: the object's side in pixels (default 928)")
    ap.add_argument("--lr", type=float, default=None, help="dose: the learning rate (default: the trainer's)")
    ap.add_argument("--runs", nargs="+", choices=sorted(OPTION_RUNS), default=list(OPTION_RUNS),
                    help="options: the runs to train (default: all)")
    ap.add_argument("--probe-from", default=None, help="probe file (escape, gridsize); default: simulated")
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--steps", type=int, default=None,
                    help="default: 1000 (escape), 1200 (warmstart), 4000 (gridsize, pipeline)")
    ap.add_argument("--equal-steps", action="store_true",
                    help="gridsize: also train gridsize 2 for as many steps as gridsize 1 (4 times the patterns)")
    ap.add_argument("--equal-batch", action="store_true",
                    help=f"gridsize: also train gridsize 2 for as many steps as gridsize 1, {BATCH // 4} groups "
                    "per step (the same patterns per step and patterns seen)")
    ap.add_argument("--work", default=None, help="keep the runs here and reuse those already there "
                    "(default: a temporary folder)")
    ap.add_argument("--results", default=str(HERE.parent / "RESULTS.md"))
    ap.add_argument("--no-write", action="store_true")
    a = ap.parse_args()
    a.steps = a.steps or {"escape": 1000, "warmstart": 1200}.get(a.what, 4000)
    if a.steps < 4:
        ap.error(f"--steps must be >= 4 (gridsize 2 trains for steps / 4), got {a.steps}")
    probe = "simulated (the default probe)"
    if a.probe_from:
        probe = f"{Path(a.probe_from).name} (SHA256 {hashlib.sha256(Path(a.probe_from).read_bytes()).hexdigest()[:16]}...)"
    torch.set_num_threads(1)
    with tempfile.TemporaryDirectory(prefix="bench_convergence.") as tmp:
        work = Path(a.work) if a.work else Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        load = load_average()
        body = {"escape": escape, "gridsize": gridsize, "options": reference_options, "dose": dose,
                "pipeline": pipeline, "warmstart": warm_start}[a.what](a, work)
    when = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    shown = [a.what, *(["--probe-from", f"PATH/{Path(a.probe_from).name}"] if a.probe_from else []),
             "--seeds", *map(str, a.seeds), "--steps", str(a.steps),
             *(["--equal-steps"] if a.equal_steps else []),
             *(["--equal-batch"] if a.equal_batch else []),
             *(["--runs", *a.runs] if a.what == "options" else []),
             *(["--doses", *(f"{d:g}" for d in a.doses)] if a.what == "dose" else []),
             *(["--lr", f"{a.lr:g}"] if a.what == "dose" and a.lr is not None else []),
             *(["--n-images", str(a.n_images), "--object-size", str(a.object_size)]
               if a.what == "dose" and a.n_images else [])]  # no folder of this machine
    section = "\n".join([
        f"## bench_convergence {a.what} ({when})", "",
        f"- Command: `python benchmarks/bench_convergence.py {' '.join(shown)}`",
        (f"- Machine: {platform.platform()}, {os.cpu_count()} logical CPUs shared with other jobs, torch "
        f"{torch.__version__}; 1 torch thread; load average {load:.1f} at the start. Probe: {probe}."), "",
        *body, ""])
    print(section)
    if not a.no_write:
        append_section(Path(a.results), "\n" + section)  # whole sections: runs at the same time never interleave
    return 0


if __name__ == "__main__":
    sys.exit(main())
