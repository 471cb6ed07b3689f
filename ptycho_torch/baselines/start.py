"""Starting an iterative method from a reconstruction file (a network's recon.npz): the object read and
checked, its uncovered pixels filled, and its amplitude scale fitted to the measured counts.

Global phase is unobservable (the counts do not change when the object is multiplied by exp(i c)), so it
is left as the file has it. The amplitude scale is observable: the baselines put the object at |O| ~ 1
through s = physics.intensity_scale(probe, mean counts), while a network's object may sit at another scale.
Multiplying the start by a real a multiplies every predicted count by a^2, so the Poisson likelihood of
the counts c under the rates a^2 r has its maximum at the closed form

    a^2 = sum c / sum r

(the derivative of sum (a^2 r - c log(a^2 r)) in a^2 is zero there): the scale at which the start predicts
as many photons as were measured. fit_amplitude_scale computes it over the patterns the method updates with.
"""
from __future__ import annotations

import hashlib
import math
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from ptycho_torch import physics
from ptycho_torch.baselines.common import Batches
from ptycho_torch.baselines.result import InitialFile
from ptycho_torch.errors import BaselineError, EvaluateError
from ptycho_torch.recon_file import read_arrays

ADVICE = ("pass the recon.npz that `ptycho-torch infer` (or `reconstruct`) wrote for this same dataset "
          "(its objectGuess frame)")


@dataclass(frozen=True)
class InitialObject:
    """A start read from a reconstruction file.

    object: (H, W) complex64, the file's object where covered, elsewhere the mean amplitude of the covered
        pixels with phase 0 (a flat object at the start's own scale, as the methods' default start of ones
        is at theirs). file: its name, SHA256 and pixel counts, for the record.
    """

    object: np.ndarray
    file: InitialFile


def load_initial_object(path: str | os.PathLike[str], object_shape: tuple[int, int]) -> InitialObject:
    """Read `path` (recon.npz: `object` complex (H, W), NaN where not covered, optional bool `coverage`;
    or an .npy of one complex image) without pickle; BaselineError saying what is wrong and what to pass
    when it is missing, unreadable, of another frame than object_shape, or covers no pixel."""
    source = Path(path)
    try:
        loaded = read_arrays(source, "--init-from")
    except EvaluateError as exc:
        raise BaselineError(f"{exc}; {ADVICE}") from None
    arrays = {"object": loaded} if isinstance(loaded, np.ndarray) else loaded
    obj = arrays.get("object")
    if obj is None or not np.iscomplexobj(obj) or obj.ndim != 2:
        found = {k: f"{v.dtype} {v.shape}" for k, v in arrays.items()}
        raise BaselineError(f"--init-from {source}: expected a complex 2-D array named 'object', found {found}; "
                            f"{ADVICE}")
    rows, cols = (int(v) for v in object_shape)
    if obj.shape != (rows, cols):
        raise BaselineError(f"--init-from {source}: its object is {obj.shape[0]}x{obj.shape[1]} but this "
                            f"dataset's object frame is {rows}x{cols}; {ADVICE}")
    known = np.isfinite(obj)
    coverage = arrays.get("coverage")
    if coverage is not None and coverage.shape == obj.shape and coverage.dtype == np.bool_:
        known &= coverage
    if not known.any():
        raise BaselineError(f"--init-from {source}: no pixel of its object is covered (all NaN or outside its "
                            f"coverage); {ADVICE}, or reconstruct without --init-from")
    fill = np.float32(np.abs(obj[known]).mean())
    start = np.where(known, obj, fill).astype(np.complex64)
    digest = hashlib.sha256(source.read_bytes()).hexdigest()
    return InitialObject(start, InitialFile(source.name, digest, int(known.sum()), int((~known).sum())))


def fit_amplitude_scale(obj: Tensor, probe: Tensor, scale: float, batches: Batches) -> float:
    """The real a > 0 that maximises the Poisson likelihood of the measured counts under obj * a (module
    docstring): sqrt(sum c / sum r) over one pass of `batches` (measured amplitudes (B, N, N), centres
    (B, 2)); BaselineError when obj predicts no counts."""
    measured_total = 0.0
    predicted_total = 0.0
    with torch.no_grad():
        for measured, centres in batches():
            valid = measured.isfinite()  # a held-out pixel (NaN, holdout.py) counts on neither side
            rate = (scale * physics.forward(obj, probe, centres)).square()
            predicted_total += float(torch.where(valid, rate, 0.0).double().sum())
            measured_total += float(torch.where(valid, measured, 0.0).double().square().sum())
    if not (predicted_total > 0 and math.isfinite(predicted_total)):
        raise BaselineError("the initial object predicts no counts under this probe (its covered pixels are "
                            "all zero, or not finite); start from another reconstruction or without one")
    return math.sqrt(measured_total / predicted_total)
