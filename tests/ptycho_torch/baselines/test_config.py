"""ReconstructionConfig: every bad option is named with what it accepts; the pad follows the interpolation."""
from __future__ import annotations

from typing import Any

import pytest

from ptycho_torch import physics
from ptycho_torch.baselines import BaselineError, ReconstructionConfig


@pytest.mark.parametrize(
    "options, message",
    [
        ({"method": "dm"}, r"method = 'dm' is not a known choice; choose one of 'epie', 'ml'"),
        ({"iterations": 0}, r"iterations must be an integer >= 1"),
        ({"batch_size": 2.5}, r"batch_size must be an integer >= 1"),
        ({"pie_alpha": 0.0}, r"pie_alpha must be a finite number in \(0, 1\]"),
        ({"object_step": -1.0}, r"object_step must be a finite number > 0"),
        ({"interpolation": "cubic"}, r"interpolation = 'cubic' is not a known choice"),
        ({"coverage_threshold": 2.0}, r"coverage_threshold must be a finite number in \(0, 1\]"),
        ({"refine_probe": "yes"}, r"refine_probe must be true or false"),
        ({"ml_warmup": -1}, r"ml_warmup must be an integer >= 0"),
    ],
)
def test_bad_options_are_named(options: dict[str, Any], message: str) -> None:
    with pytest.raises(BaselineError, match=message):
        ReconstructionConfig(**options)


def test_the_default_window_is_the_simulators() -> None:
    assert ReconstructionConfig().pad == physics.FOURIER_PAD
    assert ReconstructionConfig(interpolation="bilinear").pad == 0
