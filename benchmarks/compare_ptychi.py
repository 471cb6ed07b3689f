"""Our Poisson ML against pty-chi's LSQML on the same data, simulated by either forward model (PHYS-001).

    python benchmarks/compare_ptychi.py [--probe-from PROBE.npz] [--doses 1e4 1e5] [--iterations 100]

A dense raster scan (overlap 0.7, so sub-pixel positions) of a simulate.make_object, the true probe fixed,
Poisson noise at each dose; the patterns come from simulate.forward_amplitude ("ours") and from pty-chi's
own forward model (baselines.ptychi_lsqml.ptychi_amplitudes, "pty-chi"). Both methods start from ones
and are scored by metrics.evaluate on their coverage, without registration (both reconstruct in the
simulation's frame), beside a constant object. Prints a markdown table with the machine's load and threads.
Needs the [ptychi] extra. One CPU thread unless --threads says otherwise.
"""
from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import numpy as np
import torch

from ptycho_torch import physics
from ptycho_torch.baselines import ReconstructionConfig, reconstruct_iterative
from ptycho_torch.baselines.ptychi_lsqml import ptychi_amplitudes
from ptycho_torch.metrics import AlignOptions, constant_baseline, evaluate
from ptycho_torch.simulate import forward_amplitude, make_object, make_probe, scan_positions


def load_probe(path: str) -> np.ndarray:
    """probeGuess of an .npz (a probe-only file included), complex64."""
    with np.load(path, allow_pickle=False) as npz:
        return np.asarray(npz["probeGuess"], dtype=np.complex64)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--probe-from", default=None, help="an .npz holding probeGuess (default: make_probe(64))")
    parser.add_argument("--doses", type=float, nargs="+", default=[1e4, 1e5])
    parser.add_argument("--iterations", type=int, default=100)
    parser.add_argument("--n-images", type=int, default=49)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    probe = make_probe(64) if args.probe_from is None else load_probe(args.probe_from)
    n = int(probe.shape[0])
    x, y, shape = scan_positions(args.n_images, N=n, overlap=0.7)
    truth = make_object(shape, seed=1)
    positions = np.stack([x, y], axis=1)
    clean = {"ours": forward_amplitude(truth, probe, x, y), "pty-chi": ptychi_amplitudes(truth, probe, positions)}
    probe_name = "make_probe(64)" if args.probe_from is None else Path(args.probe_from).name
    print(f"probe {probe_name}, {len(x)} positions of {n} px (overlap 0.7), object {shape}, "
          f"{args.iterations} iterations, batch {args.batch_size}, {args.threads} thread(s), "
          f"load average {os.getloadavg()[0]:.1f} at the start\n")
    print("| data from | dose | method | amp SSIM | phase SSIM | seconds |")
    print("|---|---:|---|---:|---:|---:|")
    for simulator, amplitudes in clean.items():
        for dose in args.doses:
            scale = physics.photon_scale(amplitudes, dose)
            noisy = physics.poisson_amplitudes(amplitudes, scale, np.random.default_rng(2))
            region = None
            for method in ("ml", "ptychi-lsqml"):
                config = ReconstructionConfig(method=method, iterations=args.iterations,
                                              batch_size=args.batch_size, device="cpu")
                started = time.perf_counter()
                result = reconstruct_iterative(noisy, positions, probe, shape, config=config)
                seconds = time.perf_counter() - started
                region = result.coverage
                m = evaluate(result.object, truth, mask=region, options=AlignOptions(register=False))
                print(f"| {simulator} | {dose:.0e} | {method} | {m.amplitude.ssim:.3f} | "
                      f"{m.phase.ssim:.3f} | {seconds:.0f} |", flush=True)
            flat = constant_baseline(truth, region)
            print(f"| {simulator} | {dose:.0e} | constant | {flat.amplitude.ssim:.3f} | "
                  f"{flat.phase.ssim:.3f} | - |", flush=True)
    print(f"\nload average {os.getloadavg()[0]:.1f} at the end")


if __name__ == "__main__":
    main()
