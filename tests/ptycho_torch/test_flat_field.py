"""The flat field: a pattern that every patch of a scan shares is measured and divided out; the object is not."""
from __future__ import annotations

import math

import numpy as np
import torch
from scipy.ndimage import gaussian_filter

from ptycho_torch import physics
from ptycho_torch.flat_field import MIN_PATCHES, FlatFieldEstimate
from ptycho_torch.infer import Stitcher

N = 16


def _object(shape: tuple[int, int], seed: int = 0) -> torch.Tensor:
    rng = np.random.default_rng(seed)
    amplitude = 0.6 + 0.8 * gaussian_filter(rng.random(shape), 1.5)
    phase = 3 * gaussian_filter(rng.standard_normal(shape), 1.5)
    return torch.from_numpy((amplitude * np.exp(1j * phase)).astype(np.complex64))


def _weights() -> torch.Tensor:
    yy, xx = np.mgrid[:N, :N] - N // 2
    return torch.tensor(np.exp(-(xx**2 + yy**2) / (2 * (N / 5) ** 2)), dtype=torch.float32)


def _imprint() -> torch.Tensor:
    """A beam-shaped pattern fixed in the patch's frame: brighter on one side, a phase bump off centre."""
    yy, xx = np.mgrid[:N, :N] - N // 2
    amplitude = 1 + 0.3 * np.tanh(xx / 4) + 0.2 * np.exp(-((xx - 2) ** 2 + yy**2) / 6)
    phase = 0.6 * np.exp(-((xx + 3) ** 2 + (yy - 2) ** 2) / 8)
    return torch.tensor(amplitude * np.exp(1j * phase), dtype=torch.complex64)


def _scan(obj: torch.Tensor, step: int = 2) -> tuple[torch.Tensor, torch.Tensor]:
    """The object's patches at every `step` pixels (all inside the object) and their centres (x, y)."""
    h, w = obj.shape
    xs, ys = np.meshgrid(np.arange(N // 2, w - N // 2, step), np.arange(N // 2, h - N // 2, step))
    centres = torch.tensor(np.stack([xs.ravel(), ys.ravel()], 1), dtype=torch.float32)
    return physics.extract_patches(obj, centres, N, interpolation=physics.Interpolation.NEAREST), centres


def _estimate(patches: torch.Tensor, weights: torch.Tensor, batch: int = 13):
    estimate = FlatFieldEstimate(weights)
    for start in range(0, len(patches), batch):  # batch by batch, as inference does
        estimate.add(patches[start : start + batch])
    return estimate.result()


def _weighted_rms(values: torch.Tensor, weights: torch.Tensor) -> float:
    return math.sqrt(float((values.abs() ** 2 * weights).sum() / weights.sum()))


def test_a_shared_imprint_is_measured_and_divided_out() -> None:
    obj, weights = _object((80, 80)), _weights()
    truth, _ = _scan(obj)
    rng = torch.Generator().manual_seed(0)
    offsets = torch.exp(1j * 2 * math.pi * torch.rand(len(truth), 1, 1, generator=rng))  # each patch's own phase
    field = _estimate(truth * _imprint() * offsets, weights)
    assert field is not None and field.n_patches == len(truth) == 1024
    residual = field.correction * _imprint()  # what is left of the imprint: a constant, up to the object's mean
    residual = residual / (residual * weights).sum() * weights.sum()
    assert _weighted_rms(residual.abs() - 1, weights) < 0.02
    assert _weighted_rms(torch.angle(residual), weights) < 0.03
    planted = _imprint().abs() / float((_imprint().abs() * weights).sum() / weights.sum())
    assert abs(field.amplitude_spread - _weighted_rms(planted - 1, weights)) < 0.02
    assert field.amplitude_spread > 0.1 and field.phase_spread_rad > 0.1


def test_patches_without_an_imprint_are_left_almost_as_they_are() -> None:
    obj, weights = _object((80, 80), seed=1), _weights()
    truth, _ = _scan(obj)
    field = _estimate(truth, weights)
    assert field is not None
    assert field.amplitude_spread < 0.03 and field.phase_spread_rad < 0.05
    assert _weighted_rms(field.correction - 1, weights) < 0.06


def test_stitching_corrected_patches_gives_back_the_object_and_the_imprint_grid_is_gone() -> None:
    obj, weights = _object((80, 80), seed=2), _weights()
    truth, centres = _scan(obj, step=3)
    imprinted = truth * _imprint()

    def stitched(patches: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
        stitcher = Stitcher(tuple(obj.shape), weights, interpolation=physics.Interpolation.NEAREST)
        stitcher.add(patches, centres)
        record = stitcher.result(0.5)
        return record.object, record.coverage

    field = _estimate(imprinted, weights)
    assert field is not None
    before, coverage = stitched(imprinted)
    after, _ = stitched(imprinted * field.correction)
    truth_pixels = obj.numpy()[coverage]

    def error(recon: np.ndarray) -> float:  # after the global scale and phase that no ptychography fixes
        values = recon[coverage]
        fit = np.vdot(values, truth_pixels) / np.vdot(values, values)
        return float(np.sqrt(np.mean(np.abs(fit * values - truth_pixels) ** 2)))

    assert error(after) < 0.3 * error(before)
    assert error(after) < 0.03


def test_too_few_patches_give_no_flat_field() -> None:
    truth, _ = _scan(_object((80, 80)))
    assert _estimate(truth[: MIN_PATCHES - 1], _weights()) is None
    assert _estimate(truth[:MIN_PATCHES], _weights()) is not None
    assert FlatFieldEstimate(_weights()).result() is None
