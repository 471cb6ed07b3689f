"""The demo scenario: a tiny ptycho-style package whose bridge reads only the legacy `diff3d` key.

This is the bug that started the project: training failed with `KeyError: 'diff3d'` on NPZs written with
the canonical `diffraction` key. The ledger starts with that one item; after it is built, the scripted
planner (scripted_planner.py) proposes the next one, DEMO-002. The scripted agent (scripted_agent.py)
applies the stored changes below.
"""
from __future__ import annotations

HARNESS_YAML = """\
# The demo's harness settings: the agent and the planner are scripted programs shipped with the harness.
agent:
  command: ["{python}", "-m", "harness.demo.scripted_agent"]
  timeout_s: 120
planner:
  command: ["{python}", "-m", "harness.demo.scripted_planner"]
  timeout_s: 60
pytest:
  env:
    PYTEST_DISABLE_PLUGIN_AUTOLOAD: "1"
  timeout_s: 300
max_attempts: 3
commit:
  name: ptycho-harness demo
  email: demo@localhost
"""

LEDGER = """\
# Fix Plan

## [DEMO-001] Bridge accepts the canonical diffraction key
- Status: pending
- Priority: 1
- Initiative: DEMO-MEMMAP
- Slug: canonical_diffraction_key
- Spec: docs/data_contract.md#keys
- RED: tests/test_bridge.py::test_reads_canonical_diffraction_key
- Regression: tests/test_bridge.py
- Exit-Criteria: NPZs with `diffraction` or legacy `diff3d` both load as float32 (N,H,W)

Training fails with `KeyError: 'diff3d'` on NPZs written with the canonical `diffraction` key.
"""

# What the scripted planner proposes once DEMO-001 is done: the next item, in the ledger's grammar.
PLANNER_PROPOSAL = """\
## [DEMO-002] Bridge reports how many patterns it holds
- Status: pending
- Priority: 2
- Depends-On: DEMO-001
- Initiative: DEMO-MEMMAP
- Slug: pattern_count
- RED: tests/test_count.py::test_count_patterns
- Regression: tests/test_bridge.py
- Exit-Criteria: `count_patterns(path)` returns N
"""

SPEC = """\
# Data contract

## Keys
Readers MUST accept the canonical `diffraction` key and fall back to the legacy `diff3d` key, preferring
the canonical one. The array is float32 with shape (N,H,W).
"""

BRIDGE = '''\
"""Reads diffraction stacks from NPZ files."""
import numpy as np


def load_diffraction(path):
    """The (N,H,W) float32 diffraction stack of an NPZ file."""
    with np.load(path) as data:
        return np.asarray(data["diff3d"], dtype=np.float32)
'''

BRIDGE_FIXED = '''\
"""Reads diffraction stacks from NPZ files."""
import numpy as np

KEYS = ("diffraction", "diff3d")  # canonical first, then the legacy name


def load_diffraction(path):
    """The (N,H,W) float32 diffraction stack of an NPZ file (canonical key preferred)."""
    with np.load(path) as data:
        for key in KEYS:
            if key in data.files:
                return np.asarray(data[key], dtype=np.float32)
    raise KeyError(f"{path}: neither 'diffraction' nor 'diff3d' is present")
'''

TEST_BRIDGE = '''\
import numpy as np

from minipty.bridge import load_diffraction


def test_reads_legacy_diff3d_key(tmp_path):
    path = tmp_path / "legacy.npz"
    np.savez(path, diff3d=np.ones((3, 8, 8), dtype=np.float32))
    stack = load_diffraction(path)
    assert stack.shape == (3, 8, 8) and stack.dtype == np.float32
'''

TEST_BRIDGE_CANONICAL = TEST_BRIDGE + '''

def test_reads_canonical_diffraction_key(tmp_path):
    path = tmp_path / "canonical.npz"
    np.savez(path, diffraction=np.full((4, 8, 8), 2.0, dtype=np.float64))
    stack = load_diffraction(path)
    assert stack.shape == (4, 8, 8) and stack.dtype == np.float32
    assert float(stack.max()) == 2.0
'''

TEST_COUNT_SKIPPED = '''\
import numpy as np
import pytest

from minipty.bridge import load_diffraction


@pytest.mark.skip(reason="count_patterns is not written yet")
def test_count_patterns(tmp_path):
    from minipty.bridge import count_patterns

    path = tmp_path / "data.npz"
    np.savez(path, diffraction=np.ones((5, 8, 8), dtype=np.float32))
    assert count_patterns(path) == 5 == len(load_diffraction(path))
'''

COUNT_IMPL = BRIDGE_FIXED + '''

def count_patterns(path):
    return len(load_diffraction(path))
'''

BASE_FILES = {
    "harness.yaml": HARNESS_YAML,
    "docs/fix_plan.md": LEDGER,
    "docs/data_contract.md": SPEC,
    "minipty/__init__.py": "",
    "minipty/bridge.py": BRIDGE,
    "tests/__init__.py": "",
    "tests/test_bridge.py": TEST_BRIDGE,
    ".gitignore": "__pycache__/\n",
}

# What the scripted agent writes for each item, in order: the test first, then the fix.
AGENT_CHANGES: dict[str, list[tuple[str, str]]] = {
    "DEMO-001": [("tests/test_bridge.py", TEST_BRIDGE_CANONICAL), ("minipty/bridge.py", BRIDGE_FIXED)],
    # A "RED" test that only skips: the harness must reject it and keep the work on a ref.
    "DEMO-002": [("tests/test_count.py", TEST_COUNT_SKIPPED), ("minipty/bridge.py", COUNT_IMPL)],
}
