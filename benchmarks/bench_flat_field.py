"""A study's networks stitched with and without the flat field, scored as the study scores them (issue 23).

    python benchmarks/bench_flat_field.py --study STUDY_DIR [--config docs/studies/dose_overlap/cpu.yaml]
                                          [--conditions 1e5_dense ...] [--counts 10 30 100] [--no-write]

`infer` divides each patch by the network's flat field, the beam's imprint that all its patches share,
measured from the patches of the scan being reconstructed (ptycho_torch/flat_field.py). Per trained network
of a finished study this reconstructs the study's test region three ways: the patches as they are, with the
flat field of all the scan's patches (infer's default), and with one measured from only --counts randomly
drawn patches (how many it needs); for unseen-arm networks also with the flat field measured on the
training region's patches (whether the data at hand gives the network's imprint). Each is scored with the
study's evaluation on the study's region. It also prints how far from flat the true patches' average is
(truth-side: what the object alone would give). The study folder is only read. Appends a section to
benchmarks/RESULTS.md (machine, date, threads, load average) unless --no-write.
"""
from __future__ import annotations

import argparse
import os
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import torch
from results_file import machine, publish

from ptycho_torch import metrics, physics
from ptycho_torch.bundle import load_bundle
from ptycho_torch.device import Precision
from ptycho_torch.flat_field import FlatField, FlatFieldEstimate
from ptycho_torch.infer import Stitcher, bundle_groups, canvas_shape, model_stitch_weights, predicted_patches
from ptycho_torch.memmap_bridge import MemmapDatasetBridge
from ptycho_torch.region import COVERAGE_THRESHOLD
from ptycho_torch.study.config import conditions, networks
from ptycho_torch.study.load import load_config

HERE = Path(__file__).resolve().parent


def predicted(bundle, bridge: MemmapDatasetBridge) -> tuple[torch.Tensor, torch.Tensor]:
    """All the scan's predicted patches (P, N, N) and positions (P, 2), as infer predicts them on CPU."""
    dataset = bundle_groups(bundle, bridge)
    parts = list(predicted_patches(bundle.model.eval(), dataset, np.arange(len(dataset)), 64, torch.device("cpu"),
                              Precision.FP32))
    return torch.cat([p for p, _ in parts]), torch.cat([q for _, q in parts])


@dataclass(frozen=True)
class Scan:
    """One network's patches of the test region, stitched and scored as the study does."""

    patches: torch.Tensor
    positions: torch.Tensor
    weights: torch.Tensor
    shape: tuple[int, int]
    truth: np.ndarray
    region: np.ndarray
    options: metrics.AlignOptions

    def score(self, correction: torch.Tensor | None) -> str:
        stitcher = Stitcher(self.shape, self.weights, interpolation=physics.Interpolation.NEAREST)
        stitcher.add(self.patches if correction is None else self.patches * correction, self.positions)
        found = metrics.evaluate(stitcher.result(COVERAGE_THRESHOLD).object, self.truth, mask=self.region,
                                 options=self.options)
        return f"{found.amplitude.ssim:.3f} / {found.phase.ssim:.3f}"


def field_of(patches: torch.Tensor, weights: torch.Tensor) -> FlatField:
    estimate = FlatFieldEstimate(weights)
    estimate.add(patches)
    field = estimate.result()
    assert field is not None, f"{len(patches)} patches are too few for a flat field"
    return field


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--study", type=Path, required=True, help="a finished study's output folder")
    parser.add_argument("--config", type=Path, default=HERE.parent / "docs/studies/dose_overlap/cpu.yaml")
    parser.add_argument("--conditions", nargs="*", default=None, help="e.g. 1e5_dense (default: all)")
    parser.add_argument("--counts", nargs="*", type=int, default=[10, 30, 100],
                        help="flat fields from this many randomly drawn patches too (default 10 30 100)")
    parser.add_argument("--seed", type=int, default=0, help="which patches --counts draws")
    parser.add_argument("--results", type=Path, default=HERE / "RESULTS.md")
    parser.add_argument("--no-write", action="store_true", help="print only; do not append to RESULTS.md")
    args = parser.parse_args()
    config = load_config(args.config)
    torch.set_num_threads(1)
    chosen = [c for c in conditions(config) if not args.conditions or c.name in args.conditions]
    missing = [str(p) for c in chosen for net in networks(config)
               if not (p := args.study / c.run_dir(net.folder) / "wts.h5.zip").is_file()]
    if missing:
        parser.error(f"the study in {args.study} has no trained network at {', '.join(missing)}; run it first")
    options = config.evaluation.align_options
    load_start, started = os.getloadavg()[0], time.perf_counter()
    lines = []
    for c in chosen:
        data_dir = args.study / c.data_dir
        test = MemmapDatasetBridge(data_dir / "test.npz")
        truth = test.objectGuess
        with np.load(data_dir / "region.npz", allow_pickle=False) as npz:
            region = npz["region"]
        for net in networks(config):
            bundle = load_bundle(args.study / c.run_dir(net.folder) / "wts.h5.zip")
            n = bundle.config.model.N
            weights = model_stitch_weights(bundle.model, None)
            patches, positions = predicted(bundle, test)
            true_patches = physics.extract_patches(torch.from_numpy(np.array(truth, dtype=np.complex64)), positions.float(), n,
                                                   interpolation=physics.Interpolation.NEAREST)
            scan = Scan(patches, positions, weights, canvas_shape(test, n), truth, region, options)
            score = scan.score
            whole = field_of(patches, weights)
            rng = np.random.default_rng(args.seed)
            drawn = [score(field_of(patches[torch.as_tensor(rng.choice(len(patches), k, replace=False))],
                                    weights).correction) if k <= len(patches) else "" for k in args.counts]
            trained = ""
            if net.arm == "unseen":
                trained = score(field_of(predicted(bundle, MemmapDatasetBridge(data_dir / "train.npz"))[0],
                                         weights).correction)
            lines.append(f"| {c.name} | {net.folder} | {100 * whole.amplitude_spread:.1f}% / "
                         f"{whole.phase_spread_rad:.3f} | {100 * field_of(true_patches, weights).amplitude_spread:.1f}% "
                         f"| {score(None)} | {score(whole.correction)} | {' | '.join(drawn)} | {trained} |")
            print(lines[-1], flush=True)
    now = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    text = "\n".join([
        f"\n\n## The network's flat field (bench_flat_field, {now})\n",
        (f"`python benchmarks/bench_flat_field.py --study {args.study.name} --config {args.config.name}"
         f"{' --conditions ' + ' '.join(args.conditions) if args.conditions else ''}"
         f" --counts {' '.join(map(str, args.counts))}`. {machine('1 thread', (load_start, os.getloadavg()[0]))}; "
         f"{time.perf_counter() - started:.0f} s. "
         "Spread: the probe-weighted relative standard deviation of the average patch amplitude, and for the "
         "network the rms of its average phase (rad); the truth's: of the true patches at the same positions. "
         "SSIM amplitude / phase on the study's region, scored as its table is.\n"),
        "| condition | network | network's spread | truth's spread | as is | flat field (all patches) | "
        + " | ".join(f"from {k} patches" for k in args.counts) + " | from the training region's |",
        "|---|---|---|---|---|---|" + "---|" * len(args.counts) + "---|",
        *lines,
    ]) + "\n"
    publish(args.results, text, write=not args.no_write)


if __name__ == "__main__":
    main()
