"""Oracle tests of the network's forward path: the true object, run through the model's own extract, merge
and forward model, must explain data from the simulator as well as the simulator's own physics does.

The model's physics is fed the truth instead of the network's output. The fraction of the flat -> truth gap
it closes is (L_flat - L_oracle) / (L_flat - L_sim), with L_sim the loss of the simulator's own noiseless
rates and L_flat that of a flat object with each pattern's brightness fitted (train/progress.py). The
truth's absolute amplitude cannot be told from the probe's power (the model's scale assumes |O| ~ 1), so
the oracle's one global scale is fitted too (closed form for Poisson: c^2 = sum k / sum rate).
"""
from __future__ import annotations

import numpy as np
import pytest
import torch

from ptycho_torch import physics
from ptycho_torch.grouping import neighbour_groups
from ptycho_torch.model import ModelConfig, PtychoPINN
from ptycho_torch.simulate import SimulatedData, forward_amplitude, simulate_dataset

N = 64


@pytest.fixture(scope="module")
def data() -> SimulatedData:
    """36 patterns (a 6 x 6 grid). Measured gap closed 1.000 at gridsize 1 and 2, as with 100 patterns; with
    the merge's window offsets negated it falls to 0.897 here and 0.898 with 100."""
    return simulate_dataset(36, nphotons=1e5, overlap=0.7, seed=3, N=N)


def _model(data: SimulatedData, gridsize: int) -> PtychoPINN:
    probe = torch.from_numpy(data.probeGuess)
    counts = float(np.square(data.diffraction, dtype=np.float64).sum(axis=(-2, -1)).mean())
    return PtychoPINN(ModelConfig(N=N, gridsize=gridsize, n_filters=4, depth=2), probe,
                      physics.intensity_scale(probe, counts))


def _groups(data: SimulatedData, gridsize: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(positions (B, C, 2) float32 absolute, measured (B, C, N, N)) for the data's groups."""
    groups = neighbour_groups(data.xcoords, data.ycoords, gridsize=gridsize, K=7, seed=0)
    positions = np.stack([data.xcoords[groups], data.ycoords[groups]], axis=-1)
    return torch.from_numpy(positions.astype(np.float32)), torch.from_numpy(data.diffraction[groups])


def _oracle_amplitude(model: PtychoPINN, obj: torch.Tensor, positions: torch.Tensor) -> torch.Tensor:
    """The model's own path from an object to predicted amplitudes: extract -> merge -> forward model."""
    patches = model.extract(obj, positions)  # (B, C, N, N)
    return model.diffraction(model.constrain(patches, positions), positions)


def _fitted_loss(model: PtychoPINN, amplitude: torch.Tensor, measured: torch.Tensor) -> float:
    """The loss of amplitude * c, c the one global scale that fits the counts best."""
    rates = (amplitude.double() * float(model.intensity_scale)).square().sum()
    c = float((measured.double().square().sum() / rates).sqrt())
    return float(model.loss_of(amplitude * c, measured))


def _flat_loss(model: PtychoPINN, measured: torch.Tensor) -> float:
    unit = physics.diffraction_amplitude(torch.ones(N, N, dtype=torch.complex64), model.probe)
    unit_counts = (unit.double() * float(model.intensity_scale)).square().sum()
    brightness = (measured.double().square().sum(dim=(-2, -1)) / unit_counts).sqrt()
    return float(model.loss_of(unit * brightness.float()[..., None, None], measured))


def _simulator_loss(model: PtychoPINN, data: SimulatedData, gridsize: int, measured: torch.Tensor) -> float:
    noiseless = forward_amplitude(data.objectGuess, data.probeGuess, data.xcoords, data.ycoords)
    scale = physics.photon_scale(noiseless, data.nphotons)
    groups = neighbour_groups(data.xcoords, data.ycoords, gridsize=gridsize, K=7, seed=0)
    amplitude = torch.from_numpy(noiseless[groups]) * (scale / float(model.intensity_scale))
    return float(model.loss_of(amplitude, measured))


@pytest.mark.parametrize("gridsize", [1, 2])
def test_the_true_object_closes_the_flat_to_truth_gap_through_the_models_physics(
        data: SimulatedData, gridsize: int) -> None:
    model = _model(data, gridsize)
    positions, measured = _groups(data, gridsize)
    obj = torch.from_numpy(data.objectGuess)
    with torch.no_grad():
        oracle = _fitted_loss(model, _oracle_amplitude(model, obj, positions), measured)
        one_off = _fitted_loss(model, _oracle_amplitude(model, obj, positions + torch.tensor([1.0, 0.0])),
                               measured)
    flat, truth = _flat_loss(model, measured), _simulator_loss(model, data, gridsize, measured)
    gap_closed = (flat - oracle) / (flat - truth)
    assert oracle < flat and oracle < one_off
    assert gap_closed >= 0.98, f"the true object closes only {gap_closed:.1%} of the flat -> truth gap"


def test_the_models_physics_is_the_simulators() -> None:
    data = simulate_dataset(9, nphotons=1e4, overlap=0.7, seed=1, N=32, scan="random")
    model = PtychoPINN(ModelConfig(N=32, gridsize=1, n_filters=4, depth=2), torch.from_numpy(data.probeGuess), 1.0)
    positions = torch.from_numpy(np.stack([data.xcoords, data.ycoords], axis=-1)[:, None].astype(np.float32))
    obj = torch.from_numpy(data.objectGuess)
    with torch.no_grad():
        ours = model.diffraction(model.constrain(model.extract(obj, positions), positions), positions)
    simulated = forward_amplitude(data.objectGuess, data.probeGuess, data.xcoords, data.ycoords)
    torch.testing.assert_close(ours[:, 0], torch.from_numpy(simulated), rtol=1e-4, atol=1e-5)


def _gaussian_probe(n: int, sigma: float) -> torch.Tensor:
    yy, xx = np.mgrid[:n, :n] - n // 2
    return torch.from_numpy((np.exp(-(xx**2 + yy**2) / (2 * sigma**2)) * np.exp(0.2j * xx)).astype(np.complex64))


def test_a_single_bright_pixel_is_lit_by_the_probe_where_the_beam_is() -> None:
    """The beam centred at (x, y) = (23.4, 16.6) lights the object pixel (20, 20), 3.4 px left of and 3.4 px
    below its centre, with the probe's value there: a delta's far field is flat at |P(-3.4, 3.4)| / N. The
    probe moved the wrong way would light it from 2.6 px in each direction, about 35% brighter."""
    n, sigma = 32, 4.0
    model = PtychoPINN(ModelConfig(N=n, gridsize=1, n_filters=4, depth=2), _gaussian_probe(n, sigma), 1.0)
    obj = torch.zeros(48, 48, dtype=torch.complex64)
    obj[20, 20] = 1.0
    positions = torch.tensor([[[23.4, 16.6]]])
    with torch.no_grad():
        amplitude = model.diffraction(model.extract(obj, positions), positions)  # (1, 1, N, N)
    expected = np.exp(-2 * 3.4**2 / (2 * sigma**2)) / n
    wrong_sign = np.exp(-2 * 2.6**2 / (2 * sigma**2)) / n  # the probe moved the other way
    assert float(amplitude.std()) < 1e-3 * expected  # flat: one lit pixel
    assert float(amplitude.mean()) == pytest.approx(expected, rel=0.01)
    assert abs(float(amplitude.mean()) - wrong_sign) > 0.1 * expected


def test_the_merge_keeps_the_windows_of_one_object_and_does_not_wrap() -> None:
    """Windows cut from one object at sub-pixel positions agree wherever they overlap, so the merge must give
    them back unchanged: a bright pixel inside one window's right edge stays there, appears at the same
    object pixel in the windows that hold it, and nowhere in the ones that do not (no wrap-around)."""
    n = 32
    model = PtychoPINN(ModelConfig(N=n, gridsize=2, n_filters=4, depth=2), _gaussian_probe(n, 6.0), 1.0)
    obj = torch.zeros(80, 80, dtype=torch.complex64)
    obj[30, 45] = 1.0  # window 0 (cols 14..45 around x = 30) holds it in its last column
    positions = torch.tensor([[[30.4, 30.3], [37.6, 29.8], [29.7, 38.4], [44.2, 36.6]]])
    with torch.no_grad():
        windows = model.extract(obj, positions)
        merged = model.constrain(windows, positions)
    assert windows[0, 0, 30 - 30 + n // 2, n - 1] == 1.0
    torch.testing.assert_close(merged, windows)
    assert float(merged[0, :, :, :].abs().sum()) == pytest.approx(float(windows.abs().sum()))
