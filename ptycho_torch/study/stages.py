"""What each unit of a study does, one function per stage; run.py lays them out as units.

datasets: one simulated scan per condition, split into train.npz and test.npz, with region.npz (the
scored pixels). train / infer: the network per gridsize and arm, trained on the train region (unseen) or on
the test data itself (self), reconstructing the test region. baseline: each iterative reconstruction of the
test region from its own data. hybrid: the same, started from a network's reconstruction. evaluate:
metrics.evaluate of each reconstruction, and of a constant object, on the region. Every file is written
atomically; timings go to a small JSON beside each result.
"""
from __future__ import annotations

import hashlib
import io
import json
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ptycho_torch import metrics
from ptycho_torch.atomic_io import atomic_write_bytes
from ptycho_torch.baselines import IterationRecord, ReconstructionConfig, reconstruct_iterative
from ptycho_torch.baselines.start import load_initial_object
from ptycho_torch.bundle import load_bundle
from ptycho_torch.device import DistContext, resolve_device, resolve_precision
from ptycho_torch.errors import StudyError
from ptycho_torch.infer import reconstruct as infer_reconstruct
from ptycho_torch.memmap_bridge import MemmapDatasetBridge
from ptycho_torch.physics import illumination
from ptycho_torch.recon_file import load_recon, save_recon
from ptycho_torch.region import covered
from ptycho_torch.simulate import SimulatedData, forward_amplitude, write_npz
from ptycho_torch.study.config import Condition, EvaluationSpec, StudyConfig, plain
from ptycho_torch.study.sources import Sources
from ptycho_torch.study.split import scan_split
from ptycho_torch.train.checkpoint import CHECKPOINT_NAME
from ptycho_torch.train.loop import train

INFER_FLAT_FIELD = True  # infer divides out the network's flat field (flat_field.py, TRAIN-014)


def write_json(path: Path, data: Mapping[str, Any]) -> None:
    atomic_write_bytes(path, json.dumps(data, indent=2, allow_nan=True).encode())


def _write_npz(path: Path, **arrays: np.ndarray) -> None:
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    atomic_write_bytes(path, buffer.getvalue())


def _noise_seed(seed: int, condition: Condition) -> int:
    """A seed per condition, stable across platforms and Python versions."""
    return int.from_bytes(hashlib.sha256(f"{seed}/{condition.name}".encode()).digest()[:4], "little")


def make_datasets(config: StudyConfig, sources: Sources, condition: Condition, folder: Path) -> None:
    """train.npz and test.npz (the two regions of one scan of the object) and region.npz (`region`, (S, S)
    bool: where the test positions' summed probe intensity, peak 1, reaches COVERAGE_THRESHOLD)."""
    split = scan_split(config.data, condition.overlap, config.seeds.data)
    keep = split.train | split.test  # the guard band is never simulated
    x, y = split.xcoords[keep], split.ycoords[keep]
    diffraction = forward_amplitude(sources.object, sources.probe, x, y, nphotons=condition.dose,
                                    seed=_noise_seed(config.seeds.data, condition))
    scan = SimulatedData(diffraction, x, y, sources.probe, sources.object,
                         np.flatnonzero(keep).astype(np.int64), condition.dose)
    folder.mkdir(parents=True, exist_ok=True)
    write_npz(folder / "train.npz", scan.subset(split.train[keep]))
    test = scan.subset(split.test[keep])
    write_npz(folder / "test.npz", test)
    centres = torch.from_numpy(np.stack([test.xcoords, test.ycoords], axis=1).astype(np.float32))
    weight = illumination(torch.from_numpy(sources.probe), centres, sources.object.shape)
    _write_npz(folder / "region.npz", region=covered(weight.numpy()))


def train_network(config: StudyConfig, data: Path, run_dir: Path, gridsize: int, resume: bool, *,
                  start: Path | None = None) -> None:
    """The trainer's outputs in run_dir plus train.json (wall seconds, epochs, steps, restarts, device,
    patterns); data: the condition's train.npz (arm unseen) or test.npz (arm self). start: the run folder of
    the network whose weights this one starts from (continue_from); train.json then names it and its own
    training seconds (`started_from`, `start_seconds`), so that a reader can add the two."""
    run_dir.mkdir(parents=True, exist_ok=True)
    settings = replace(config.train_for(gridsize), data=str(data), output_dir=str(run_dir),
                       seed=config.seeds.train, gridsize=gridsize,
                       init_from=None if start is None else str(start / "wts.h5.zip"))
    start_seconds = None if start is None else json.loads((start / "train.json").read_text())["seconds"]
    resume = resume and (run_dir / CHECKPOINT_NAME).is_file()
    started = time.perf_counter()
    result = train(settings, resume=resume, progress=False)
    earlier = sum(r.seconds for r in result.history[: result.resumed_from_epoch])  # before the interruption
    last = result.history[-1]
    write_json(run_dir / "train.json", {
        "seconds": time.perf_counter() - started + earlier, "epochs": len(result.history),
        "resumed_from_epoch": result.resumed_from_epoch, "device": result.device,
        "n_patterns": len(MemmapDatasetBridge(data)),
        "patterns_per_s": float(np.mean([r.patterns_per_s for r in result.history])),
        "final_train_loss": last.train_loss, "final_val_loss": last.val_loss, "steps": last.step,
        "restarts": len(result.restarts), "escaped_at_step": result.escaped_at_step,
        "final_gap_closed": last.gap_closed, "threads": result.threads,
        "started_from": None if start is None else start.name, "start_seconds": start_seconds})


def infer_network(config: StudyConfig, data_dir: Path, run_dir: Path) -> None:
    """recon.npz (object NaN outside coverage, coverage) of the test region, and infer.json (timing, the
    flat field divided out when INFER_FLAT_FIELD)."""
    device = resolve_device(config.train.device, DistContext())
    precision = resolve_precision(config.train.precision, device)
    recon = infer_reconstruct(load_bundle(run_dir / "wts.h5.zip"), MemmapDatasetBridge(data_dir / "test.npz"),
                              device=device, precision=precision, flat_field=INFER_FLAT_FIELD)
    save_recon(run_dir / "recon.npz", recon)
    write_json(run_dir / "infer.json", {"seconds": recon.seconds, "patterns_per_s": recon.patterns_per_s,
                                        "n_patterns": recon.n_patterns, "device": str(device),
                                        "flat_field": None if recon.flat_field is None
                                        else recon.flat_field.summary()})


def run_baseline(config: StudyConfig, baseline: ReconstructionConfig, data_dir: Path, run_dir: Path,
                 log: Callable[[str], None], *, init_from: Path | None = None) -> None:
    """One iterative baseline on the test region's data: recon.npz and baseline.json (timing, fit). With
    init_from (the hybrid arm: a network's recon.npz) it starts from that reconstruction, its amplitude
    scale fitted (baselines.start); baseline.json then also records the file (name, SHA256), the scale and
    the held-out fit per iteration when the config holds patterns out."""
    bridge = MemmapDatasetBridge(data_dir / "test.npz")
    settings = replace(baseline, seed=config.seeds.baseline)
    every = max(1, settings.iterations // 5)

    def progress(record: IterationRecord) -> None:
        if record.iteration % every == 0:
            log(f"    iteration {record.iteration}/{settings.iterations}: deviance {record.deviance:.4g}")

    shape = bridge.objectGuess.shape  # type: ignore[union-attr]  # the study's datasets always carry it
    frame = (int(shape[0]), int(shape[1]))
    start = None if init_from is None else load_initial_object(init_from, frame)
    result = reconstruct_iterative(bridge.diffraction, np.stack([bridge.xcoords, bridge.ycoords], axis=1),
                                   bridge.probeGuess, frame, config=settings,
                                   initial_object=None if start is None else start.object,
                                   fit_initial_scale=start is not None, progress=progress)
    run_dir.mkdir(parents=True, exist_ok=True)
    save_recon(run_dir / "recon.npz", result.recon_record())
    write_json(run_dir / "baseline.json", {
        "method": plain(settings.method), "seconds": result.seconds, "iterations": len(result.history),
        "final_deviance": result.losses[-1], "n_patterns": result.n_patterns,
        "pattern_updates_per_s": result.patterns_per_second, "device": result.device,
        "init": None if start is None else {**asdict(start.file), "amplitude_scale": result.initial_scale},
        "holdout": None if result.holdout is None else asdict(result.holdout),
        "holdout_deviance": [r.holdout_deviance for r in result.history]})


def evaluate_unit(settings: EvaluationSpec, data_dir: Path, run_dir: Path, *, with_recon: bool) -> None:
    """metrics.json: metrics.evaluate of run_dir/recon.npz (or of a constant object) on the region."""
    truth = MemmapDatasetBridge(data_dir / "test.npz").objectGuess
    with np.load(data_dir / "region.npz", allow_pickle=False) as npz:
        region = npz["region"]
    try:
        if with_recon:
            scores = metrics.evaluate(load_recon(run_dir / "recon.npz")[0], truth, mask=region,
                                      options=settings.align_options)
        else:
            scores = metrics.constant_baseline(truth, region, options=settings.align_options)
    except metrics.MetricsError as exc:
        raise StudyError(f"cannot score {run_dir.name}: {exc}") from None
    run_dir.mkdir(parents=True, exist_ok=True)
    write_json(run_dir / "metrics.json", {**scores.to_dict(), "region_px": int(region.sum())})
