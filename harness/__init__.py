"""ptycho-harness: a TDD loop harness that runs and proves each step itself."""
from __future__ import annotations

__version__ = "0.1.0"
