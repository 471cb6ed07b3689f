"""The quick suite's wall time and CPU time, as the harness's full-suite gate runs it for this repository.

Runs `python -m pytest -n 2 -m "not slow" -q -p no:cacheprovider` in the repository root (the suite of
harness.yaml's `gates.full_suite_args`, without the cache) and prints the wall time, the CPU time of the
whole process tree (user + system of pytest, its xdist workers and everything they started and waited
for), the load average before and after, the cores, the torch threads per worker and pytest's own tally.
Target (issue 19): at most 150 s of wall time on 2 idle cores. CPU time is the figure to compare on a
shared machine; the wall time means something only when the load average stays near 0.

    python benchmarks/bench_suite.py [--label TEXT] [--root CHECKOUT] [--no-write] [-- extra pytest args]

`--root` runs the suite of another checkout (e.g. a worktree of the base commit, for a before/after pair
on the same machine); its harness is imported from there (PYTHONPATH).
"""
from __future__ import annotations

import argparse
import os
import platform
import re
import resource
import subprocess
import sys
import time
from pathlib import Path

from results_file import append_section

ROOT = Path(__file__).resolve().parent.parent
COMMAND = (sys.executable, "-m", "pytest", "-n", "2", "-m", "not slow", "-q", "-p", "no:cacheprovider",
           "--durations=5")
SHOWN = 'python -m pytest -n 2 -m "not slow" -q -p no:cacheprovider'
TARGET_S = 150.0
# pytest's last line, e.g. "1080 passed, 3 skipped in 254.21s (0:04:14)"
_TALLY = re.compile(r"^=*\s*(\d+ \w+.*) in [\d.]+s")
_DURATION = re.compile(r"^([\d.]+)s (call|setup|teardown)\s+(\S+)")


def torch_threads() -> str:
    """The intra-op threads torch starts with here, and what the product's tests set per xdist worker."""
    probe = subprocess.run([sys.executable, "-c", "import torch; print(torch.get_num_threads())"],
                           capture_output=True, text=True, check=False)
    default = probe.stdout.strip() or "unknown (torch did not import)"
    omp = os.environ.get("OMP_NUM_THREADS")
    return (f"1 per xdist worker (tests/ptycho_torch/conftest.py); torch's default here {default}"
            + (f", OMP_NUM_THREADS={omp}" if omp else ""))


def run_suite(root: Path, extra: list[str]) -> dict:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(root), os.environ.get("PYTHONPATH")]))}
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    load_before = os.getloadavg()
    start = time.perf_counter()
    proc = subprocess.run([*COMMAND, *extra], cwd=root, env=env, capture_output=True, text=True, check=False)
    wall = time.perf_counter() - start
    load_after = os.getloadavg()
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    lines = proc.stdout.splitlines()
    tally = next((m.group(1) for line in reversed(lines) if (m := _TALLY.match(line.strip("= "))) is not None),
                 f"no tally (exit {proc.returncode})")
    slowest = [(float(m.group(1)), m.group(2), m.group(3)) for line in lines if (m := _DURATION.match(line))]
    return {"wall": wall, "user": after.ru_utime - before.ru_utime, "sys": after.ru_stime - before.ru_stime,
            "load_before": load_before, "load_after": load_after, "returncode": proc.returncode,
            "tally": tally, "slowest": slowest[:5], "tail": "\n".join(lines[-15:]) + proc.stderr[-2000:]}


def commit(root: Path) -> str:
    head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=root, capture_output=True, text=True,
                          check=False).stdout.strip()
    dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=root,
                           capture_output=True, text=True, check=False).stdout.strip()
    return f"{head or 'unknown'}{' with uncommitted changes' if dirty else ''}"


def section(result: dict, label: str, root: Path, extra: list[str]) -> str:
    stamp = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    cpu = result["user"] + result["sys"]
    cores = len(os.sched_getaffinity(0))
    met = "met" if result["wall"] <= TARGET_S else "not met"
    shown = SHOWN + (" " + " ".join(extra) if extra else "")
    lines = [
        f"## bench_suite: the quick suite's wall time and CPU time ({stamp})",
        "",
        # another checkout is named by its commit, never by its path on this machine
        (f"- Command: `python benchmarks/bench_suite.py{'' if root == ROOT else ' --root CHECKOUT'}` running "
         f"`{shown}` at {commit(root)}{'' if root == ROOT else ' (CHECKOUT: a worktree of that commit)'}"),
        (f"- Machine: {platform.platform()}, {os.cpu_count()} logical CPU(s), {cores} usable; python "
         f"{platform.python_version()}; torch threads: {torch_threads()}"),
        (f"- Load average (1, 5, 15 min): {', '.join(f'{v:.1f}' for v in result['load_before'])} before, "
         f"{', '.join(f'{v:.1f}' for v in result['load_after'])} after"),
    ]
    if label:
        lines.append(f"- Conditions: {label}")
    lines += [
        "",
        "| tests | wall (s) | CPU user (s) | CPU system (s) | CPU total (s) | CPU / wall (cores busy) |",
        "|---|---:|---:|---:|---:|---:|",
        (f"| {result['tally']} | {result['wall']:.1f} | {result['user']:.1f} | {result['sys']:.1f} | {cpu:.1f} | "
         f"{cpu / result['wall']:.2f} |"),
        "",
        (f"Target at most {TARGET_S:.0f} s of wall time on 2 idle cores: **{met}** in this run "
         f"({result['wall']:.1f} s at a load average of {result['load_before'][0]:.1f} to "
         f"{result['load_after'][0]:.1f}; the wall time is the target's figure only when the machine is otherwise "
         "idle)."),
    ]
    if result["slowest"]:
        lines += ["", "Slowest phases (pytest --durations=5): " + "; ".join(
            f"{t:.1f} s {phase} {node}" for t, phase, node in result["slowest"]) + "."]
    return "\n".join(lines) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--label", default="", help="the conditions of this run, written into the section")
    parser.add_argument("--root", type=Path, default=ROOT, help="the checkout whose suite runs (default: this one)")
    parser.add_argument("--results", type=Path, default=Path(__file__).resolve().parent / "RESULTS.md")
    parser.add_argument("--no-write", action="store_true", help="print the section; do not append it")
    parser.add_argument("extra", nargs="*", help="more pytest arguments (after --)")
    args = parser.parse_args()
    root = args.root.resolve()
    result = run_suite(root, args.extra)
    text = section(result, args.label, root, args.extra)
    print(text)
    if result["returncode"] not in (0, 1):
        print(result["tail"], file=sys.stderr)
    if not args.no_write:
        append_section(args.results, "\n" + text)
        print(f"appended to {args.results}")
    return 0 if result["returncode"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
