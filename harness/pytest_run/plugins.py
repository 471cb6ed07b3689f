"""The pytest plugins installed beside the harness (the `pytest11` entry points pytest loads on its own),
and which of them can change how a test ends or which tests run, and so what a proof shows.

Such a plugin is not forbidden: it acts when it is configured (or, for some, merely installed), and the
integrity gate already refuses a change that loads or disables one. `harness doctor` names each, with why,
so that the operator decides before a proof depends on it (`-p no:NAME` in `pytest.args` keeps it out of
the harness's runs; `PYTEST_DISABLE_PLUGIN_AUTOLOAD` in `pytest.env` keeps every plugin out unless named).
"""
from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from importlib import metadata
from types import MappingProxyType

PLUGIN_GROUP = "pytest11"

# distribution name (normalised as `normalise` does) -> what it does to a proof
OUTCOME_CHANGING: Mapping[str, str] = MappingProxyType({
    "pytest-rerunfailures": "reruns failing tests: a failure that passes on a rerun reads as a pass",
    "flaky": "reruns tests marked flaky: a failure that passes on a rerun reads as a pass",
    "pytest-retry": "retries failing tests: a failure that passes on a retry reads as a pass",
    "pytest-randomly": "shuffles the test order and reseeds random on every run: RED and GREEN run the "
                       "tests in different orders, so an order-dependent test can pass in one and fail in the other",
    "pytest-random-order": "shuffles the test order: an order-dependent test can pass in one run and fail in the next",
    "pytest-ignore-flaky": "turns the failures of tests marked flaky into passes",
    "pytest-testmon": "deselects tests it thinks the change did not affect",
    "pytest-picked": "runs only the tests of files git shows as changed",
    "pytest-custom-exit-code": "can turn pytest's `no tests collected` exit code into success",
})


@dataclass(frozen=True)
class InstalledPlugin:
    """One distribution that registers pytest plugins: its entry-point names (what `-p no:NAME` takes), and
    why it can change outcomes (None: not known to)."""

    distribution: str
    version: str
    entry_points: tuple[str, ...]
    changes_outcomes: str | None


def normalise(name: str) -> str:
    """A distribution name as PyPI compares them (PEP 503): lower case, runs of `-_.` as one `-`."""
    return re.sub(r"[-_.]+", "-", name).lower()


def installed_plugins() -> list[InstalledPlugin]:
    """The distributions on this interpreter's path that register `pytest11` entry points, sorted by name
    (the first of a name on the path wins, as importlib.metadata finds it)."""
    found: dict[str, tuple[str, list[str]]] = {}
    for entry_point in metadata.entry_points(group=PLUGIN_GROUP):
        dist = entry_point.dist
        name = normalise(dist.metadata["Name"] if dist is not None else entry_point.value.split(".")[0])
        version = dist.version if dist is not None else "?"
        _, names = found.setdefault(name, (version, []))
        if entry_point.name not in names:
            names.append(entry_point.name)
    return [InstalledPlugin(name, version, tuple(names), OUTCOME_CHANGING.get(name))
            for name, (version, names) in sorted(found.items())]
