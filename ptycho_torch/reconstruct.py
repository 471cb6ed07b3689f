"""`ptycho-torch reconstruct`: an iterative method on a dataset -> recon.npz, scored like infer's.

    ptycho-torch reconstruct --method ml|epie|ptychi-lsqml --data D.npz --output-dir O [--iterations N]
        [--init-from RECON.npz] [--holdout-fraction F] [--holdout patterns|pixels] [--patience K]

Writes, in the output folder:
- recon.npz: the record `infer` writes (recon_file.ReconRecord: `object` in the data's objectGuess frame,
  NaN where not covered, `coverage`, `weight`);
- reconstruct.json: the method and every option (ReconstructionConfig), the data file, the device, the
  wall time of the iterations and the fit per iteration (mean Poisson deviance per pixel, Fourier error,
  and with a holdout the held-out patterns' deviance); with --init-from, `init`: the file's name (never its
  folder), SHA256, covered/filled pixels and the fitted amplitude scale; with a holdout, `holdout`: its
  size, the start's held-out fit, the iterate kept and whether the run stopped early.
--init-from starts from a reconstruction file (a network's recon.npz for this dataset) instead of ones
(baselines.start: uncovered pixels filled, amplitude scale fitted to the measured counts). --holdout-fraction
keeps that share of the patterns out of the updates and returns the iterate that fits them best, stopping
after --patience iterations without improvement (baselines.holdout); unset, it is INIT_HOLDOUT_FRACTION
with --init-from and 0 without. --holdout pixels (ML only) holds out that share of every pattern's
detector pixels instead of whole patterns (docs/findings.md, BASE-005).
The data's probeGuess, positions and measured mean counts set the probe, the scan and the intensity
scale for every method alike (baselines.reconstruct_from_npz).
"""
from __future__ import annotations

import json
from dataclasses import asdict
from enum import Enum
from pathlib import Path
from typing import Any

from ptycho_torch.atomic_io import atomic_write_bytes
from ptycho_torch.baselines import (
    IterationRecord,
    IterativeResult,
    Method,
    ReconstructionConfig,
    reconstruct_from_npz,
)
from ptycho_torch.errors import BaselineError
from ptycho_torch.recon_file import RECON_NAME, save_recon

REPORT_NAME = "reconstruct.json"
INIT_HOLDOUT_FRACTION = 0.1  # the default holdout with --init-from (benchmarks/bench_hybrid.py)


def _plain(value: Any) -> Any:
    return value.value if isinstance(value, Enum) else value


def report(result: IterativeResult, data: str) -> dict[str, Any]:
    """What reconstruct.json holds (see the module docstring)."""
    return {
        "method": _plain(result.config.method),
        "config": {k: _plain(v) for k, v in asdict(result.config).items()},
        "data": data,
        "device": result.device,
        "n_patterns": result.n_patterns,
        "iterations": len(result.history),
        "seconds": result.seconds,
        "pattern_updates_per_s": result.patterns_per_second if result.history else 0.0,
        "intensity_scale": result.intensity_scale,
        "history": [asdict(r) for r in result.history],
        "init": None if result.initial_file is None else {
            **asdict(result.initial_file), "amplitude_scale": result.initial_scale},
        "holdout": None if result.holdout is None else asdict(result.holdout),
    }


def reconstruct_command(*, method: str, data: str, output_dir: str, iterations: int = 50,
                        batch_size: int = 32, refine_probe: bool = False, seed: int = 0, device: str = "auto",
                        coverage_threshold: float | None = None, init_from: str | None = None,
                        holdout_fraction: float | None = None, patience: int = 10, holdout: str = "patterns",
                        ml_warmup: int | None = None, progress: bool = True) -> int:
    """`ptycho-torch reconstruct`: returns 0; bad input raises PtychoTorchError subclasses (BaselineError).
    holdout_fraction None: INIT_HOLDOUT_FRACTION with init_from, else 0. ml_warmup None: the config's default;
    given with another method than ml, an error (only ML damps its gradient)."""
    if ml_warmup is not None and method != Method.ML:
        raise BaselineError(f"--ml-warmup applies to --method ml only ({method} does not damp its gradient); "
                            "drop it, or use --method ml")
    if holdout_fraction is None:
        holdout_fraction = INIT_HOLDOUT_FRACTION if init_from is not None else 0.0
    options: dict[str, Any] = {"method": method, "iterations": iterations, "batch_size": batch_size,
                               "refine_probe": refine_probe, "seed": seed, "device": device,
                               "holdout_fraction": holdout_fraction, "patience": patience, "holdout": holdout}
    if coverage_threshold is not None:
        options["coverage_threshold"] = coverage_threshold
    if ml_warmup is not None:
        options["ml_warmup"] = ml_warmup
    config = ReconstructionConfig(**options)
    every = max(1, config.iterations // 10)

    def show(record: IterationRecord) -> None:
        if progress and (record.iteration % every == 0 or record.iteration == config.iterations):
            held = "" if record.holdout_deviance is None else f", held-out {record.holdout_deviance:.4g}"
            print(f"iteration {record.iteration}/{config.iterations}: deviance {record.deviance:.4g}, "
                  f"Fourier error {record.fourier_error:.4g}{held} ({record.seconds:.2f} s)", flush=True)

    result = reconstruct_from_npz(data, config, init_from=init_from, progress=show)
    out = Path(output_dir)
    out.mkdir(parents=True, exist_ok=True)
    save_recon(out / RECON_NAME, result.recon_record())
    atomic_write_bytes(out / REPORT_NAME, json.dumps(report(result, data), indent=2, allow_nan=True).encode())
    covered = 100 * float(result.coverage.mean())
    rows, cols = result.object.shape
    print(f"{_plain(config.method)}: {result.n_patterns} patterns, {len(result.history)} iterations in "
          f"{result.seconds:.2f} s on {result.device}; object {rows}x{cols}, {covered:.1f}% covered",
          flush=True)
    if result.initial_file is not None:
        print(f"started from {result.initial_file.name} x {result.initial_scale:.4g} (amplitude scale fitted to "
              f"the counts)", flush=True)
    if result.holdout is not None:
        h = result.holdout
        print(f"held out {h.n_patterns} patterns: best fit at iteration {h.best_iteration} (deviance "
              f"{h.best_deviance:.4g}; start {h.initial_deviance:.4g})"
              f"{', stopped early' if h.stopped_early else ''}", flush=True)
    print(f"wrote {out / RECON_NAME} and {out / REPORT_NAME}", flush=True)
    return 0
