"""The harness's own overhead per iteration, beside the pytest time measured in the same run.

Targets (issue: harness core): overhead per iteration (everything except pytest's time) under 0.5 s on a
ledger of 2,000 items; `harness ledger` on 5,000 items with 20 attempts each under 1 s.

    python benchmarks/bench_harness.py [--items 2000] [--table-items 5000] [--attempts 20] [--repeat 3]
"""
from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from harness.main import main

PROJECT = {
    "harness.yaml": "pytest:\n  env:\n    PYTEST_DISABLE_PLUGIN_AUTOLOAD: \"1\"\ncommit:\n  name: Bench\n  email: b@x\n",
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
    args = parser.parse_args()
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
