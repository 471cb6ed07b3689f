"""benchmarks/RESULTS.md: every benchmark appends its section the same way (imported by the scripts here,
which run as `python benchmarks/<name>.py`, so this folder is on sys.path)."""
from __future__ import annotations

import os
import platform
from pathlib import Path


def append_section(results: Path, section: str) -> None:
    """Append `section` to `results` in one O_APPEND write: benchmarks running at the same time each
    append whole sections, never interleaved lines."""
    fd = os.open(results, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, section.encode("utf-8"))
    finally:
        os.close(fd)


def publish(results: Path, section: str, *, write: bool) -> None:
    """Print `section`, and append it to `results` when `write` (a benchmark's --no-write prints only)."""
    print(section, flush=True)
    if write:
        append_section(results, section)


def machine(threads: str, loads: tuple[float, float]) -> str:
    """The sentence a section gives its machine in: platform, CPUs, torch, `threads` (as the benchmark says
    them), and the load average at its start and end (loads)."""
    import torch  # here, not at the top: benchmarks without torch import this module too

    return (f"Machine: {platform.platform()}, {os.cpu_count()} logical CPUs shared with other jobs; torch "
            f"{torch.__version__}, {threads}; load average {loads[0]:.1f} at the start, {loads[1]:.1f} at the end")
