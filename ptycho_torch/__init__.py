"""ptycho_torch: ptychographic reconstruction in PyTorch (data bridge, physics, PtychoPINN trainer)."""
from __future__ import annotations

__version__ = "0.1.0"
