"""How late the harness notices that a command it waits for has ended: `Popen.wait(timeout)` against
harness.proc.wait_for (a pidfd), on the same commands in one run.

Every proof waits for 5 to 8 pytest runs, each with pytest.timeout_s, and `Popen.wait` with a timeout polls
(sleeping up to 50 ms between looks). Each round starts `sleep D` and waits for it both ways, in
alternating order; the figure is the wall time of start + wait less D, the mean over the rounds.

    python benchmarks/bench_wait.py [--rounds 40] [--duration 0.3] [--no-write]
"""
from __future__ import annotations

import argparse
import os
import platform
import statistics
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

from results_file import append_section

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from harness.proc import wait_for


def overhead(duration: float, waiter: str) -> float:
    """Seconds from `sleep duration`'s start to the wait's return, less `duration`."""
    start = time.perf_counter()
    child = subprocess.Popen(["sleep", f"{duration}"])
    if waiter == "pidfd":
        wait_for(child, 600)
    else:
        child.wait(timeout=600)
    return time.perf_counter() - start - duration


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=40)
    parser.add_argument("--duration", type=float, default=0.3, help="seconds each command runs")
    parser.add_argument("--no-write", action="store_true", help="print only; leave RESULTS.md alone")
    args = parser.parse_args()
    if args.rounds < 2 or args.duration <= 0:
        parser.error("--rounds must be at least 2 and --duration positive")
    seen: dict[str, list[float]] = {"polling": [], "pidfd": []}
    for i in range(args.rounds):
        for waiter in (("polling", "pidfd") if i % 2 == 0 else ("pidfd", "polling")):
            seen[waiter].append(overhead(args.duration, waiter))
    polling, pidfd = (statistics.mean(seen[w]) * 1000 for w in ("polling", "pidfd"))
    load = os.getloadavg()
    lines = [
        (f"## bench_wait: noticing a command's end, Popen.wait(timeout) vs a pidfd "
         f"({datetime.now(UTC):%Y-%m-%d %H:%M} UTC)"),
        "",
        f"- Command: `python benchmarks/bench_wait.py --rounds {args.rounds} --duration {args.duration:g}`",
        f"- Machine: {platform.platform()}, {os.cpu_count()} logical CPU(s); python {platform.python_version()}",
        f"- Load average (1, 5, 15 min) after: {load[0]:.1f}, {load[1]:.1f}, {load[2]:.1f}",
        "",
        "| wait | mean start-to-return beyond the command (ms) | median (ms) |",
        "|---|---:|---:|",
        f"| Popen.wait(timeout) (polls) | {polling:.1f} | {statistics.median(seen['polling']) * 1000:.1f} |",
        f"| harness.proc.wait_for (pidfd) | {pidfd:.1f} | {statistics.median(seen['pidfd']) * 1000:.1f} |",
        "",
        f"Saved per waited command: {polling - pidfd:.1f} ms (pidfd / polling = {pidfd / polling:.2f}x).",
        "",
    ]
    print("\n".join(lines))
    if not args.no_write:
        append_section(ROOT / "benchmarks" / "RESULTS.md", "\n" + "\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
