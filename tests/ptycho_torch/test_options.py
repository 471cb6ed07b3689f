"""The shared option checks: types, bounds, enum choices, and the caller's error class."""
from __future__ import annotations

from enum import StrEnum

import pytest

from ptycho_torch import options
from ptycho_torch.errors import OptionsError, TrainError


class Colour(StrEnum):
    RED = "red"
    BLUE = "blue"


def test_integer_rejects_bools_floats_and_values_below_the_minimum() -> None:
    assert options.integer(3, "--epochs", minimum=1) == 3
    for bad in (True, 2.0, "3", 0):
        with pytest.raises(OptionsError, match=r"--epochs must be an integer >= 1, got"):
            options.integer(bad, "--epochs", minimum=1)
    assert options.integer(-5, "seed") == -5


def test_number_bounds_are_named_in_the_message() -> None:
    assert options.number(1, "lr", above=0) == 1.0 and isinstance(options.number(1, "lr", above=0), float)
    with pytest.raises(OptionsError, match=r"lr must be a finite number > 0, got 0"):
        options.number(0, "lr", above=0)
    with pytest.raises(OptionsError, match=r"in \[0, 1\), got 1"):
        options.number(1.0, "f", minimum=0, below=1)
    with pytest.raises(OptionsError, match=r"in \(0, 1\], got 0"):
        options.number(0.0, "t", above=0, maximum=1)
    for bad in (float("nan"), float("inf"), True, "1"):
        with pytest.raises(OptionsError, match="finite number"):
            options.number(bad, "x")


def test_choice_returns_the_member_and_lists_the_choices() -> None:
    assert options.choice(Colour, "red", "colour") is Colour.RED
    assert options.choice(Colour, Colour.BLUE, "colour") is Colour.BLUE
    with pytest.raises(OptionsError, match="choose one of 'red', 'blue'"):
        options.choice(Colour, "green", "colour")


def test_the_callers_error_class_is_raised() -> None:
    with pytest.raises(TrainError):
        options.boolean("yes", "--compile", error=TrainError)
    assert options.boolean(False, "--compile") is False
