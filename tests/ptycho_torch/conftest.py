"""Fixtures and settings for the product's tests."""
from __future__ import annotations

import os

import torch

# On a machine with few cores, torch threads of parallel test workers fight: 2 threads per worker ran a
# training step several times slower than 1 (docs/findings.md). Each xdist worker gets one thread; a run
# without xdist keeps torch's default.
if os.environ.get("PYTEST_XDIST_WORKER"):
    torch.set_num_threads(1)
