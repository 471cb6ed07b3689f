"""Checks for option values, shared by every validated options dataclass (model, trainer, baselines, study).

Each check takes the value, the name the user knows it by (`--batch-size`, `ModelConfig.N`,
`train.epochs`) and the error class to raise, and returns the value normalised (an enum member, a float).
Booleans are never accepted as numbers: `True` is an int in Python but never a sensible `--epochs`.
"""
from __future__ import annotations

import math
from enum import Enum
from typing import TypeVar

from ptycho_torch.errors import OptionsError

E = TypeVar("E", bound=Enum)
Error = type[Exception]


def integer(value: object, name: str, *, minimum: int | None = None, error: Error = OptionsError) -> int:
    """An int (not a bool), at least `minimum` when given."""
    if isinstance(value, bool) or not isinstance(value, int) or (minimum is not None and value < minimum):
        bound = "" if minimum is None else f" >= {minimum}"
        raise error(f"{name} must be an integer{bound}, got {value!r}")
    return value


def number(value: object, name: str, *, above: float | None = None, minimum: float | None = None,
           maximum: float | None = None, below: float | None = None, error: Error = OptionsError) -> float:
    """A finite real number (not a bool) within the given bounds: `above`/`below` exclusive,
    `minimum`/`maximum` inclusive. Returned as float."""
    ok = not isinstance(value, bool) and isinstance(value, (int, float)) and math.isfinite(value)
    if ok:
        x = float(value)  # type: ignore[arg-type]
        ok = ((above is None or x > above) and (minimum is None or x >= minimum)
              and (maximum is None or x <= maximum) and (below is None or x < below))
    if not ok:
        raise error(f"{name} must be a finite number{_range_text(above, minimum, maximum, below)}, got {value!r}")
    return float(value)  # type: ignore[arg-type]


def _range_text(above: float | None, minimum: float | None, maximum: float | None, below: float | None) -> str:
    low = f"({above:g}" if above is not None else f"[{minimum:g}" if minimum is not None else None
    high = f"{below:g})" if below is not None else f"{maximum:g}]" if maximum is not None else None
    if low and high:
        return f" in {low}, {high}"
    if low:
        return f" > {above:g}" if above is not None else f" >= {minimum:g}"
    if high:
        return f" < {below:g}" if below is not None else f" <= {maximum:g}"
    return ""


def boolean(value: object, name: str, *, error: Error = OptionsError) -> bool:
    if not isinstance(value, bool):
        raise error(f"{name} must be true or false, got {value!r}")
    return value


def choice(enum: type[E], value: object, name: str, *, error: Error = OptionsError) -> E:
    """The enum member whose value is `value` (members themselves pass through)."""
    try:
        return enum(value)
    except ValueError:
        choices = ", ".join(repr(m.value) for m in enum)
        raise error(f"{name} = {value!r} is not a known choice; choose one of {choices}") from None
