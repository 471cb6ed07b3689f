"""The network-then-iterative hybrid against Poisson ML alone and the network alone (issue 23, item 5).

    python benchmarks/bench_hybrid.py --probe-from PROBE.npz [--doses 1e5 1e3] [--steps 2000] [--no-write]
    python benchmarks/bench_hybrid.py --data TEST.npz --network RECON.npz [--no-write]

Per dose: a dense raster scan (overlap 0.7) of a simulate.make_object under the given probe (its
probeGuess; recorded by name and SHA256), Poisson noise. A network is trained briefly on that data itself
(`ptycho-torch train --steps S --threads T`, the study's "self" arm) and reconstructs it (`ptycho-torch
infer`). Then, on the same data, scored by metrics.evaluate on the scan's coverage with the study's
alignment (least-squares scale, phase ramp, no registration):
- the network alone;
- Poisson ML from ones at 10, 30 and 100 iterations;
- the hybrid (`reconstruct --method ml --init-from` the network's recon.npz) at 10 and 30 iterations
  without a holdout, and at up to 100 with the held-out early stop (10% of the patterns, patience 10);
- the held-out early stop again with 10% of every pattern's detector pixels (`--holdout pixels`), from
  the network and from ones, at up to 100 and (the study's hybrid) 30 iterations.
With --data and --network (a dataset holding objectGuess and nphotons, such as a study's
datasets/<condition>/test.npz, and a network's reconstruction of it, such as the study's
runs/<condition>_gs1_self/recon.npz) nothing is simulated or trained: the rows compare on that data.
Appends a section to benchmarks/RESULTS.md (machine, date, threads, load average at start and end) unless
--no-write. The probe file is read only here, never by the package or its tests.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import tempfile
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import torch
from results_file import machine, publish

from ptycho_torch.cli import main as cli
from ptycho_torch.metrics import AlignOptions, evaluate
from ptycho_torch.recon_file import load_recon
from ptycho_torch.simulate import simulate_dataset, write_npz

HERE = Path(__file__).resolve().parent


@dataclass(frozen=True)
class Row:
    dose: float
    method: str
    iterations: str
    amplitude_ssim: float
    phase_ssim: float
    seconds: float
    note: str = ""


def load_probe(path: Path) -> np.ndarray:
    with np.load(path, allow_pickle=False) as npz:
        return np.asarray(npz["probeGuess"], dtype=np.complex64)


def run(argv: list[str]) -> float:
    started = time.perf_counter()
    code = cli(argv)
    if code != 0:
        raise SystemExit(f"`ptycho-torch {' '.join(argv)}` exited {code}")
    return time.perf_counter() - started


def score(recon: Path, truth: np.ndarray, region: np.ndarray) -> tuple[float, float]:
    obj, _ = load_recon(recon)
    m = evaluate(obj, truth, mask=region, options=AlignOptions(fit_scale=True, remove_ramp=True, register=False))
    return m.amplitude.ssim, m.phase.ssim


def one_dose(dose: float, probe: np.ndarray, args: argparse.Namespace, work: Path) -> list[Row]:
    """Simulate a scan at `dose`, train and run the network on it, then compare()."""
    folder = work / f"dose_{dose:.0e}"
    folder.mkdir(parents=True, exist_ok=True)
    data = simulate_dataset(args.n_images, nphotons=dose, overlap=0.7, seed=args.seed, N=int(probe.shape[0]),
                            probe=probe)
    path = write_npz(folder / "scan.npz", data)
    threads = ["--threads", str(args.threads)]
    train_s = run(["train", "--data", str(path), "--output-dir", str(folder / "net"), "--steps", str(args.steps),
                   "--device", "cpu", "--no-progress", *threads])
    infer_s = run(["infer", "--bundle", str(folder / "net" / "wts.h5.zip"), "--data", str(path),
                   "--output-dir", str(folder / "net"), "--device", "cpu"])
    return compare(dose, path, data.objectGuess, folder / "net" / "recon.npz", f"{args.steps} steps",
                   train_s + infer_s, folder)


def compare(dose: float, path: Path, truth: np.ndarray, network: Path, trained: str, network_s: float,
            folder: Path) -> list[Row]:
    """Every row of one dose: the network's recon.npz of the data at `path`, ML, and the hybrids."""
    rows: list[Row] = []

    def reconstruct(name: str, iterations: int, *extra: str) -> tuple[Path, dict[str, object], float]:
        out = folder / name
        seconds = run(["reconstruct", "--method", "ml", "--data", str(path), "--output-dir", str(out),
                       "--iterations", str(iterations), "--batch-size", "64", "--device", "cpu",
                       "--no-progress", *extra])
        return out / "recon.npz", json.loads((out / "reconstruct.json").read_text()), seconds

    _, _, _ = reconstruct("ml_0", 0)
    with np.load(folder / "ml_0" / "recon.npz", allow_pickle=False) as npz:
        region = npz["coverage"]  # the scan's coverage, the same pixels for every method
    amp, phase = score(network, truth, region)
    rows.append(Row(dose, "network alone", trained, amp, phase, network_s))
    for iterations in (10, 30, 100):
        recon, _, seconds = reconstruct(f"ml_{iterations}", iterations)
        rows.append(Row(dose, "ML from ones", str(iterations), *score(recon, truth, region), seconds))
    for iterations in (10, 30):
        recon, report, seconds = reconstruct(f"hybrid_{iterations}", iterations, "--init-from", str(network),
                                             "--holdout-fraction", "0")
        scale = report["init"]["amplitude_scale"]  # type: ignore[index]
        rows.append(Row(dose, "network + ML", str(iterations), *score(recon, truth, region), seconds,
                        f"amplitude scale {scale:.3g}"))
    recon, report, seconds = reconstruct("hybrid_holdout", 100, "--init-from", str(network),
                                         "--holdout-fraction", "0.1", "--patience", "10")
    held = report["holdout"]
    rows.append(Row(dose, "network + ML, held-out stop", f"<= 100 (ran {report['iterations']})",
                    *score(recon, truth, region), seconds,
                    f"best held-out fit at iteration {held['best_iteration']}"))  # type: ignore[index]
    recon, report, seconds = reconstruct("ml_holdout", 100, "--holdout-fraction", "0.1", "--patience", "10")
    held = report["holdout"]
    rows.append(Row(dose, "ML from ones, held-out stop", f"<= 100 (ran {report['iterations']})",
                    *score(recon, truth, region), seconds,
                    f"best held-out fit at iteration {held['best_iteration']}"))  # type: ignore[index]
    pixels = ("--holdout-fraction", "0.1", "--patience", "10", "--holdout", "pixels")
    for start, name in ((("--init-from", str(network)), "network + ML"), ((), "ML from ones")):
        for iterations in (30, 100):
            recon, report, seconds = reconstruct(f"{name[:2]}_pixels_{iterations}", iterations, *start, *pixels)
            held = report["holdout"]
            rows.append(Row(dose, f"{name}, held-out pixels", f"<= {iterations} (ran {report['iterations']})",
                            *score(recon, truth, region), seconds,
                            f"best held-out fit at iteration {held['best_iteration']}"))  # type: ignore[index]
    return rows


def given(args: argparse.Namespace, work: Path) -> list[Row]:
    """compare() on --data with the network's --network reconstruction (nothing simulated or trained)."""
    with np.load(args.data, allow_pickle=False) as npz:
        truth, dose = np.asarray(npz["objectGuess"]), float(npz["nphotons"])
    return compare(dose, args.data, truth, args.network, f"given ({args.network.name})", 0.0, work / "given")


def section(rows: list[Row], command: str, source: str, threads: int, loads: tuple[float, float]) -> str:
    now = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    lines = [
        f"\n\n## Network + ML hybrid (bench_hybrid, {now})\n",
        (f"`{command}`; {source}. {machine(f'{threads} thread(s)', loads)} (timings are under that load: "
         "compare only within this table)."),
        ("The network: `train --steps S` on the data itself, then `infer` (or the given reconstruction). ML: "
         "`reconstruct --method ml --batch-size 64`. Scored by metrics.evaluate on the scan's coverage (scale "
         "fit, ramp removed, no registration).\n"),
        "| dose | method | iterations | amp SSIM | phase SSIM | seconds | note |",
        "|---:|---|---|---:|---:|---:|---|",
    ]
    lines += [f"| {r.dose:.0e} | {r.method} | {r.iterations} | {r.amplitude_ssim:.3f} | {r.phase_ssim:.3f} | "
              f"{r.seconds:.0f} | {r.note} |" for r in rows]
    return "\n".join(lines) + "\n"


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--probe-from", type=Path, help="an .npz holding probeGuess (simulate and train)")
    parser.add_argument("--data", type=Path, help="instead: a dataset holding objectGuess and nphotons ...")
    parser.add_argument("--network", type=Path, help="... and a network's recon.npz of it")
    parser.add_argument("--doses", type=float, nargs="+", default=[1e5, 1e3])
    parser.add_argument("--steps", type=int, default=2000, help="training steps of the network")
    parser.add_argument("--n-images", type=int, default=144)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--workdir", type=Path, default=None, help="keep the runs here (default: a temp folder)")
    parser.add_argument("--results", type=Path, default=HERE / "RESULTS.md")
    parser.add_argument("--no-write", action="store_true", help="print only; do not append to RESULTS.md")
    args = parser.parse_args()
    if (args.probe_from is None) == (args.data is None) or (args.data is None) != (args.network is None):
        parser.error("give --probe-from (simulate and train), or --data with --network (compare on them)")
    torch.set_num_threads(args.threads)
    load_start = os.getloadavg()[0]
    if args.data is not None:
        command = f"python benchmarks/bench_hybrid.py --data {args.data.name} --network {args.network.name}"
        source = (f"data {args.data.name} (SHA256 {sha256(args.data)}), network reconstruction "
                  f"{args.network.name} (SHA256 {sha256(args.network)})")
    else:
        command = (f"python benchmarks/bench_hybrid.py --probe-from {args.probe_from.name} --doses "
                   f"{' '.join(f'{d:.0e}' for d in args.doses)} --steps {args.steps} --n-images {args.n_images}")
        source = (f"probe {args.probe_from.name} (SHA256 {sha256(args.probe_from)}); {args.n_images} positions, "
                  f"dense raster (overlap 0.7), seed {args.seed}")
    with tempfile.TemporaryDirectory() as scratch:
        work = args.workdir or Path(scratch)
        rows: list[Row] = []
        if args.data is not None:
            rows = given(args, work)
        for dose in [] if args.data is not None else args.doses:
            rows += one_dose(dose, load_probe(args.probe_from), args, work)
            print(section(rows, command, source, args.threads, (load_start, os.getloadavg()[0])), flush=True)
    text = section(rows, command, source, args.threads, (load_start, os.getloadavg()[0]))
    publish(args.results, text, write=not args.no_write)


if __name__ == "__main__":
    main()
