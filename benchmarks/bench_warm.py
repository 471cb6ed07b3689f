"""Warm pytest starts against new interpreters: the CPU time and wall time of one harness pytest run.

Runs the same small suite (a module of `--tests` quick tests, the recorder plugin, a JUnit report: what a
RED or GREEN stage of a proof runs) through `harness.pytest_run.runner.run_pytest` `--runs` times cold
(`warm_start=False`: `python -m pytest`, a new interpreter each time) and `--runs` times warm (forks of the
warm server, harness/pytest_run/warm_server.py), the two modes alternating in rounds so that a change in
the machine's load hits both. CPU time is that of every process each mode started, the server included
(its children are counted when it is reaped, so each warm round closes its server): the server's own start
is paid once per round, as a harness command pays it once. Prints per-run medians and the ratio.

    python benchmarks/bench_warm.py [--runs 20] [--rounds 3] [--tests 5] [--no-write]
"""
from __future__ import annotations

import argparse
import os
import platform
import resource
import statistics
import sys
import tempfile
import time
from pathlib import Path

from results_file import append_section

from harness.pytest_run import warm
from harness.pytest_run.runner import run_pytest

ENV = {"PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1"}


def write_suite(root: Path, tests: int) -> None:
    (root / "tests").mkdir(parents=True)
    (root / "calc.py").write_text("def mul(a, b):\n    return a * b\n")
    body = "".join(f"\n\ndef test_mul_{i}():\n    assert mul({i}, 3) == {3 * i}\n" for i in range(tests))
    (root / "tests" / "test_calc.py").write_text("from calc import mul\n" + body)


def one_round(project: Path, out: Path, runs: int, warm_start: bool) -> tuple[float, float]:
    """(CPU seconds, wall seconds) per run, this mode, one round."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    for index in range(runs):
        run = run_pytest(["tests"], cwd=project, out_dir=out, name=f"{warm_start}-{index}", env=ENV, timeout_s=120,
                         warm_start=warm_start)
        if run.returncode != 0:
            raise SystemExit(f"the suite failed ({run.exit_meaning}): {run.log_path}")
    wall = time.perf_counter() - started
    warm.close_all()  # reaps the server, so its children's CPU time is counted here
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return cpu / runs, wall / runs


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=20, help="pytest runs per mode per round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--tests", type=int, default=5, help="tests in the suite")
    parser.add_argument("--results", type=Path, default=Path(__file__).resolve().parent / "RESULTS.md")
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args()
    load_before = os.getloadavg()
    measured: dict[bool, list[tuple[float, float]]] = {False: [], True: []}
    with tempfile.TemporaryDirectory(prefix="bench-warm-") as tmp:
        project = Path(tmp) / "project"
        write_suite(project, args.tests)
        for _ in range(args.rounds):
            for mode in (False, True):
                measured[mode].append(one_round(project, Path(tmp) / "out", args.runs, mode))
    load_after = os.getloadavg()
    cpu = {mode: statistics.median(c for c, _ in rows) for mode, rows in measured.items()}
    wall = {mode: statistics.median(w for _, w in rows) for mode, rows in measured.items()}
    stamp = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    text = "\n".join([
        f"## bench_warm: one pytest run, warm fork against a new interpreter ({stamp})",
        "",
        (f"- Command: `python benchmarks/bench_warm.py --runs {args.runs} --rounds {args.rounds} --tests "
         f"{args.tests}`"),
        (f"- Machine: {platform.platform()}, {os.cpu_count()} logical CPU(s); python {platform.python_version()}; "
         "one run at a time (no threads of its own)"),
        (f"- Load average (1, 5, 15 min): {', '.join(f'{v:.1f}' for v in load_before)} before, "
         f"{', '.join(f'{v:.1f}' for v in load_after)} after (a shared machine: compare within this section)"),
        "",
        "| start | CPU per run (s, median of rounds) | wall per run (s, median of rounds) |",
        "|---|---:|---:|",
        f"| new interpreter (`warm_start: false`) | {cpu[False]:.3f} | {wall[False]:.3f} |",
        f"| warm fork (default) | {cpu[True]:.3f} | {wall[True]:.3f} |",
        "",
        (f"Warm against cold: **{cpu[True] / cpu[False]:.2f}x the CPU time** and {wall[True] / wall[False]:.2f}x "
         f"the wall time per run (the warm figures include the server's start, once per round of {args.runs} "
         "runs)."),
    ]) + "\n"
    print(text)
    if not args.no_write:
        append_section(args.results, "\n" + text)
        print(f"appended to {args.results}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
