"""One scan of the object, split into a train region and a test region that share no object pixel.

The scan fills the object at spacing (1 - overlap) N. Test: the right-most `test_fraction` of the
positions. Train: positions whose rounded centre lies at least N + 1 px left of every test centre, so no
object pixel is in both a train and a test patch window (nor in the extra bilinear tap); the positions in
between are the guard band, never simulated.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ptycho_torch.errors import SimulationError, StudyError
from ptycho_torch.simulate import scan_positions
from ptycho_torch.study.config import DataSpec


@dataclass(frozen=True)
class ScanSplit:
    """All simulated positions (P,) and the train / test masks (P,) bool; the rest is the guard band."""

    xcoords: np.ndarray
    ycoords: np.ndarray
    train: np.ndarray
    test: np.ndarray

    @property
    def n_train(self) -> int:
        return int(self.train.sum())

    @property
    def n_test(self) -> int:
        return int(self.test.sum())

    @property
    def n_dropped(self) -> int:
        return len(self.xcoords) - self.n_train - self.n_test


def scan_split(data: DataSpec, overlap: float, seed: int) -> ScanSplit:
    """A square scan filling the object at spacing (1 - overlap) N, split into disjoint regions."""
    n, size = data.N, data.object_size
    spacing = (1.0 - overlap) * n
    # scan_positions needs ceil(last centre) + N <= size, with the first centre at N; 1 px spare for rounding
    columns = math.floor((size - 2 * n - 1) / spacing) + 1 if size > 2 * n else 0
    if data.scan == "random":
        columns -= 1  # the jitter may widen the span by up to one spacing
    if columns < 2:
        raise StudyError(f"a {size} px object cannot hold a {n} px scan at overlap {overlap} with a margin; "
                         f"raise data.object_size to at least {math.ceil(2 * n + 2 * spacing)}")
    try:
        x, y, _ = scan_positions(columns * columns, N=n, overlap=overlap, scan=data.scan,  # type: ignore[arg-type]
                                 seed=seed, object_size=size)
    except SimulationError as exc:
        raise StudyError(str(exc)) from None
    test = x >= np.quantile(x, 1.0 - data.test_fraction)
    first_test = np.floor(x[test].min() + 0.5)
    train = np.floor(x + 0.5) + n + 1 <= first_test
    return ScanSplit(x, y, train & ~test, test)
