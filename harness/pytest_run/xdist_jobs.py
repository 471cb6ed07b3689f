"""How many processes the full suite runs in: `gates.full_suite.jobs` (`auto`, or a number) through
pytest-xdist, when xdist is installed where the suite's pytest runs; otherwise one process, and the
stage says so. Arguments that already choose (`-n`, `--numprocesses`, `-p no:xdist`) are left alone.
"""
from __future__ import annotations

import importlib.util
import os
import sys
from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path

from harness import proc
from harness.config.gates import AUTO, Jobs
from harness.pytest_run.environment import pytest_environ

PROBE_TIMEOUT_S = 120


def _chooses_workers(args: Sequence[str]) -> bool:
    """`-n 2`, `-n2`, `-nauto`, `--numprocesses=2`, `-p no:xdist`."""
    return any(a == "no:xdist" or a.startswith(("-n", "--numprocesses")) for a in args)


@lru_cache(maxsize=8)
def xdist_available(command: tuple[str, ...], cwd: str) -> bool:
    """Whether `command` (pytest's argv prefix) can load pytest-xdist: checked in this interpreter when
    it is the one pytest runs in, else by asking that pytest once (`-p xdist --version`)."""
    if command[:1] == (sys.executable,):
        return importlib.util.find_spec("xdist") is not None
    try:
        done = proc.run([*command, "-p", "xdist", "--version"], cwd=Path(cwd), env=pytest_environ(os.environ),
                        timeout_s=PROBE_TIMEOUT_S, capture=True)
    except proc.StartError:
        return False
    return done.ok


def full_suite_args(args: Sequence[str], jobs: Jobs, command: Sequence[str], cwd: Path) -> tuple[tuple[str, ...], str]:
    """(the full suite's arguments, a note for its stage reason: empty when nothing was chosen)."""
    if jobs == 1 or _chooses_workers(args):
        return tuple(args), ""
    if not xdist_available(tuple(command), str(cwd)):
        return tuple(args), "pytest-xdist is not installed, so the suite ran in one process"
    workers = "auto" if jobs == AUTO else str(jobs)
    return ("-p", "xdist", "-n", workers, *args), f"pytest-xdist, -n {workers}"
