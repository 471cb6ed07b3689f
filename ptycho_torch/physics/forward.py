"""The ptychographic forward model: object patches -> exit wave -> far field -> intensity -> amplitude.

Conventions:
- Object, patches and probe are complex (complex64 in use; complex128 works, e.g. for gradcheck).
- Probe modes: a probe of shape (M, N, N) holds M mutually incoherent modes; (N, N) is one mode. The
  intensities of the modes add, never their fields.
- Positions and patch geometry are patches.py's; propagation is propagation.py's.
- Amplitudes here are in "unit" scale (object and probe as given). Detector counts are (A * s)^2 with
  s = noise.intensity_scale(probe, nphotons); a stored diffraction amplitude is sqrt(counts) = A * s.
"""

from __future__ import annotations

import torch
from torch import Tensor

from ptycho_torch.errors import PhysicsError
from ptycho_torch.physics.patches import Interpolation, extract_patches
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


def forward(
    obj: Tensor,
    probe: Tensor,
    centres: Tensor,
    *,
    interpolation: Interpolation | str = Interpolation.BILINEAR,
    pad: int = 0,
) -> Tensor:
    """Full forward model: object (B?, Ho, Wo) scanned at centres (B?, P, 2) -> amplitudes (B?, P, N, N).

    The named steps: extract patches -> exit wave -> far field -> intensity -> amplitude (unit scale).
    interpolation and pad: how sub-pixel centres are applied (patches.extract_patches).
    """
    n = probe_modes(probe).shape[-1]
    patches = extract_patches(obj, centres, n, interpolation=interpolation, pad=pad)  # (B?, P, N, N)
    psi = exit_wave(patches, probe)  # (B?, P, M, N, N)
    farfield = far_field(psi)  # (B?, P, M, N, N)
    return safe_sqrt(intensity(farfield))  # (B?, P, N, N)
