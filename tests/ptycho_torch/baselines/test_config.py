"""ReconstructionConfig: every bad option is named with what it accepts."""
from __future__ import annotations

from typing import Any

import pytest

from ptycho_torch.baselines import BaselineError, ReconstructionConfig


@pytest.mark.parametrize(
    "options, message",
    [
        ({"method": "dm"},
         r"method = 'dm' is not a known choice; choose one of 'epie', 'ml', 'ptychi-lsqml'"),
        ({"iterations": -1}, r"iterations must be an integer >= 0"),
        ({"probe_start": 0}, r"probe_start must be an integer >= 1"),
        ({"batch_size": 2.5}, r"batch_size must be an integer >= 1"),
        ({"pie_alpha": 0.0}, r"pie_alpha must be a finite number in \(0, 1\]"),
        ({"object_step": -1.0}, r"object_step must be a finite number > 0"),
        ({"method": "ptychi-lsqml", "object_step": 0.5}, r"object_step does not apply to ptychi-lsqml"),
        ({"coverage_threshold": 2.0}, r"coverage_threshold must be a finite number in \(0, 1\]"),
        ({"refine_probe": "yes"}, r"refine_probe must be true or false"),
        ({"ml_warmup": -1}, r"ml_warmup must be an integer >= 0"),
    ],
)
def test_bad_options_are_named(options: dict[str, Any], message: str) -> None:
    with pytest.raises(BaselineError, match=message):
        ReconstructionConfig(**options)


def test_zero_iterations_is_allowed_and_steps_default_per_method() -> None:
    assert ReconstructionConfig(iterations=0).iterations == 0
    assert ReconstructionConfig(method="ml", object_step=0.5).steps == (0.5, 1.0)
    assert ReconstructionConfig(method="ptychi-lsqml").method == "ptychi-lsqml"
