"""Illumination: the peak-1 probe intensity (modes summed), placed at every position and summed."""

from __future__ import annotations

import importlib

import pytest
import torch

from ptycho_torch.physics import illumination, probe_weights, reassemble_patches
from tests.ptycho_torch.physics.samples import complex_field


def test_probe_weights_sum_the_modes_with_peak_one() -> None:
    probe = complex_field((2, 8, 8), seed=30)
    expected = (probe.abs() ** 2).sum(0)
    torch.testing.assert_close(probe_weights(probe), expected / expected.max())
    single = complex_field((8, 8), seed=31)
    torch.testing.assert_close(probe_weights(single), single.abs() ** 2 / (single.abs() ** 2).max())


def test_illumination_is_the_placed_weights_summed(monkeypatch: pytest.MonkeyPatch) -> None:
    probe = complex_field((2, 8, 8), seed=32)
    weights = probe_weights(probe)
    centres = torch.tensor([[6.0, 7.0], [9.5, 8.25], [12.0, 12.0], [10.3, 6.6], [8.0, 11.0]])
    total = illumination(probe, centres, (20, 22))
    assert total.shape == (20, 22) and total.dtype == torch.float32
    by_hand = sum(reassemble_patches(weights[None], c[None], (20, 22))[0] for c in centres)
    torch.testing.assert_close(total, by_hand)
    assert total.max() >= 1.0  # at an integer centre a probe's peak is placed whole
    module = importlib.import_module("ptycho_torch.physics.illumination")  # the name is also its function's
    monkeypatch.setattr(module, "CHUNK", 2)  # placed two positions at a time: the same sum
    torch.testing.assert_close(illumination(probe, centres, (20, 22)), total)
