"""Fixtures and settings for the product's tests."""
from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
import torch

# On a machine with few cores, torch threads of parallel test workers fight: 2 threads per worker ran a
# training step several times slower than 1 (docs/findings.md). Each xdist worker gets one thread; a run
# without xdist keeps torch's default.
if os.environ.get("PYTEST_XDIST_WORKER"):
    torch.set_num_threads(1)


@pytest.fixture(scope="module")
def one_thread() -> Iterator[None]:
    """One torch thread for a module's tests, the previous count restored after it: intra-op threads fight
    over the shared cores, and the baselines' small FFTs ran 5x slower with 2 threads. A module asks for it
    with `pytestmark = pytest.mark.usefixtures("one_thread")`."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
