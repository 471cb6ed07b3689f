"""The package's one ptychographic forward model, used by the simulator, the network and the baselines.

    from ptycho_torch import physics
    amplitude = physics.forward(obj, probe, centres)

Modules, each with the conventions it fixes:
- patches: positions (x, y) in object pixels, sub-pixel extraction and its adjoint, the one rounding rule
  (nearest_pixel), the Fourier pad, the frame that holds a scan;
- propagation: far field fftshift(fft2(., norm="ortho")) (Parseval holds), back-propagation, intensity;
- forward: the beam moves over a fixed object (the object window at the nearest pixel, the probe moved by
  the sub-pixel rest), probe modes (incoherent), exit wave, diffraction amplitude, forward() as named steps;
- noise: the scale s with counts = (A * s)^2, Poisson counts, Poisson NLL and amplitude MAE;
- illumination: the probe's intensity summed over the scan positions.
"""

from __future__ import annotations

from ptycho_torch.errors import PhysicsError
from ptycho_torch.physics.forward import (
    beam_amplitude,
    beam_offsets,
    diffraction_amplitude,
    exit_wave,
    forward,
    object_windows,
    probe_modes,
    shift_probe,
)
from ptycho_torch.physics.illumination import illumination, probe_weights
from ptycho_torch.physics.noise import (
    amplitude_mae,
    intensity_scale,
    photon_scale,
    poisson_amplitudes,
    poisson_nll,
    poisson_nll_counts,
)
from ptycho_torch.physics.patches import (
    FOURIER_PAD,
    Interpolation,
    central_window,
    extract_patches,
    fourier_shift,
    frame_shape,
    nearest_pixel,
    pixel_range,
    place_patches,
    reassemble_patches,
)
from ptycho_torch.physics.propagation import back_propagate, far_field, intensity, safe_sqrt

__all__ = [
    "FOURIER_PAD",
    "Interpolation",
    "PhysicsError",
    "amplitude_mae",
    "back_propagate",
    "beam_amplitude",
    "beam_offsets",
    "central_window",
    "diffraction_amplitude",
    "exit_wave",
    "extract_patches",
    "far_field",
    "forward",
    "fourier_shift",
    "frame_shape",
    "illumination",
    "intensity",
    "intensity_scale",
    "nearest_pixel",
    "object_windows",
    "photon_scale",
    "pixel_range",
    "place_patches",
    "poisson_amplitudes",
    "poisson_nll",
    "poisson_nll_counts",
    "probe_modes",
    "probe_weights",
    "reassemble_patches",
    "safe_sqrt",
    "shift_probe",
]
