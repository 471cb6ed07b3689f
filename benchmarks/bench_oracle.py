"""The ceiling of the network's physics: the fraction of the flat -> truth loss gap that the true object closes
when it is run through the model's own extract, merge and forward model (docs/findings.md, TRAIN-006).

    PYTHONPATH=$PWD python benchmarks/bench_oracle.py [--images 400] [--threads 1]

For each dose and gridsize it prints gap_closed = (L_flat - L_oracle) / (L_flat - L_sim): L_sim the loss of
the simulator's own noiseless rates, L_flat a flat object with each pattern's brightness fitted
(train/progress.py), L_oracle the truth through a forward path with one global scale fitted. Paths:
  model      the model's physics (windows at the nearest pixel, merged at whole-pixel offsets, the probe moved
             by the sub-pixel remainder; model.extract / constrain / diffraction);
  nearest    the forward path before TRAIN-006: windows at the nearest pixel, merged at the groups'
             coords_relative, the probe unmoved;
  beam-frame the same, with the patch cut centred on the position (bilinear), as inference placed it.
Deterministic (seeded simulation, no training); timings are not measured.
"""
from __future__ import annotations

import argparse

import numpy as np
import torch

from ptycho_torch import physics
from ptycho_torch.grouping import neighbour_groups
from ptycho_torch.model import ModelConfig, PtychoPINN
from ptycho_torch.simulate import forward_amplitude, simulate_dataset


def _fitted_loss(model: PtychoPINN, amplitude: torch.Tensor, measured: torch.Tensor) -> float:
    rates = (amplitude.double() * float(model.intensity_scale)).square().sum()
    c = float((measured.double().square().sum() / rates).sqrt())
    return float(model.loss_of(amplitude * c, measured))


def _path(model: PtychoPINN, obj: torch.Tensor, positions: torch.Tensor, kind: str) -> torch.Tensor:
    if kind == "model":
        return model.diffraction(model.constrain(model.extract(obj, positions), positions), positions)
    b, c, n = positions.shape[0], positions.shape[1], model.config.N
    method = physics.Interpolation.NEAREST if kind == "nearest" else physics.Interpolation.BILINEAR
    patches = physics.extract_patches(obj, positions.reshape(-1, 2), n, interpolation=method).reshape(b, c, n, n)
    merged = model._merge(patches, positions - positions.mean(dim=1, keepdim=True))
    return model.diffraction(merged, None)


@torch.no_grad()
def gaps(images: int, dose: float, gridsize: int, seed: int) -> dict[str, float]:
    data = simulate_dataset(images, nphotons=dose, overlap=0.7, seed=seed, N=64)
    probe = torch.from_numpy(data.probeGuess)
    counts = float(np.square(data.diffraction, dtype=np.float64).sum(axis=(-2, -1)).mean())
    model = PtychoPINN(ModelConfig(N=64, gridsize=gridsize, n_filters=4, depth=2), probe,
                       physics.intensity_scale(probe, counts))
    groups = neighbour_groups(data.xcoords, data.ycoords, gridsize=gridsize, K=7, seed=0)
    positions = torch.from_numpy(np.stack([data.xcoords[groups], data.ycoords[groups]], -1).astype(np.float32))
    measured = torch.from_numpy(data.diffraction[groups])
    noiseless = forward_amplitude(data.objectGuess, data.probeGuess, data.xcoords, data.ycoords)
    truth = torch.from_numpy(noiseless[groups]) * (physics.photon_scale(noiseless, dose) / float(model.intensity_scale))
    unit = physics.diffraction_amplitude(torch.ones(64, 64, dtype=torch.complex64), model.probe)
    brightness = (measured.double().square().sum(dim=(-2, -1)) /
                  (unit.double() * float(model.intensity_scale)).square().sum()).sqrt()
    flat = float(model.loss_of(unit * brightness.float()[..., None, None], measured))
    best = float(model.loss_of(truth, measured))
    obj = torch.from_numpy(data.objectGuess)
    return {kind: (flat - _fitted_loss(model, _path(model, obj, positions, kind), measured)) / (flat - best)
            for kind in ("model", "nearest", "beam-frame")}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=int, default=400)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--threads", type=int, default=1)
    a = parser.parse_args()
    torch.set_num_threads(a.threads)
    print("| dose | gridsize | model | nearest (before) | beam-frame (before) |\n|---:|---:|---:|---:|---:|")
    for dose in (1e3, 1e4, 1e5):
        for gridsize in (1, 2):
            g = gaps(a.images, dose, gridsize, a.seed)
            print(f"| {dose:.0e} | {gridsize} | {g['model']:.1%} | {g['nearest']:.1%} | {g['beam-frame']:.1%} |",
                  flush=True)


if __name__ == "__main__":
    main()
