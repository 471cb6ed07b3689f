"""The network-then-iterative hybrid against Poisson ML alone and the network alone (issue 23, item 5).

    python benchmarks/bench_hybrid.py --probe-from PROBE.npz [--doses 1e5 1e3] [--steps 2000] [--no-write]

Per dose: a dense raster scan (overlap 0.7) of a simulate.make_object under the given probe (its
probeGuess; recorded by name and SHA256), Poisson noise. A network is trained briefly on that data itself
(`ptycho-torch train --steps S --threads T`, the study's "self" arm) and reconstructs it (`ptycho-torch
infer`). Then, on the same data, scored by metrics.evaluate on the scan's coverage with the study's
alignment (least-squares scale, phase ramp, no registration):
- the network alone;
- Poisson ML from ones at 10, 30 and 100 iterations;
- the hybrid (`reconstruct --method ml --init-from` the network's recon.npz) at 10 and 30 iterations
  without a holdout, and at up to 100 with the held-out early stop (10% of the patterns, patience 10).
Appends a section to benchmarks/RESULTS.md (machine, date, threads, load average at start and end) unless
--no-write. The probe file is read only here, never by the package or its tests.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import tempfile
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import torch
from results_file import append_section

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
    folder = work / f"dose_{dose:.0e}"
    folder.mkdir(parents=True, exist_ok=True)
    data = simulate_dataset(args.n_images, nphotons=dose, overlap=0.7, seed=args.seed, N=int(probe.shape[0]),
                            probe=probe)
    path = write_npz(folder / "scan.npz", data)
    truth = data.objectGuess
    rows: list[Row] = []
    threads = ["--threads", str(args.threads)]
    train_s = run(["train", "--data", str(path), "--output-dir", str(folder / "net"), "--steps", str(args.steps),
                   "--device", "cpu", "--no-progress", *threads])
    infer_s = run(["infer", "--bundle", str(folder / "net" / "wts.h5.zip"), "--data", str(path),
                   "--output-dir", str(folder / "net"), "--device", "cpu"])
    network = folder / "net" / "recon.npz"

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
    rows.append(Row(dose, "network alone", f"{args.steps} steps", amp, phase, train_s + infer_s))
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
    return rows


def section(rows: list[Row], args: argparse.Namespace, probe_name: str, probe_sha: str, loads: tuple[float, float],
            n_patterns: int) -> str:
    now = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    lines = [
        f"\n\n## Network + ML hybrid (bench_hybrid, {now})\n",
        (f"`python benchmarks/bench_hybrid.py --probe-from {probe_name} --doses "
        f"{' '.join(f'{d:.0e}' for d in args.doses)} --steps {args.steps} --n-images {args.n_images}`; "
        f"probe {probe_name} (SHA256 {probe_sha}); {n_patterns} positions, dense raster (overlap 0.7), "
        f"seed {args.seed}. Machine: {platform.platform()}, {os.cpu_count()} logical CPUs shared with other "
        f"jobs; torch {torch.__version__}, {args.threads} thread(s); load average {loads[0]:.1f} at the start, "
        f"{loads[1]:.1f} at the end (timings are under that load: compare only within this table)."),
        ("The network: `train --steps S` on the data itself, then `infer`. ML: `reconstruct --method ml "
        "--batch-size 64`. Scored by metrics.evaluate on the scan's coverage (scale fit, ramp removed, no "
        "registration).\n"),
        "| dose | method | iterations | amp SSIM | phase SSIM | seconds | note |",
        "|---:|---|---|---:|---:|---:|---|",
    ]
    lines += [f"| {r.dose:.0e} | {r.method} | {r.iterations} | {r.amplitude_ssim:.3f} | {r.phase_ssim:.3f} | "
              f"{r.seconds:.0f} | {r.note} |" for r in rows]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--probe-from", required=True, type=Path, help="an .npz holding probeGuess")
    parser.add_argument("--doses", type=float, nargs="+", default=[1e5, 1e3])
    parser.add_argument("--steps", type=int, default=2000, help="training steps of the network")
    parser.add_argument("--n-images", type=int, default=144)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--workdir", type=Path, default=None, help="keep the runs here (default: a temp folder)")
    parser.add_argument("--results", type=Path, default=HERE / "RESULTS.md")
    parser.add_argument("--no-write", action="store_true", help="print only; do not append to RESULTS.md")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    probe = load_probe(args.probe_from)
    probe_sha = hashlib.sha256(args.probe_from.read_bytes()).hexdigest()
    load_start = os.getloadavg()[0]
    with tempfile.TemporaryDirectory() as scratch:
        work = args.workdir or Path(scratch)
        rows: list[Row] = []
        for dose in args.doses:
            rows += one_dose(dose, probe, args, work)
            print(section(rows, args, args.probe_from.name, probe_sha, (load_start, os.getloadavg()[0]),
                          args.n_images), flush=True)
    text = section(rows, args, args.probe_from.name, probe_sha, (load_start, os.getloadavg()[0]), args.n_images)
    if not args.no_write:
        append_section(args.results, text)


if __name__ == "__main__":
    main()
