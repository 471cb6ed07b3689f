"""The environment a proof's pytest runs in: the harness's own, less what would change what pytest selects or
how its tests end, plus what harness.yaml's `pytest.env` sets.

The operator's shell must not decide a proof: `PYTEST_ADDOPTS="-k nothing"` or `--deselect` of the RED test
there would turn RED or GREEN around without a trace in the change. So every pytest run of the harness
(proofs, gates, `harness selectors run` and `bisect`: their history is compared with the proofs') starts
without:

- every `PYTEST_*` variable: pytest and its plugins read this prefix (`PYTEST_ADDOPTS`, `PYTEST_PLUGINS`,
  `PYTEST_DISABLE_PLUGIN_AUTOLOAD`, `PYTEST_DEBUG_TEMPROOT`, pytest-timeout's `PYTEST_TIMEOUT`, and those an
  outer pytest sets: `PYTEST_CURRENT_TEST`, `PYTEST_VERSION`, `PYTEST_XDIST_*`);
- `PY_IGNORE_IMPORTMISMATCH` (pytest: a test module imported from another place is no longer an error),
  `PYTHONOPTIMIZE` (strips the `assert` statements of the code under test), `PYTHONWARNINGS` (turns warnings
  into errors, or hides them);
- the harness's own channels to its recorder plugin, which each run sets itself.

Kept: `PYTHONPATH` and everything else. `PYTHONPATH` decides where code is imported from, not which tests
run; the RED proof's isolation from the working tree (HARNESS-001) does not rest on it (the recorder hides
the working tree's modules in the base worktree, whatever `sys.path` says), and a project may need it to
import at all. A variable `pytest.env` sets is kept with the value it sets: that file is the base commit's
(docs/specs/evidence.md), and its `pytest.env` was judged when it was committed.
"""
from __future__ import annotations

from collections.abc import Mapping

PYTEST_PREFIX = "PYTEST_"
OUTCOME_VARIABLES = frozenset({"PY_IGNORE_IMPORTMISMATCH", "PYTHONOPTIMIZE", "PYTHONWARNINGS"})
# harness.pytest_run.runner (and its recorder plugin) set these per run; an outer harness's must not leak in.
HARNESS_CHANNELS = frozenset({"HARNESS_ISOLATE_FROM", "HARNESS_PYTEST_RECORDER_OUT"})


def changes_a_run(name: str) -> bool:
    """Whether pytest, a plugin or the interpreter reads `name` in a way that can change which tests run or
    how they end (the variables this module removes)."""
    return name.startswith(PYTEST_PREFIX) or name in OUTCOME_VARIABLES or name in HARNESS_CHANNELS


def removed_variables(environ: Mapping[str, str], configured: Mapping[str, str] | None = None) -> tuple[str, ...]:
    """The names (sorted) in `environ` that a pytest run does not inherit: those `changes_a_run` names,
    less those `configured` (pytest.env, or the run's own settings) sets again."""
    keep = configured or {}
    return tuple(sorted(name for name in environ if changes_a_run(name) and name not in keep))


def pytest_environ(environ: Mapping[str, str], configured: Mapping[str, str] | None = None) -> dict[str, str]:
    """`environ` without what `changes_a_run` names, with `configured` laid over it."""
    child = {name: value for name, value in environ.items() if not changes_a_run(name)}
    child.update(configured or {})
    return child
