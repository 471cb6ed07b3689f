"""Far-field propagation between the exit-wave plane and the detector, and the measured intensity.

Conventions:
- F = fftshift(fft2(psi, norm="ortho")) over the last two axes: the orthonormal FFT keeps Parseval,
  sum |F|^2 == sum |psi|^2, and the zero frequency sits at detector pixel (N//2, N//2).
- back_propagate is the exact inverse (and, the FFT being unitary, the adjoint) of far_field.
- A field with a mode axis is (..., M, N, N); the M modes are mutually incoherent, so their intensities
  add, never their fields.
"""

from __future__ import annotations

import torch
from torch import Tensor


def far_field(psi: Tensor) -> Tensor:
    """Fraunhofer propagation over the last two axes: fftshift(fft2(psi, norm="ortho")), same shape."""
    return torch.fft.fftshift(torch.fft.fft2(psi, norm="ortho"), dim=(-2, -1))


def back_propagate(far: Tensor) -> Tensor:
    """Inverse of far_field: ifft2(ifftshift(F), norm="ortho") over the last two axes, same shape."""
    return torch.fft.ifft2(torch.fft.ifftshift(far, dim=(-2, -1)), norm="ortho")


def intensity(field: Tensor) -> Tensor:
    """Incoherent sum over the mode axis: (..., M, N, N) complex -> (..., N, N) real, sum_m |F_m|^2."""
    return (field.real.square() + field.imag.square()).sum(dim=-3)


def safe_sqrt(values: Tensor) -> Tensor:
    """sqrt for non-negative values whose gradient is 0 (not inf/NaN) where the value is 0."""
    tiny = torch.finfo(values.dtype).tiny ** 0.5  # sqrt(tiny) keeps 1/(2 sqrt(x)) finite in float32
    positive = values > tiny
    return torch.where(positive, torch.sqrt(torch.where(positive, values, torch.ones_like(values))), 0.0)
