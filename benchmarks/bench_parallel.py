"""`harness loop` with 1, 2 and 4 workers on a ledger of independent items, measured in one run.

Each item asks for one function and its test; a scripted agent takes T seconds (T = 10 by default) and
then writes both. Every run starts from a fresh copy of the same repository and goes until the ledger is
empty; the wall time includes everything the harness does: the agents, each worker's proof (collect,
RED at base, GREEN, regression, full suite) and, with workers, the gates re-run on each merged tree.
1 worker is today's serial loop (`harness loop --until-empty`). Targets (issue 13): with T = 10 on a
2-core machine, 2 workers <= 0.65x and 4 workers <= 0.45x of the serial wall time.

    python benchmarks/bench_parallel.py [--items 8] [--agent-seconds 10] [--rounds 1] [--no-write]
    python benchmarks/bench_parallel.py --two-clones [...]

`--two-clones` measures several machines on one remote instead (README, "Several machines, one remote"):
the same ledger on a bare remote with `push` and `leases` configured, worked through by one clone's
serial loop, then by two clones' serial loops at once (two harnesses on this machine standing in for two
machines); the wall time runs until both have stopped, and the remote must hold one GREEN commit per item.

Rounds interleave the three modes (serial, 2, 4, serial, ...) so that a change of the machine's load
hits them alike; the table gives the median of each mode, and the load average is recorded around every
run: on a shared machine the figures move with it.
"""
from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from results_file import append_section

HERE = Path(__file__).resolve().parent
AGENT = """\
import os, sys, time
from pathlib import Path
sys.stdin.read()
time.sleep(float(sys.argv[1]))
n = os.environ["HARNESS_ITEM"].split("-")[1]
Path(f"pkg/f{n}.py").write_text(f"def f{n}(x):\\n    return x + {n}\\n")
Path(f"tests/test_f{n}.py").write_text(
    f"from pkg.f{n} import f{n}\\n\\n\\ndef test_f{n}():\\n    assert f{n}(1) == 1 + {n}\\n")
"""


def git(repo: Path, *args: str) -> None:
    subprocess.run(["git", *args], cwd=repo, check=True, capture_output=True)


def make_repo(root: Path, items: int, agent_seconds: float) -> Path:
    agent = root / "agent.py"
    agent.write_text(AGENT)
    repo = root / "project"
    files = {
        "harness.yaml": ("pytest:\n  env:\n    PYTEST_DISABLE_PLUGIN_AUTOLOAD: \"1\"\n"
                         "commit:\n  name: Bench\n  email: bench@example.invalid\n"
                         f"agent:\n  command: [\"{{python}}\", \"{agent}\", \"{agent_seconds}\"]\n"),
        "pkg/__init__.py": "",
        "tests/__init__.py": "",
        "tests/test_base.py": "def test_base():\n    assert True\n",
        "docs/fix_plan.md": "# Fix Plan\n\n" + "\n".join(
            f"## [F-{k}] f{k} adds {k}\n- Status: pending\n- RED: tests/test_f{k}.py\n" for k in range(1, items + 1)),
    }
    for rel, text in files.items():
        (repo / rel).parent.mkdir(parents=True, exist_ok=True)
        (repo / rel).write_text(text)
    git(repo, "init", "-q", "-b", "main")
    git(repo, "config", "user.name", "Bench")
    git(repo, "config", "user.email", "bench@example.invalid")
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "base")
    return repo


LEASES_YAML = "push:\n  remote: origin\n  branch: main\nleases:\n  enabled: true\n  ttl: 600\n"


def run_clones(workdir: Path, label: str, items: int, agent_seconds: float, clones: int) -> dict:
    """`clones` serial loops at once, each on its own clone of one bare remote, until each stops."""
    root = workdir / label
    root.mkdir()
    repo = make_repo(root, items, agent_seconds)
    (repo / "harness.yaml").write_text((repo / "harness.yaml").read_text() + LEASES_YAML)
    git(repo, "commit", "-qam", "push and leases")
    remote = root / "remote.git"
    git(root, "init", "-q", "--bare", "-b", "main", str(remote))
    git(repo, "remote", "add", "origin", str(remote))
    git(repo, "push", "-q", "origin", "HEAD:refs/heads/main")
    repos = [repo]
    for k in range(1, clones):
        git(root, "clone", "-q", str(remote), f"clone{k}")
        git(root / f"clone{k}", "config", "user.name", "Bench")
        git(root / f"clone{k}", "config", "user.email", "bench@example.invalid")
        repos.append(root / f"clone{k}")
    load_before = os.getloadavg()[0]
    start = time.perf_counter()
    running = [subprocess.Popen([sys.executable, "-m", "harness", "loop", "-C", str(r), "--until-empty"],
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True) for r in repos]
    outputs = [run.communicate()[0] for run in running]
    wall = time.perf_counter() - start
    load_after = os.getloadavg()[0]
    for run, out in zip(running, outputs):
        if run.returncode != 0:
            raise SystemExit(f"{label}: harness loop exited {run.returncode}\n{out[-3000:]}")
    log = subprocess.run(["git", "log", "--format=%s", "main"], cwd=remote, capture_output=True, text=True,
                         check=True)
    greens = sorted(line for line in log.stdout.splitlines() if line.endswith(": GREEN"))
    if len(greens) != items or len(set(greens)) != items:
        raise SystemExit(f"{label}: {len(greens)} GREEN commits on the remote for {items} items\n{log.stdout}")
    return {"workers": clones, "wall": wall, "load": (load_before, load_after), "merge_s": 0.0, "attempts": items}


def measure_rounds(args: argparse.Namespace, modes: tuple[int, ...],
                   run_one: Callable[[Path, str, int, float, int], dict], noun: str, tag: str
                   ) -> tuple[dict[int, list[dict]], dict[int, float]]:
    """`args.rounds` rounds, each running every mode once in a fresh folder (`run_one(workdir, label, items,
    agent_seconds, mode)`); returns the runs per mode and the median wall time per mode."""
    runs: dict[int, list[dict]] = {m: [] for m in modes}
    with tempfile.TemporaryDirectory(prefix="bench-parallel-") as tmp:
        for r in range(args.rounds):
            for mode in modes:
                run = run_one(Path(tmp), f"r{r}-{tag}{mode}", args.items, args.agent_seconds, mode)
                runs[mode].append(run)
                print(f"round {r + 1}, {mode} {noun}: {run['wall']:.1f} s "
                      f"(load average {run['load'][0]:.1f} -> {run['load'][1]:.1f})", flush=True)
    return runs, {m: statistics.median(run["wall"] for run in runs[m]) for m in modes}


def clones_main(args: argparse.Namespace) -> int:
    modes = (1, 2)
    runs, median = measure_rounds(args, modes, run_clones, "clone(s)", "c")
    today = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    command = (f"python benchmarks/bench_parallel.py --two-clones --items {args.items} "
               f"--agent-seconds {args.agent_seconds:g} --rounds {args.rounds}")
    machine = f"{platform.platform()}, {os.cpu_count()} CPU(s), python {platform.python_version()}"
    lines = [
        "",
        f"## Several machines, one remote: two clones' serial loops on {args.items} independent items ({today})",
        "",
        (f"`{command}` on {machine} (shared with other jobs; both clones on this one machine). Scripted agent: "
         f"T = {args.agent_seconds:g} s per item. Each run: a fresh bare remote with `push` and `leases`, "
         "`harness loop --until-empty` in each clone at once, until all have stopped."),
        "",
        "| clones | wall time (s), median | runs (s) | ratio to one clone | load average before -> after each run |",
        "|---|---|---|---|---|",
    ]
    for m in modes:
        walls = ", ".join(f"{run['wall']:.1f}" for run in runs[m])
        loads = "; ".join(f"{run['load'][0]:.1f} -> {run['load'][1]:.1f}" for run in runs[m])
        lines.append(f"| {m} | {median[m]:.1f} | {walls} | {median[m] / median[1]:.2f}x | {loads} |")
    section = "\n".join(lines + [""])
    print(section)
    if not args.no_write:
        append_section(Path(args.results), section)
        print(f"appended to {args.results}")
    return 0


def run_loop(workdir: Path, label: str, items: int, agent_seconds: float, workers: int) -> dict:
    root = workdir / label
    root.mkdir()
    repo = make_repo(root, items, agent_seconds)
    argv = [sys.executable, "-m", "harness", "loop", "-C", str(repo), "--until-empty"]
    if workers > 1:
        argv += ["--workers", str(workers), "--json"]
    load_before = os.getloadavg()[0]
    start = time.perf_counter()
    done = subprocess.run(argv, capture_output=True, text=True, check=False)
    wall = time.perf_counter() - start
    load_after = os.getloadavg()[0]
    if done.returncode != 0:
        raise SystemExit(f"{label}: harness loop exited {done.returncode}\n{done.stdout[-3000:]}\n{done.stderr}")
    log = subprocess.run(["git", "log", "--format=%s"], cwd=repo, capture_output=True, text=True, check=True)
    greens = sum(line.endswith(": GREEN") for line in log.stdout.splitlines())
    if greens != items:
        raise SystemExit(f"{label}: {greens} GREEN commits for {items} items\n{log.stdout}")
    merge_s = attempts = 0.0
    for line in done.stdout.splitlines():
        if line.startswith("{") and json.loads(line)["event"] == "summary":
            rows = json.loads(line)["rows"]
            merge_s, attempts = sum(r["merge_s"] for r in rows), len(rows)
    return {"workers": workers, "wall": wall, "load": (load_before, load_after), "merge_s": merge_s,
            "attempts": attempts or items}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--items", type=int, default=8)
    ap.add_argument("--agent-seconds", type=float, default=10.0, help="T: how long the scripted agent works")
    ap.add_argument("--rounds", type=int, default=1, help="serial, 2 and 4 workers, this many times each")
    ap.add_argument("--results", default=str(HERE / "RESULTS.md"))
    ap.add_argument("--no-write", action="store_true", help="print only; do not append to RESULTS.md")
    ap.add_argument("--two-clones", action="store_true", help="one clone against two clones of one remote")
    args = ap.parse_args()
    if args.two_clones:
        return clones_main(args)
    modes = (1, 2, 4)
    runs, median = measure_rounds(args, modes, run_loop, "worker(s)", "w")
    serial = median[1]
    today = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    command = (f"python benchmarks/bench_parallel.py --items {args.items} --agent-seconds {args.agent_seconds:g}"
               f" --rounds {args.rounds}")
    machine = f"{platform.platform()}, {os.cpu_count()} CPU(s), python {platform.python_version()}"
    target = {2: 0.65, 4: 0.45}
    lines = [
        "",
        f"## Parallel loops: `harness loop --workers N` on {args.items} independent items ({today})",
        "",
        (f"`{command}` on {machine} (shared with other jobs). Scripted agent: T = {args.agent_seconds:g} s per "
        "item, then it writes a function and its test. Each run: a fresh repository, `--until-empty`; the wall "
        "time holds the agents, every proof and, with workers, the gates re-run on the merged trees."),
        "",
        ("| workers | wall time (s), median | runs (s) | ratio to serial | target | merged-tree gates (s, summed) "
        "| load average before -> after each run |"),
        "|---|---|---|---|---|---|---|",
    ]
    for m in modes:
        walls = ", ".join(f"{run['wall']:.1f}" for run in runs[m])
        loads = "; ".join(f"{run['load'][0]:.1f} -> {run['load'][1]:.1f}" for run in runs[m])
        gates = ", ".join(f"{run['merge_s']:.1f}" for run in runs[m]) if m > 1 else "(serial: none)"
        goal = f"<= {target[m]:.2f}x" if m in target else ""
        lines.append(f"| {m}{' (serial loop)' if m == 1 else ''} | {median[m]:.1f} | {walls} | "
                     f"{median[m] / serial:.2f}x | {goal} | {gates} | {loads} |")
    verdicts = [f"{m} workers {median[m] / serial:.2f}x ({'met' if median[m] / serial <= target[m] else 'MISSED'})"
                for m in (2, 4)]
    lines += ["", "Against the targets: " + "; ".join(verdicts) + ".", ""]
    section = "\n".join(lines)
    print(section)
    if not args.no_write:
        append_section(Path(args.results), section)
        print(f"appended to {args.results}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
