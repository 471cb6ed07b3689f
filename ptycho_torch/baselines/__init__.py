"""Iterative ptychographic reconstruction baselines on the package's own forward model (physics).

    from ptycho_torch.baselines import ReconstructionConfig, reconstruct_iterative, reconstruct_from_npz
    result = reconstruct_iterative(diffraction, positions, probe, object_shape,
                                   config=ReconstructionConfig(method="ml", iterations=50))
    metrics.evaluate(result.object, truth, mask=result.coverage)
    recon_file.save_recon(path, result.recon_record())  # recon.npz, as `ptycho-torch infer` writes it

Three methods (ReconstructionConfig.method):
- "epie": mini-batch rPIE (epie.py). Each pass visits the positions in a seeded random order, in sparse
  sets of up to batch_size positions whose windows never overlap, each set updated together.
- "ml": Poisson maximum likelihood (ml.py). Each iteration takes the Poisson gradient over all patterns
  (autograd through physics, batch_size patterns at a time; damped in a short warm-up), a preconditioned
  conjugate-gradient direction and a line search on the whole objective, which therefore never rises.
- "ptychi-lsqml": pty-chi's LSQML (ptychi_lsqml.py, an optional dependency; its Gaussian amplitude noise
  model, the variance-stabilised Poisson likelihood),
  given our data, probe, positions and scale through explicit conversions; each epoch is scored with our
  model afterwards.
All run on the device ("auto": CUDA when available; ePIE and ML copy the diffraction there once when it
fits, else read it batch by batch; pty-chi holds the whole set) and use one model, physics.forward's: the
beam moves over the object's fixed pixel grid (docs/findings.md, PHYS-001). The probe is fixed to the given
one or refined (refine_probe). On the CPU a run is deterministic for a seed.
"""
from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import numpy as np
import torch
from numpy.typing import ArrayLike

from ptycho_torch import physics
from ptycho_torch.baselines.common import (
    Batches,
    PassStats,
    PatternFeed,
    Solver,
    batches,
    check_finite,
    check_problem,
    resolve,
    sparse_sets,
)
from ptycho_torch.baselines.config import Holdout, Method, ReconstructionConfig
from ptycho_torch.baselines.epie import EPIE
from ptycho_torch.baselines.holdout import HoldoutTracker, PixelHoldout, split_holdout
from ptycho_torch.baselines.ml import MaximumLikelihood
from ptycho_torch.baselines.ptychi_lsqml import PtychiLSQML
from ptycho_torch.baselines.result import HoldoutSummary, IterationRecord, IterativeResult, Progress
from ptycho_torch.baselines.start import fit_amplitude_scale, load_initial_object
from ptycho_torch.errors import BaselineError
from ptycho_torch.memmap_bridge import MemmapDatasetBridge
from ptycho_torch.region import covered

__all__ = [
    "BaselineError",
    "IterationRecord",
    "IterativeResult",
    "Method",
    "ReconstructionConfig",
    "reconstruct_from_npz",
    "reconstruct_iterative",
]


def reconstruct_iterative(
    diffraction: Any,
    positions: ArrayLike,
    probe: ArrayLike,
    object_shape: tuple[int, int],
    *,
    config: ReconstructionConfig | None = None,
    nphotons: float | None = None,
    initial_object: ArrayLike | None = None,
    fit_initial_scale: bool = False,
    progress: Progress | None = None,
) -> IterativeResult:
    """Reconstruct the object (and optionally the probe) from diffraction amplitudes.

    diffraction: (P, N, N) float amplitudes sqrt(counts), any array-like indexable by an index array (an
        np.memmap is read batch by batch, never copied whole). positions: (P, 2) (x, y) object-pixel centres.
    probe: (N, N) complex. object_shape: (H, W) of the object frame, origin at pixel (0, 0); every patch
        must lie inside it. nphotons: mean total counts per pattern, which sets the intensity scale s and so
        the object's absolute amplitude; default: measured from the data (as the trainer does).
    config: default ReconstructionConfig(). initial_object: (H, W) complex start; default ones.
    fit_initial_scale: multiply the start by the real factor that makes its predicted counts match the
        measured ones (start.fit_amplitude_scale, over the patterns updated with), e.g. for a network's
        reconstruction; recorded as result.initial_scale.
    With config.holdout_fraction > 0 a seeded share of the patterns (or, with config.holdout "pixels", of
    every pattern's detector pixels) is left out of the updates, scored after every iteration, and the best
    iterate returned (holdout.py).
    progress: called with each IterationRecord. Raises BaselineError for bad input, naming what was wrong
    and what to pass.
    """
    config = _checked(config)
    problem = check_problem(diffraction, positions, probe, object_shape, initial_object)
    device = resolve(config.device)
    feed = PatternFeed(problem.diffraction, device)
    mean_counts = feed.mean_counts() if nphotons is None else nphotons
    probe_t = torch.from_numpy(problem.probe).to(device)
    try:
        scale = physics.intensity_scale(probe_t, mean_counts)
    except physics.PhysicsError as exc:
        raise BaselineError(f"cannot set the intensity scale: {exc}") from None
    centres = torch.from_numpy(problem.positions.astype(np.float32)).to(device)
    rng = np.random.default_rng(config.seed)
    pixels = None
    if config.holdout is Holdout.PIXELS and config.holdout_fraction > 0:  # every pattern, part of its pixels
        pixels = PixelHoldout(problem.n_patterns, problem.patch_size, config.holdout_fraction, rng, device)
        updated = held_out = np.arange(problem.n_patterns)
    else:
        updated, held_out = split_holdout(problem.n_patterns, config.holdout_fraction, rng)

    def measured(index: np.ndarray, scored: bool = False) -> torch.Tensor:
        """Patterns `index` as the updates see them, or (scored) as the held-out fit does."""
        batch = feed.batch(index)
        if pixels is None:
            return batch
        hidden = pixels.held(index)
        return PixelHoldout.hide(batch, ~hidden if scored else hidden)

    def over(index: np.ndarray, scored: bool = False) -> Batches:
        def one_pass() -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
            for start in range(0, len(index), config.batch_size):
                part = index[start : start + config.batch_size]
                yield measured(part, scored), centres[torch.from_numpy(part).to(device)]
        return one_pass

    obj = torch.from_numpy(problem.initial_object).to(device)
    initial_scale = None
    if fit_initial_scale:
        initial_scale = fit_amplitude_scale(obj, probe_t, scale, over(updated))
        obj = obj * initial_scale
    solver: Solver
    if config.method is Method.PTYCHI_LSQML:
        start = replace(problem, initial_object=obj.cpu().numpy(), positions=problem.positions[updated])
        solver = PtychiLSQML(start, feed.all_patterns()[updated], scale, config, device)
    else:
        solver = (EPIE if config.method is Method.EPIE else MaximumLikelihood)(obj, probe_t, scale, config)
    history: list[IterationRecord] = []
    tracker = HoldoutTracker(over(held_out, scored=True), scale, config.patience) if len(held_out) else None
    if tracker is not None:
        tracker.update(0, solver.object, solver.probe)

    def one_pass() -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        if config.method is Method.EPIE:
            plan = sparse_sets(problem.positions[updated], problem.patch_size, config.batch_size, rng)
        else:
            plan = batches(len(updated), config.batch_size, rng)
        for part in plan:
            index = updated[part]
            yield measured(index), centres[torch.from_numpy(index).to(device)]

    for iteration in range(1, config.iterations + 1):
        stats = PassStats()
        solver.iterate(iteration, one_pass, stats)
        record = stats.record(iteration)
        check_finite(record)
        if tracker is not None:
            record = replace(record, holdout_deviance=tracker.update(iteration, solver.object, solver.probe))
        history.append(record)
        if progress is not None:
            progress(record)
        if tracker is not None and tracker.should_stop:
            break
    with torch.no_grad():
        final_object, final_probe = solver.object.detach(), solver.probe.detach()
        if tracker is not None and tracker.best is not None:
            final_object, final_probe = tracker.best
        weight = physics.illumination(final_probe, centres, problem.object_shape)
    summary = None
    if tracker is not None:
        summary = HoldoutSummary(config.holdout_fraction, len(held_out), config.patience,
                                 tracker.initial_deviance, tracker.best_iteration, tracker.best_deviance,
                                 stopped_early=len(history) < config.iterations, kind=config.holdout.value,
                                 pixels_per_pattern=0 if pixels is None else pixels.n_pixels)
    weight_np = weight.cpu().numpy().astype(np.float32)
    return IterativeResult(
        object=final_object.cpu().numpy().astype(np.complex64),
        probe=final_probe.cpu().numpy().astype(np.complex64),
        coverage=covered(weight_np, config.coverage_threshold),
        weight=weight_np,
        history=tuple(history),
        intensity_scale=scale,
        seconds=sum(r.seconds for r in history),
        n_patterns=problem.n_patterns,
        config=config,
        device=str(device),
        initial_scale=initial_scale,
        holdout=summary,
    )


def reconstruct_from_npz(
    path: str | os.PathLike[str],
    config: ReconstructionConfig | None = None,
    *,
    cache_dir: str | os.PathLike[str] | None = None,
    init_from: str | os.PathLike[str] | None = None,
    progress: Progress | None = None,
) -> IterativeResult:
    """reconstruct_iterative() on an NPZ dataset opened with MemmapDatasetBridge (diffraction memory-mapped).

    The object frame is objectGuess's shape when present, else the smallest frame from pixel (0, 0) that
    holds every patch (physics.frame_shape, the rule the input check applies); the probe starts from
    probeGuess; the scale comes from the measured mean counts. init_from: a reconstruction file in that frame
    (a network's recon.npz) to start from instead of ones, its amplitude scale fitted to the counts
    (start.py); recorded as result.initial_file and result.initial_scale.
    """
    config = _checked(config)
    bridge = MemmapDatasetBridge(path, cache_dir=cache_dir)
    positions = np.stack([bridge.xcoords, bridge.ycoords], axis=1)
    guess = bridge.objectGuess
    if guess is not None:
        shape = (int(guess.shape[0]), int(guess.shape[1]))
    else:
        shape = physics.frame_shape(positions, int(bridge.probeGuess.shape[0]))
    if init_from is None:
        return reconstruct_iterative(bridge.diffraction, positions, bridge.probeGuess, shape, config=config,
                                     progress=progress)
    start = load_initial_object(init_from, shape)
    result = reconstruct_iterative(bridge.diffraction, positions, bridge.probeGuess, shape, config=config,
                                   initial_object=start.object, fit_initial_scale=True, progress=progress)
    return replace(result, initial_file=start.file)


def _checked(config: ReconstructionConfig | None) -> ReconstructionConfig:
    """The config, ReconstructionConfig() when None; BaselineError when it is something else."""
    config = ReconstructionConfig() if config is None else config
    if not isinstance(config, ReconstructionConfig):
        raise BaselineError(f"config must be a ReconstructionConfig, got {type(config).__name__}")
    return config
