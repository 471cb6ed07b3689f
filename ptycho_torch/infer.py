"""Inference: a trained bundle + a dataset -> object patches -> one stitched object (`ptycho-torch infer`).

Patches are predicted batch by batch from the memory-mapped diffraction (bf16 autocast on CUDA) and placed
on a canvas with `physics.reassemble_patches`, one batch at a time. A patch is the object window the beam
lit (model.py): it is placed where it was cut, at the nearest pixel of its scan position, as it is. Each
patch is weighted by the probe intensity sum_m |P_m|^2 (normalised to peak 1, physics.probe_weights; the
model's physics probe, masked when it has a probe mask), so the result is the probe-weighted average of the
overlapping patches: where the probe is dark a patch says little about the object, and its edges must not
dominate. The network's own gridsize > 1 merge weighs a group's patches by the same intensity (smoothed;
overlap.merge_weights). A model with a support window is stitched within it (outside it a patch holds only
its fill). With a stitching window M (`--stitch-window M`) only the central M x M of each patch counts, all
alike: the reference PtychoPINN's stitching. Before stitching, each patch is divided by the network's
flat field, the imprint of the beam its patches share, measured from the patches of the same data in a
first pass (flat_field.py; on by default, `--no-flat-field`).

The canvas is the data's objectGuess frame (origin at its pixel (0, 0)), or, without objectGuess, the
smallest frame holding every patch (physics.frame_shape). A pixel is covered when its summed weight reaches
`coverage_threshold` (in units of one probe's peak intensity: "illuminated at >= that fraction of the
peak", however dense the scan); uncovered pixels are NaN in `object`.

The result is the recon.npz record (recon_file.ReconRecord: `object`, the only complex array, `coverage`,
`weight`) plus timing, written by recon_file.save_recon. Beside it: recon_amplitude.png and recon_phase.png.
"""
from __future__ import annotations

import io
import math
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ptycho_torch import physics
from ptycho_torch.atomic_io import atomic_write_bytes
from ptycho_torch.bundle import Bundle, load_bundle
from ptycho_torch.dataset import PtychoDataset
from ptycho_torch.device import DistContext, Precision, autocast, resolve_device, resolve_precision
from ptycho_torch.errors import InferError
from ptycho_torch.flat_field import MIN_PATCHES, FlatField, FlatFieldEstimate, sample_groups
from ptycho_torch.memmap_bridge import MemmapDatasetBridge
from ptycho_torch.model import PtychoPINN
from ptycho_torch.recon_file import RECON_NAME, ReconRecord, save_recon
from ptycho_torch.region import COVERAGE_THRESHOLD, check_threshold, covered

AMPLITUDE_PNG = "recon_amplitude.png"
PHASE_PNG = "recon_phase.png"


@dataclass(frozen=True)
class Reconstruction(ReconRecord):
    """The recon.npz record (object NaN where not covered, coverage, weight) and how long it took."""

    n_patterns: int
    seconds: float
    flat_field: FlatField | None = None  # None: not asked, or too few patches (flat_field.MIN_PATCHES)

    @property
    def patterns_per_s(self) -> float:
        return self.n_patterns / self.seconds if self.seconds > 0 else math.inf


@dataclass(frozen=True)
class InferResult:
    recon_path: Path
    reconstruction: Reconstruction


def canvas_shape(bridge: MemmapDatasetBridge, n: int) -> tuple[int, int]:
    """objectGuess's (H, W) if present, else the smallest frame from pixel (0, 0) holding every patch."""
    obj = bridge.objectGuess
    if obj is not None:
        return int(obj.shape[0]), int(obj.shape[1])
    return physics.frame_shape(np.stack([bridge.xcoords, bridge.ycoords], axis=1), n)


def stitch_weights(probe: torch.Tensor, window: int = 0) -> torch.Tensor:
    """(N, N) float32: the probe intensity summed over the modes, peak 1; or, with `window` > 0, 1 in each
    patch's central window x window square and 0 outside (the reference's central-window stitching)."""
    if window:
        return physics.central_window(probe.shape[-1], window).float().to(probe.device)
    return physics.probe_weights(probe.detach().to(torch.complex64))


def model_stitch_weights(model: PtychoPINN, window: int | None) -> torch.Tensor:
    """The (N, N) stitching weights for `model`'s patches: with `window` given, stitch_weights(probe, window)
    (0: probe-weighted whole patches); by default the probe's intensity (the model's physics probe), cut to
    the model's support window when it has one: outside it a patch holds only its fill, not the network's
    word (docs/findings.md, TRAIN-008)."""
    n = model.config.N
    if window is not None and (isinstance(window, bool) or not isinstance(window, int) or not 0 <= window <= n):
        raise InferError(f"--stitch-window must be a window side from 1 to the patch's {n} pixels, or 0 for "
                         f"probe-weighted whole patches; got {window!r}")
    weights = stitch_weights(model.physics_probe(), window or 0)
    if window is None and model.config.support:
        weights = weights * physics.central_window(n, model.config.support).to(weights.device)
    return weights


class Stitcher:
    """Accumulates probe-weighted patches on a canvas: add() per batch, then result().

    canvas = sum_p w * patch_p moved to centre_p, weight = sum_p w moved likewise (physics.reassemble_patches
    with `interpolation`: bilinear for patches centred on the position, NEAREST for the model's windows, cut at
    the position's nearest pixel); the object is canvas / weight where weight >= threshold (each patch's
    weights peak at 1), NaN elsewhere.
    """

    def __init__(self, shape: tuple[int, int], weights: torch.Tensor, *,
                 interpolation: physics.Interpolation = physics.Interpolation.BILINEAR) -> None:
        self.shape = shape
        self.interpolation = interpolation
        self.weights = weights  # (N, N) real
        self.canvas = torch.zeros(shape, dtype=torch.complex64, device=weights.device)
        self.weight_sum = torch.zeros(shape, dtype=torch.float32, device=weights.device)

    def add(self, patches: torch.Tensor, centres: torch.Tensor) -> None:
        """patches (P, N, N) complex, centres (P, 2) = (x, y) in canvas pixels."""
        part, part_weight = physics.reassemble_patches(
            patches.to(torch.complex64), centres.to(torch.float32), self.shape, self.weights,
            interpolation=self.interpolation)
        self.canvas += part
        self.weight_sum += part_weight

    def result(self, coverage_threshold: float) -> ReconRecord:
        """The record: object (H, W) complex64 NaN outside coverage, coverage (H, W) bool, weight (H, W)."""
        weight = self.weight_sum.cpu().numpy()
        coverage = covered(weight, coverage_threshold)
        if not coverage.any():
            raise InferError(f"no pixel of the {self.shape} object frame is covered (is any patch inside it?); "
                             "check the scan positions or lower the coverage threshold")
        stitched = self.canvas.cpu().numpy() / np.where(coverage, weight, 1.0)
        return ReconRecord.masked(stitched, coverage, weight)


def bundle_groups(bundle: Bundle, bridge: MemmapDatasetBridge) -> PtychoDataset:
    """The dataset's patterns in the groups the bundle's network reads (one group per position, its gridsize,
    K and channel order); InferError when the patterns' size is not the bundle's or no groups can be formed."""
    data_cfg = bundle.config.data
    n = bundle.config.model.N
    if bridge.plan.pattern_shape != (n, n):
        raise InferError(f"{bridge.path}: patterns are {bridge.plan.pattern_shape} but the bundle "
                         f"{bundle.path} was trained on {n}x{n}; use data with the training pattern size")
    try:
        return PtychoDataset(bridge, gridsize=data_cfg.gridsize, K=data_cfg.K, nsamples=1,
                             seed=data_cfg.group_seed, channel_order=data_cfg.channel_order)
    except ValueError as exc:
        raise InferError(f"{bridge.path}: cannot form the bundle's groups: {exc}") from None


@torch.no_grad()
def reconstruct(bundle: Bundle, bridge: MemmapDatasetBridge, *, batch_size: int = 64,
                device: torch.device | None = None, precision: Precision = Precision.FP32,
                coverage_threshold: float = COVERAGE_THRESHOLD, window: int | None = None,
                flat_field: bool = True) -> Reconstruction:
    """Predict every group's patches and stitch them all (each group contributes its C patches); `window`
    as in model_stitch_weights. With `flat_field`, a first pass over at most flat_field.SAMPLE_GROUPS groups
    spread over the scan measures the network's imprint of the beam on its patches, and the second divides
    it out of every patch before stitching (flat_field.py); `seconds` counts both passes."""
    if batch_size < 1:
        raise InferError(f"--batch-size must be >= 1, got {batch_size}")
    check_threshold(coverage_threshold, "--coverage-threshold")
    n = bundle.config.model.N
    dataset = bundle_groups(bundle, bridge)
    device = torch.device("cpu") if device is None else device
    model = bundle.model.to(device).eval()
    if device.type == "cpu":
        model.net.to(memory_format=torch.channels_last)  # faster oneDNN convolutions
    weights = model_stitch_weights(model, window)
    stitcher = Stitcher(canvas_shape(bridge, n), weights.to(device),
                        interpolation=physics.Interpolation.NEAREST)
    started = time.perf_counter()
    field = None
    if flat_field:
        estimate = FlatFieldEstimate(weights)
        for patches, _ in predicted_patches(model, dataset, sample_groups(len(dataset)), batch_size, device,
                                            precision):
            estimate.add(patches)
        field = estimate.result()
    correction = None if field is None else field.correction.to(device)
    for patches, positions in predicted_patches(model, dataset, np.arange(len(dataset)), batch_size, device,
                                                precision):
        stitcher.add(patches if correction is None else patches * correction, positions)
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    seconds = time.perf_counter() - started
    record = stitcher.result(coverage_threshold)
    return Reconstruction(object=record.object, coverage=record.coverage, weight=record.weight,
                          n_patterns=len(bridge), seconds=seconds, flat_field=field)


def predicted_patches(model: PtychoPINN, dataset: PtychoDataset, groups: np.ndarray, batch_size: int,
                      device: torch.device, precision: Precision) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """The predicted patches (P, N, N) complex64 of `groups`, batch by batch, and their positions (P, 2) =
    (x, y), P = B * C."""
    n = model.config.N
    for start in range(0, len(groups), batch_size):
        batch = dataset.get_batch(groups[start : start + batch_size])
        diffraction = batch["diffraction"].to(device, non_blocking=True)
        coords = batch["coords_relative"].to(device, non_blocking=True)
        positions = batch["coords_global"].to(device, non_blocking=True)
        with autocast(device, precision):
            patches = model.predict_object_patches(diffraction, coords, positions)  # (B, C, N, N) complex64
        yield patches.reshape(-1, n, n), positions.reshape(-1, 2)


def save_image(path: Path, image: np.ndarray, title: str, cmap: str) -> None:
    """One 2-D real image (NaN shown as blank) with a colour bar, as PNG, written atomically."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(5, 4.2), layout="constrained")
    ax = fig.add_subplot()
    shown = ax.imshow(np.ma.masked_invalid(image), cmap=cmap, interpolation="nearest")
    ax.set_title(title)
    fig.colorbar(shown, ax=ax, shrink=0.85)
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=100)
    atomic_write_bytes(path, buffer.getvalue())


def infer(bundle_path: str, data: str, output_dir: str, *, batch_size: int = 64, device: str = "auto",
          precision: str = "auto", coverage_threshold: float = COVERAGE_THRESHOLD,
          stitch_window: int | None = None, flat_field: bool = True) -> InferResult:
    """Load the bundle, reconstruct the dataset's object, write recon.npz and the two PNGs."""
    torch_device = resolve_device(device, DistContext())
    prec = resolve_precision(precision, torch_device)
    bundle = load_bundle(bundle_path)
    bridge = MemmapDatasetBridge(data)
    recon = reconstruct(bundle, bridge, batch_size=batch_size, device=torch_device, precision=prec,
                        coverage_threshold=coverage_threshold, window=stitch_window,
                        flat_field=flat_field)
    out = Path(output_dir)
    out.mkdir(parents=True, exist_ok=True)
    recon_path = out / RECON_NAME
    save_recon(recon_path, recon)
    save_image(out / AMPLITUDE_PNG, np.abs(recon.object), "reconstruction: amplitude", "gray")
    save_image(out / PHASE_PNG, np.angle(recon.object), "reconstruction: phase (rad)", "twilight")
    return InferResult(recon_path=recon_path, reconstruction=recon)


def infer_command(*, bundle: str, data: str, output_dir: str, **options: Any) -> int:
    """`ptycho-torch infer`: returns 0; errors raise PtychoTorchError subclasses."""
    result = infer(bundle, data, output_dir, **options)
    recon = result.reconstruction
    h, w = recon.object.shape
    print(f"reconstructed {recon.n_patterns} patterns in {recon.seconds:.2f} s "
          f"({recon.patterns_per_s:.1f} patterns/s); object {h}x{w}, "
          f"{100 * recon.coverage.mean():.1f}% covered", flush=True)
    if recon.flat_field is not None:
        print(recon.flat_field.describe(), flush=True)
    elif options.get("flat_field", True):
        print(f"no flat field: {recon.n_patterns} patterns are too few to measure one (it needs "
              f"{MIN_PATCHES} patches)", flush=True)
    print(f"wrote {result.recon_path}", flush=True)
    return 0
