"""The gridsize > 1 merge: probe weights, exact Fourier moves at fractional offsets, and no blow-up."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from ptycho_torch import physics
from ptycho_torch.overlap import MergeWeights, merge_group, merge_weights
from ptycho_torch.physics import Interpolation
from ptycho_torch.simulate import make_probe

SIDE = 256


def band_limited_object(cutoff: float, seed: int = 0) -> np.ndarray:
    """(SIDE, SIDE) complex128, periodic, no spatial frequency above `cutoff` cycles/pixel."""
    rng = np.random.default_rng(seed)
    spectrum = np.fft.fft2(rng.standard_normal((SIDE, SIDE)) + 1j * rng.standard_normal((SIDE, SIDE)))
    k = np.fft.fftfreq(SIDE)
    spectrum[np.hypot(k[:, None], k[None, :]) > cutoff] = 0
    field = np.fft.ifft2(spectrum)
    return (1 + 0.3 * field.real / np.abs(field.real).max()) * np.exp(0.5j * field.imag / np.abs(field.imag).max())


def consistent_patches(obj: np.ndarray, centres: np.ndarray, n: int) -> torch.Tensor:
    """(1, C, n, n): exact views of one periodic object at fractional centres (x, y): the whole object moved
    by the fraction with a phase ramp, then sliced, so every patch agrees with every other."""
    k = np.fft.fftfreq(SIDE)
    patches = []
    for x, y in centres:
        ix, iy = np.floor(x + 0.5), np.floor(y + 0.5)
        ramp = np.exp(2j * np.pi * ((y - iy) * k[:, None] + (x - ix) * k[None, :]))
        moved = np.fft.ifft2(np.fft.fft2(obj) * ramp)
        top, left = int(iy) - n // 2, int(ix) - n // 2
        patches.append(moved[top : top + n, left : left + n])
    return torch.tensor(np.stack(patches), dtype=torch.complex64)[None]


def group(n: int, seed: int) -> np.ndarray:
    spacing = 0.3 * n
    grid = np.array([[0, 0], [spacing, 0], [0, spacing], [spacing, spacing]])
    return SIDE / 2 + grid + np.random.default_rng(seed).uniform(-3, 3, (4, 2))


def test_weights_are_the_probe_intensity_positive_and_dark_at_the_edge() -> None:
    probe = torch.from_numpy(make_probe(64))
    weights = merge_weights(probe, MergeWeights.PROBE)
    assert weights.shape == (64, 64) and float(weights.max()) == pytest.approx(1.0)
    assert bool((weights > 0).all())
    edge = torch.cat([weights[:2].flatten(), weights[-2:].flatten(), weights[:, :2].flatten(),
                      weights[:, -2:].flatten()])
    assert float(edge.max()) < 1e-4
    intensity = physics.probe_weights(probe)
    corr = np.corrcoef(weights.flatten().numpy(), intensity.flatten().numpy())[0, 1]
    assert corr > 0.9, "the weights follow the probe's intensity"
    assert torch.equal(merge_weights(probe, MergeWeights.UNIFORM), torch.ones(64, 64))


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_fourier_merge_keeps_consistent_patches_where_bilinear_blurs(seed: int) -> None:
    n = 64
    probe = torch.from_numpy(make_probe(n))
    centres = group(n, seed)
    patches = consistent_patches(band_limited_object(0.3, seed), centres, n)
    relative = torch.tensor(centres - centres.mean(axis=0), dtype=torch.float32)[None]
    lit = physics.probe_weights(probe) > 0.05
    weights = merge_weights(probe, MergeWeights.PROBE)
    errors = {}
    for method in Interpolation:
        merged = merge_group(patches, relative, weights, interpolation=method)
        errors[method] = float((merged - patches).abs()[..., lit].max())
    assert errors[Interpolation.FOURIER] < 0.02
    assert errors[Interpolation.BILINEAR] > 3 * errors[Interpolation.FOURIER]


def test_merge_of_disagreeing_patches_stays_within_their_values_for_a_wide_probe() -> None:
    """Patches of noise under a probe bright up to its window's edge make Fourier moves ring most (moving noise
    by a fraction of a pixel alone gives values up to ~1.8 times its largest); the merge never divides that
    ringing by almost nothing (which gave values 100 times the patches')."""
    n = 32
    probe = torch.from_numpy(make_probe(n, aperture_radius_px=4.0, defocus_rad=5.0, central_stop=0.0))
    assert float(physics.probe_weights(probe)[0].max()) > 0.1  # bright at the edge
    gen = torch.Generator().manual_seed(0)
    patches = torch.polar(1 + torch.rand(8, 4, n, n, generator=gen), torch.randn(8, 4, n, n, generator=gen))
    relative = torch.randn(8, 4, 2, generator=gen) * 5
    merged = merge_group(patches, relative, merge_weights(probe, MergeWeights.PROBE))
    assert bool(torch.isfinite(merged).all())
    assert float(merged.abs().max()) < 3 * float(patches.abs().max())


def test_whole_pixel_offsets_are_exact_and_gradients_reach_every_patch() -> None:
    n = 16
    probe = torch.from_numpy(make_probe(n))
    patches = torch.randn(2, 4, n, n, dtype=torch.complex64, requires_grad=True)
    relative = torch.tensor([[-3.0, -2.0], [3.0, -2.0], [-3.0, 2.0], [3.0, 2.0]]).expand(2, 4, 2).contiguous()
    weights = merge_weights(probe, MergeWeights.PROBE)
    merged = merge_group(patches, relative, weights)
    torch.testing.assert_close(merged[:, 0, :, 6:], merged[:, 1, :, :-6])
    torch.testing.assert_close(merged[:, 0, 4:, 6:], merged[:, 3, :-4, :-6])
    merged.abs().sum().backward()
    assert patches.grad is not None and bool((patches.grad.abs().sum(dim=(-1, -2)) > 0).all())
    single = patches[:, :1].detach()
    assert torch.equal(merge_group(single, relative[:, :1], weights), single)
