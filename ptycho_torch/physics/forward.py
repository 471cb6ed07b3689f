"""The ptychographic forward model: the beam moves over a fixed object -> exit wave -> far field -> amplitude.

Conventions:
- Object, patches and probe are complex (complex64 in use; complex128 works, e.g. for gradcheck).
- Probe modes: a probe of shape (M, N, N) holds M mutually incoherent modes; (N, N) is one mode. The
  intensities of the modes add, never their fields.
- The object array is the sample on a fixed pixel grid and the beam moves over it (docs/findings.md,
  PHYS-001). A scan position c = (x, y) is split into the object window cut at nearest_pixel(c), exactly as
  stored (patches.Interpolation.NEAREST, no interpolation of the object), and the remainder
  c - nearest_pixel(c) in [-0.5, 0.5), by which the probe is moved (a Fourier shift over the probe's own
  window, circular: the probe must fall off before its window's edge). Moving the object patch instead is
  the same only for an object band-limited within the window, which a pixel-sharp sample is not.
- Positions and patch geometry are patches.py's; propagation is propagation.py's.
- Amplitudes here are in "unit" scale (object and probe as given). Detector counts are (A * s)^2 with
  s = noise.intensity_scale(probe, nphotons); a stored diffraction amplitude is sqrt(counts) = A * s.
"""

from __future__ import annotations

import torch
from torch import Tensor

from ptycho_torch.errors import PhysicsError
from ptycho_torch.physics.patches import Interpolation, extract_patches, fourier_shift, nearest_pixel
from ptycho_torch.physics.propagation import far_field, intensity, safe_sqrt


def probe_modes(probe: Tensor) -> Tensor:
    """Return the probe as modes: (N, N) -> (1, N, N); (M, N, N) unchanged. Raises PhysicsError otherwise."""
    if not torch.is_complex(probe):
        raise PhysicsError(f"probe must be complex (complex64), got dtype {probe.dtype}")
    if probe.ndim == 2:
        return probe.unsqueeze(0)
    if probe.ndim == 3:
        return probe
    raise PhysicsError(
        f"probe must have shape (N, N) or (M, N, N) for M incoherent modes, got {tuple(probe.shape)}"
    )


def exit_wave(object_patches: Tensor, probe: Tensor) -> Tensor:
    """Exit wave of each probe mode: (..., N, N) object patches * (M?, N, N) probe -> (..., M, N, N)."""
    modes = probe_modes(probe)
    if object_patches.shape[-2:] != modes.shape[-2:]:
        raise PhysicsError(
            f"object patches are {tuple(object_patches.shape[-2:])} pixels but the probe is "
            f"{tuple(modes.shape[-2:])}; extract patches of the probe's size"
        )
    return object_patches.unsqueeze(-3) * modes


def diffraction_amplitude(object_patches: Tensor, probe: Tensor) -> Tensor:
    """Predicted far-field amplitude (unit scale) of object patches (..., N, N) under probe (M?, N, N).

    Returns (..., N, N) real: sqrt(sum over modes |fftshift(fft2(O * P_m))|^2).
    """
    psi = exit_wave(object_patches, probe)  # (..., M, N, N)
    return safe_sqrt(intensity(far_field(psi)))  # (..., N, N)


def beam_offsets(centres: Tensor) -> Tensor:
    """(..., 2) = (dx, dy): the sub-pixel part of each scan position, c - nearest_pixel(c), in [-0.5, 0.5).

    Differentiable in the centres (the integer part carries no gradient)."""
    return centres - nearest_pixel(centres.detach())


def shift_probe(probe: Tensor, offsets: Tensor) -> Tensor:
    """The probe (M?, N, N) moved by offsets (..., 2) = (dx, dy) px -> (..., M, N, N).

    out[..., m, r, c] = P_m(r - dy, c - dx) by a phase ramp over the N x N window (patches.fourier_shift),
    exact for a probe band-limited in its window and zero at its edge; where both offsets are 0 the probe
    is copied unchanged.
    """
    modes = probe_modes(probe)  # (M, N, N)
    lead = offsets.shape[:-1]
    real = modes.real.dtype
    dx = offsets[..., 0].to(real).unsqueeze(-1).expand(*lead, modes.shape[0])  # (..., M)
    dy = offsets[..., 1].to(real).unsqueeze(-1).expand(*lead, modes.shape[0])
    return fourier_shift(modes.expand(*lead, *modes.shape), dx, dy)


def object_windows(obj: Tensor, centres: Tensor, n: int) -> Tensor:
    """The object windows the beam lights: (B?, Ho, Wo) at centres (B?, P, 2) -> (B?, P, N, N), each cut at
    nearest_pixel(c) exactly as stored (no interpolation), zero outside the object."""
    return extract_patches(obj, centres, n, interpolation=Interpolation.NEAREST)


def beam_amplitude(windows: Tensor, probe: Tensor, centres: Tensor) -> Tensor:
    """Amplitudes (unit scale) of object windows (..., P, N, N) lit by the probe moved to centres (..., P, 2).

    The windows are those object_windows cuts for the centres (only the centres' sub-pixel remainders,
    beam_offsets, enter here). The named steps: the probe moved by the remainders -> exit wave -> far field
    -> intensity -> amplitude, (..., P, N, N). Differentiable in the windows, the probe and the centres."""
    probes = shift_probe(probe, beam_offsets(centres))  # (..., P, M, N, N)
    psi = windows.unsqueeze(-3) * probes  # (..., P, M, N, N)
    return safe_sqrt(intensity(far_field(psi)))  # (..., P, N, N)


def forward(obj: Tensor, probe: Tensor, centres: Tensor) -> Tensor:
    """Full forward model: object (B?, Ho, Wo) scanned at centres (B?, P, 2) -> amplitudes (B?, P, N, N).

    The object windows at the nearest pixels (object_windows), lit by the probe moved by the sub-pixel
    remainders (beam_amplitude). The network's physics is the same two functions (model.py).
    Differentiable in obj, probe and centres.
    """
    n = probe_modes(probe).shape[-1]
    return beam_amplitude(object_windows(obj, centres, n), probe, centres)
