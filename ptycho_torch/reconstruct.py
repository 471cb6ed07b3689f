"""`ptycho-torch reconstruct`: an iterative method on a dataset -> recon.npz, scored like infer's.

    ptycho-torch reconstruct --method ml|epie|ptychi-lsqml --data D.npz --output-dir O [--iterations N]

Writes, in the output folder:
- recon.npz: the record `infer` writes (recon_file.ReconRecord: `object` in the data's objectGuess frame,
  NaN where not covered, `coverage`, `weight`);
- reconstruct.json: the method and every option (ReconstructionConfig), the data file, the device, the
  wall time of the iterations and the fit per iteration (mean Poisson deviance per pixel, Fourier error).
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
    ReconstructionConfig,
    reconstruct_from_npz,
)
from ptycho_torch.recon_file import RECON_NAME, save_recon

REPORT_NAME = "reconstruct.json"


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
    }


def reconstruct_command(*, method: str, data: str, output_dir: str, iterations: int = 50,
                        batch_size: int = 32, refine_probe: bool = False, seed: int = 0, device: str = "auto",
                        coverage_threshold: float | None = None, progress: bool = True) -> int:
    """`ptycho-torch reconstruct`: returns 0; bad input raises PtychoTorchError subclasses (BaselineError)."""
    options: dict[str, Any] = {"method": method, "iterations": iterations, "batch_size": batch_size,
                               "refine_probe": refine_probe, "seed": seed, "device": device}
    if coverage_threshold is not None:
        options["coverage_threshold"] = coverage_threshold
    config = ReconstructionConfig(**options)
    every = max(1, config.iterations // 10)

    def show(record: IterationRecord) -> None:
        if progress and (record.iteration % every == 0 or record.iteration == config.iterations):
            print(f"iteration {record.iteration}/{config.iterations}: deviance {record.deviance:.4g}, "
                  f"Fourier error {record.fourier_error:.4g} ({record.seconds:.2f} s)", flush=True)

    result = reconstruct_from_npz(data, config, progress=show)
    out = Path(output_dir)
    out.mkdir(parents=True, exist_ok=True)
    save_recon(out / RECON_NAME, result.recon_record())
    atomic_write_bytes(out / REPORT_NAME, json.dumps(report(result, data), indent=2, allow_nan=True).encode())
    covered = 100 * float(result.coverage.mean())
    rows, cols = result.object.shape
    print(f"{_plain(config.method)}: {result.n_patterns} patterns, {len(result.history)} iterations in "
          f"{result.seconds:.2f} s on {result.device}; object {rows}x{cols}, {covered:.1f}% covered",
          flush=True)
    print(f"wrote {out / RECON_NAME} and {out / REPORT_NAME}", flush=True)
    return 0
