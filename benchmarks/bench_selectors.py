"""Benchmark: batched selector runs against one pytest process per selector.

    python benchmarks/bench_selectors.py                # 200 selectors over 50 files; appends to RESULTS.md
    python benchmarks/bench_selectors.py --sample 20 --no-write     # quick: 20 solo runs, extrapolated
    python benchmarks/bench_selectors.py --fast-env        # PYTEST_DISABLE_PLUGIN_AUTOLOAD=1 in both modes

Generates a suite of `--files` test modules (passing, failing, parametrised, class-based and skipped
tests) and `--per-file` selectors per module (node ids of a function, a class, a parametrised function,
and a failing function), then runs them through `harness.selectors.runs.run_batched`: batched (as
`harness selectors run` does) and with `batched=False`, one pytest process per selector. Both use the
same pytest (with the plugins installed here, unless --fast-env), and the per-selector results (status,
counts, failing node ids, node ids) must be identical. With --jobs N the batched run is repeated under
pytest-xdist. Timings are wall-clock on a shared machine; the ratio is taken within one run.
"""
from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import pytest as pytest_module
from results_file import append_section

from harness.pytest_run.runner import PytestSettings, parse_selector
from harness.selectors.runs import SelectorResult, run_batched

HERE = Path(__file__).resolve()
MODULE = textwrap.dedent('''
    import pytest

    def test_a():
        assert {i} >= 0

    def test_b():
        assert {i} % 7 != 0, "every seventh module fails"

    class TestC:
        def test_c1(self):
            pass

        def test_c2(self):
            assert "{i}"

    @pytest.mark.parametrize("n", [0, 1, 2])
    def test_p(n):
        assert not (n == 2 and {i} % 5 == 0)

    @pytest.mark.skip(reason="never here")
    def test_skip():
        pass
''')
SELECTORS_PER_MODULE = ("{m}::test_a", "{m}::TestC", "{m}::test_p", "{m}::test_b")


def make_suite(root: Path, n_files: int, per_file: int) -> list[str]:
    """Write the suite under `root`; return the selectors (per_file of SELECTORS_PER_MODULE per module)."""
    (root / "tests").mkdir(parents=True)
    (root / "pytest.ini").write_text("[pytest]\n")
    selectors = []
    for i in range(n_files):
        module = f"tests/test_mod_{i:03d}.py"
        (root / module).write_text(MODULE.format(i=i))
        selectors += [s.format(m=module) for s in SELECTORS_PER_MODULE[:per_file]]
    return selectors


def comparable(r: SelectorResult) -> tuple:
    return r.selector, r.status.value, dict(r.counts), sorted(r.failing), sorted(r.nodeids)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--files", type=int, default=50)
    ap.add_argument("--per-file", type=int, default=4, choices=range(1, len(SELECTORS_PER_MODULE) + 1))
    ap.add_argument("--sample", type=int, default=0,
                    help="run only this many selectors one by one and extrapolate (0: all of them)")
    ap.add_argument("--jobs", type=int, default=2, help="also time the batched run with -n JOBS (1: skip)")
    ap.add_argument("--fast-env", action="store_true", help="PYTEST_DISABLE_PLUGIN_AUTOLOAD=1 for every run")
    ap.add_argument("--results", default=str(HERE.parent / "RESULTS.md"))
    ap.add_argument("--no-write", action="store_true", help="print only; do not append to RESULTS.md")
    args = ap.parse_args()

    env = {"PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1"} if args.fast_env else {}
    options = PytestSettings(env=env, timeout_s=600)
    with tempfile.TemporaryDirectory(prefix="bench-selectors-") as tmp:
        root = Path(tmp) / "suite"
        raws = make_suite(root, args.files, args.per_file)
        selectors = [parse_selector(r) for r in raws]

        t0 = time.perf_counter()
        batched = run_batched(selectors, cwd=root, out_dir=Path(tmp) / "batched", options=options)
        batched_s = time.perf_counter() - t0
        print(f"batched: {len(selectors)} selectors in {len(batched.batches)} process(es): {batched_s:.2f} s",
              flush=True)

        xdist_s = None
        if args.jobs > 1:
            t0 = time.perf_counter()
            parallel = run_batched(selectors, cwd=root, out_dir=Path(tmp) / "xdist", options=options,
                                     jobs=args.jobs)
            xdist_s = time.perf_counter() - t0
            assert [comparable(r) for r in parallel.results] == [comparable(r) for r in batched.results]
            print(f"batched with -n {args.jobs}: {xdist_s:.2f} s", flush=True)

        chosen = selectors[: args.sample] if args.sample else selectors
        t0 = time.perf_counter()
        solo = run_batched(chosen, cwd=root, out_dir=Path(tmp) / "solo", options=options, batched=False)
        solo_measured_s = time.perf_counter() - t0
        solo_s = solo_measured_s * len(selectors) / len(chosen)
        print(f"one process per selector: {len(chosen)} run(s) in {solo_measured_s:.1f} s"
              f"{f', {solo_s:.0f} s extrapolated to {len(selectors)}' if args.sample else ''}", flush=True)

        by_selector = {r.selector: comparable(r) for r in batched.results}
        mismatches = [r.selector for r in solo.results if comparable(r) != by_selector[r.selector]]
        statuses: dict[str, int] = {}
        for r in batched.results:
            statuses[r.status.value] = statuses.get(r.status.value, 0) + 1

    speedup = solo_s / batched_s
    today = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    command = ("python benchmarks/bench_selectors.py" + (" --fast-env" if args.fast_env else "")
               + (f" --sample {args.sample}" if args.sample else ""))
    machine = (f"{platform.platform()}, {os.cpu_count()} CPU(s), python {platform.python_version()}, "
               f"pytest {pytest_module.__version__}, plugin autoload "
               f"{'off' if args.fast_env else 'on (the plugins installed here)'}")
    outcome = ", ".join(f"{n} {k}" for k, n in statuses.items())
    extrapolated = f" (extrapolated from {len(chosen)})" if args.sample else ""
    same = "identical" if not mismatches else f"{len(mismatches)} DIFFER: {mismatches[:5]}"
    lines = [
        "",
        f"## Selector runs: batched vs one pytest process per selector ({today})",
        "",
        f"`{command}` on {machine}.",
        (f"Suite: {args.files} modules x 8 tests, {len(selectors)} selectors (node ids of functions, "
         f"classes, parametrised functions); statuses: {outcome}."),
        "",
        "| mode | pytest processes | wall time (s) |",
        "|---|---|---|",
        f"| one process per selector | {len(selectors)} | {solo_s:.1f}{extrapolated} |",
        f"| batched (`harness selectors run`) | {len(batched.batches)} | {batched_s:.2f} |",
    ]
    if xdist_s is not None:
        lines.append(f"| batched, `--jobs {args.jobs}` (pytest-xdist) | {len(parallel.batches)} | "
                     f"{xdist_s:.2f} |")
    lines += [
        "",
        (f"Speed-up of the batched run: **{speedup:.0f}x** (target: at least 50x). Per-selector results "
         f"(status, counts, failing node ids, node ids) of the {len(chosen)} selector(s) run both ways: "
         f"{same}."),
        "",
    ]
    section = "\n".join(lines)
    print(section)
    if not args.no_write:
        append_section(Path(args.results), section)
        print(f"appended to {args.results}")
    return 1 if mismatches else 0


if __name__ == "__main__":
    sys.exit(main())
