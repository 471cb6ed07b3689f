"""The harness's own overhead per iteration, beside the pytest time measured in the same run; and an
iteration's wall time against the sum of its stages run one after another, in the same run.

Targets (issue: harness core): overhead per iteration (everything except pytest's time) under 0.5 s on a
ledger of 2,000 items; `harness ledger` on 5,000 items with 20 attempts each under 1 s. The overhead is
measured with `concurrent_stages: false`, where pytest's time is one stretch of the wall time.

Stage timing (issue 12): the same change (a new function, its strong test, `Mutation: required`) on a
project whose suite has `--suite-modules` slow modules, proven with stages one after another
(`concurrent_stages: false`) and with stages in different trees at once (`true`), `--rounds` times each,
interleaved. Each iteration's attempt.json gives its stages' wall times; their sum is what running them
one after another costs. `--cores N` pins the benchmark (and so every process it starts) to N of this
machine's cores and tells pytest-xdist's `-n auto` the same (PYTEST_XDIST_AUTO_NUM_WORKERS in the
project's `pytest.env`), to see
what `concurrent_stages: auto` should do on a machine of that size.

    python benchmarks/bench_harness.py [--items 2000] [--table-items 5000] [--attempts 20] [--repeat 3]
    python benchmarks/bench_harness.py --what stages [--suite-modules 12] [--rounds 1] [--cores N] [--no-write]
"""
from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from results_file import append_section

from harness.main import main

PROJECT = {
    "harness.yaml": ("pytest:\n  env:\n    PYTEST_DISABLE_PLUGIN_AUTOLOAD: \"1\"\ncommit:\n  name: Bench\n  email: b@x\n"
                     "concurrent_stages: false\n"),
    "pkg/__init__.py": "",
    "pkg/calc.py": "def add(a, b):\n    return a + b\n",
    "tests/__init__.py": "",
    "tests/test_calc.py": "from pkg.calc import add\n\n\ndef test_add():\n    assert add(1, 2) == 3\n",
}
CHANGE = {
    "tests/test_mul.py": "from pkg.calc import mul\n\n\ndef test_mul():\n    assert mul(2, 3) == 6\n",
    "pkg/calc.py": "def add(a, b):\n    return a + b\n\n\ndef mul(a, b):\n    return a * b\n",
}


def ledger_text(items: int, attempts: int, first_selectors: bool) -> str:
    out = ["# Fix Plan", ""]
    for i in range(items):
        out += [f"## [ITEM-{i:05d}] Make part {i} of the pipeline behave", "- Status: pending",
                f"- Priority: {i % 7 + (0 if i == 0 else 1)}"]
        if i:
            out.append(f"- Depends-On: ITEM-{i - 1:05d}")
        if i == 0 and first_selectors:
            out += ["- RED: tests/test_mul.py::test_mul", "- Regression: tests/test_calc.py"]
        else:
            out += [f"- RED: tests/test_part_{i}.py::test_behaves", f"- Regression: tests/test_part_{i}.py"]
        out += ["", "Context for this item.", ""]
        if attempts:
            out.append("### Attempts History")
            out += [f"- 2025-11-06T08:{j % 60:02d}:00Z · #{j + 1} · FAILED at red · 3f2a1bc · "
                    f"plans/active/ITEM-{i:05d}/reports/2025-11-06T08{j % 60:02d}00Z/part/analysis/summary.md"
                    for j in range(attempts)]
            out.append("")
    return "\n".join(out)


def git(repo: Path, *args: str) -> None:
    subprocess.run(["git", *args], cwd=repo, check=True, capture_output=True)


def make_repo(root: Path, ledger: str) -> Path:
    root.mkdir(parents=True)
    git(root, "init", "-q", "-b", "main")
    git(root, "config", "user.name", "Bench")
    git(root, "config", "user.email", "b@x")
    for rel, text in {**PROJECT, "docs/fix_plan.md": ledger}.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)
    git(root, "add", "-A")
    git(root, "commit", "-qm", "base")
    return root


def one_iteration(workdir: Path, items: int, n: int) -> tuple[float, float, float]:
    repo = make_repo(workdir / f"iter{n}", ledger_text(items, 0, first_selectors=True))
    for rel, text in CHANGE.items():
        (repo / rel).write_text(text)
    start, cpu_start = time.perf_counter(), time.process_time()
    with contextlib.redirect_stdout(io.StringIO()):
        code = main(["run", "-C", str(repo), "--no-agent", "ITEM-00000"])
    wall, cpu = time.perf_counter() - start, time.process_time() - cpu_start
    if code != 0:
        raise SystemExit(f"the benchmark iteration failed (exit {code}); see {repo}")
    rel = subprocess.run(["git", "log", "-1", "--format=%(trailers:key=Harness-Evidence,valueonly)"],
                         cwd=repo, capture_output=True, text=True, check=True).stdout.strip()
    record = json.loads((repo / rel / "attempt.json").read_text())
    pytest_s = sum(sel["duration_s"] for stage in record["stages"] for sel in stage["selectors"])
    return wall, pytest_s, cpu


STRONG_MUL_TEST = ("from pkg.calc import mul\n\n\ndef test_mul():\n    assert mul(3, 4) == 12\n"
                   "    assert mul(-2, 5) == -10\n    assert mul(7, 0) == 0\n")
SLOW_MODULE = ("import time\n\n\ndef test_part():\n    time.sleep(0.2)\n"
               "    assert sum(i * i for i in range(200_000)) > 0\n")


def stage_timing(workdir: Path, suite_modules: int, concurrent: bool, xdist_workers: int | None = None
                 ) -> tuple[float, dict]:
    """One iteration on the timing project; (wall time of `harness run`, its attempt.json). `xdist_workers`:
    what the full suite's `-n auto` resolves to (pytest.env: the harness runs pytest without the
    operator's PYTEST_* variables)."""
    ledger = ("# Fix Plan\n\n## [ITEM-00000] calc gains mul\n- RED: tests/test_mul.py::test_mul\n"
              "- Regression: tests/test_calc.py\n- Mutation: required\n")
    name = "concurrent" if concurrent else "sequential"
    root = workdir / f"stages-{name}"
    root.mkdir(parents=True)
    git(root, "init", "-q", "-b", "main")
    git(root, "config", "user.name", "Bench")
    git(root, "config", "user.email", "b@x")
    files = {**PROJECT, "docs/fix_plan.md": ledger,
             **{f"tests/test_part_{i:02d}.py": SLOW_MODULE for i in range(suite_modules)}}
    files["harness.yaml"] = files["harness.yaml"].replace("concurrent_stages: false", f"concurrent_stages: {str(concurrent).lower()}")
    if xdist_workers:
        files["harness.yaml"] = files["harness.yaml"].replace(
            '    PYTEST_DISABLE_PLUGIN_AUTOLOAD: "1"\n',
            f'    PYTEST_DISABLE_PLUGIN_AUTOLOAD: "1"\n    PYTEST_XDIST_AUTO_NUM_WORKERS: "{xdist_workers}"\n')
    for rel, text in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)
    git(root, "add", "-A")
    git(root, "commit", "-qm", "base")
    (root / "tests/test_mul.py").write_text(STRONG_MUL_TEST)
    (root / "pkg/calc.py").write_text(CHANGE["pkg/calc.py"])
    start, cpu_start = time.perf_counter(), _tree_cpu()
    with contextlib.redirect_stdout(io.StringIO()):
        code = main(["run", "-C", str(root), "--no-agent", "ITEM-00000"])
    wall = time.perf_counter() - start
    rel = subprocess.run(["git", "log", "-1", "--format=%(trailers:key=Harness-Evidence,valueonly)"],
                         cwd=root, capture_output=True, text=True, check=True).stdout.strip()
    record = json.loads((root / rel / "attempt.json").read_text())
    if code != 0:
        raise SystemExit(f"the {name} iteration failed (exit {code}): {record['reason']}; see {root}")
    record["bench_cpu_s"] = _tree_cpu() - cpu_start
    return wall, record


def _tree_cpu() -> float:
    """CPU seconds (user + system) of this process and of every child process it has waited for."""
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def _median(values: list[float]) -> float:
    ordered = sorted(values)
    mid = len(ordered) // 2
    return ordered[mid] if len(ordered) % 2 else (ordered[mid - 1] + ordered[mid]) / 2


def stages_section(workdir: Path, suite_modules: int, rounds: int, cores: int | None) -> str:
    load_before = os.getloadavg()[0]
    runs: dict[bool, list[tuple[float, dict]]] = {False: [], True: []}
    for n in range(rounds):  # interleaved, so a change in the machine's load falls on both
        for concurrent in (False, True):
            runs[concurrent].append(stage_timing(workdir / f"round{n}", suite_modules, concurrent, cores))
    load_after = os.getloadavg()[0]
    stamp = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    record = runs[True][0][1]
    full_suite = next(s["reason"] for s in record["stages"] if s["name"] == "full_suite")
    stages = ", ".join(s["name"] for s in record["stages"])
    command = (f"python benchmarks/bench_harness.py --what stages --suite-modules {suite_modules}"
               + (f" --rounds {rounds}" if rounds != 1 else "") + (f" --cores {cores}" if cores else ""))
    used = len(os.sched_getaffinity(0))
    lines = [
        f"## bench_harness: an iteration's wall time against its stages run one after another ({stamp})",
        "",
        (f"`{command}` on {platform.platform()}, {os.cpu_count()} CPU(s)"
         + (f", pinned to {used} of them (xdist `-n auto`: {used} worker(s))" if cores else "")
         + f", python {platform.python_version()}; load average {load_before:.1f} before, {load_after:.1f} "
         "after (a shared machine: compare within this section)."),
        (f"One change (`mul` and its strong test, `Mutation: required`) proven on a project whose suite has "
         f"{suite_modules} modules of 0.2 s sleep + CPU work each; stages: {stages}. "
         f"{rounds} round(s), the two modes interleaved."),
        "",
        ("| stages | `harness run` wall (s), median | runs (s) | CPU time (s), median | stage wall times added up "
         "(s), median | first stage start to last end (s), median |"),
        "|---|---:|---|---:|---:|---:|",
    ]
    for concurrent, label in ((False, "one after another (`concurrent_stages: false`)"),
                              (True, "in different trees at once (`concurrent_stages: true`)")):
        walls = [w for w, _ in runs[concurrent]]
        sums = [r["timing"]["stages_sum_s"] for _, r in runs[concurrent]]
        spans = [r["timing"]["stages_span_s"] for _, r in runs[concurrent]]
        cpus = [r["bench_cpu_s"] for _, r in runs[concurrent]]
        lines.append(f"| {label} | {_median(walls):.1f} | {', '.join(f'{w:.1f}' for w in walls)} | "
                     f"{_median(cpus):.1f} | {_median(sums):.1f} | {_median(spans):.1f} |")
    lines += ["", "Stages of the first concurrent iteration (seconds after the first stage started):", "",
              "| stage | start | wall |", "|---|---:|---:|"]
    lines += [f"| {s['name']} | {s['start_s']:.1f} | {s['wall_s']:.1f} |" for s in record["stages"]]
    at_once, one_by_one = _median([w for w, _ in runs[True]]), _median([w for w, _ in runs[False]])
    lines += ["", (f"Same run: stages at once took {at_once / one_by_one:.2f}x the wall time of stages one after "
                   f"another (medians, {at_once:.1f} s against {one_by_one:.1f} s). Full suite: `{full_suite}`."), ""]
    return "\n".join(lines)


def ledger_table(workdir: Path, items: int, attempts: int, repeat: int) -> tuple[float, float]:
    repo = make_repo(workdir / "table", ledger_text(items, attempts, first_selectors=False))
    best_in_process = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        with contextlib.redirect_stdout(io.StringIO()):
            main(["ledger", "-C", str(repo)])
        best_in_process = min(best_in_process, time.perf_counter() - start)
    best_cli = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        subprocess.run([sys.executable, "-m", "harness", "ledger", "-C", str(repo)], check=True,
                       stdout=subprocess.DEVNULL)
        best_cli = min(best_cli, time.perf_counter() - start)
    return best_in_process, best_cli


def main_bench() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=2000)
    parser.add_argument("--table-items", type=int, default=5000)
    parser.add_argument("--attempts", type=int, default=20)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--what", choices=("all", "overhead", "stages"), default="all")
    parser.add_argument("--suite-modules", type=int, default=12)
    parser.add_argument("--rounds", type=int, default=1, help="stages: iterations per mode, interleaved")
    parser.add_argument("--cores", type=int, default=None,
                        help="stages: pin the benchmark and its processes to this many of the machine's cores")
    parser.add_argument("--results", type=Path, default=Path(__file__).resolve().parent / "RESULTS.md")
    parser.add_argument("--no-write", action="store_true", help="print the stage timing; do not append it")
    args = parser.parse_args()
    if args.cores:
        os.sched_setaffinity(0, sorted(os.sched_getaffinity(0))[:args.cores])
    if args.what in ("all", "stages"):
        with tempfile.TemporaryDirectory() as tmp:
            section = stages_section(Path(tmp), args.suite_modules, args.rounds, args.cores)
        print(section)
        if not args.no_write:
            append_section(args.results, "\n" + section)
            print(f"appended to {args.results}")
    if args.what == "stages":
        return
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        runs = [one_iteration(workdir, args.items, n) for n in range(args.repeat)]
        table_s, table_cli_s = ledger_table(workdir, args.table_items, args.attempts, args.repeat)
    best = min(runs, key=lambda r: r[0] - r[1])
    overhead = best[0] - best[1]
    print(f"machine: {platform.machine()} {os.cpu_count()} cores, python {platform.python_version()}, "
          f"load average {os.getloadavg()[0]:.1f}")
    print(f"iteration on a {args.items}-item ledger: wall {best[0]:.2f} s, pytest {best[1]:.2f} s, "
          f"harness overhead {overhead:.2f} s wall (target < 0.5 s; ratio overhead/pytest {overhead / best[1]:.2f}); "
          f"CPU of the harness process itself {best[2]:.2f} s")
    print(f"`harness ledger` on {args.table_items} items x {args.attempts} attempts: {table_s:.2f} s in process, "
          f"{table_cli_s:.2f} s as a command incl. interpreter start (target < 1 s)")


if __name__ == "__main__":
    main_bench()
