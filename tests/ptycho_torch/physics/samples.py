"""Seeded inputs shared by the physics tests."""
from __future__ import annotations

import numpy as np
import torch


def complex_field(shape: tuple[int, ...], seed: int, dtype: torch.dtype = torch.complex64) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    return torch.randn(shape, generator=gen, dtype=dtype)


def disk(n: int, radius: float, supersample: int = 8) -> np.ndarray:
    """Anti-aliased disk (area fraction per pixel) centred at pixel (n//2, n//2)."""
    yy, xx = np.mgrid[:n, :n] - n // 2
    sub = (np.arange(supersample) + 0.5) / supersample - 0.5
    acc = np.zeros((n, n))
    for dy in sub:
        for dx in sub:
            acc += (yy + dy) ** 2 + (xx + dx) ** 2 <= radius**2
    return acc / supersample**2
