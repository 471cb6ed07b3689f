"""`harness report` at scale: build time and index size for a ledger of 5,000 items with 4 attempts each.

Target (issue 14): the site renders in under 15 s with the index under 3 MB.

    python benchmarks/bench_report.py                     # 5,000 x 4 with evidence folders; appends to RESULTS.md
    python benchmarks/bench_report.py --items 500 --no-write      # quick look

Builds a real git repository holding the ledger (items with fields, prose, dependencies and attempts over
90 days: GREEN, FAILED at each stage, ABORTED) and, unless --no-evidence, one small evidence folder per
attempt written as the harness writes them (attempt.json with stages, summary, logs, SHA256SUMS), so the
build checks 20,000 folders against their checksums. Then times `build_site` in this process: the first
build (cold: every folder hashed), and a rebuild with the cache `harness report --serve` keeps (warm),
each as wall time and as the CPU time of this process (all its threads): on a machine shared with other
jobs the CPU time is the steadier figure, and the wall time of an unloaded machine is close to it.
Evidence folders are not committed (the report reads them from the working tree either way), so no
recording commit is found and no diff is rendered: diffs are read in one git call per 200 commits.
"""
from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from harness.webreport.build import build_site
from harness.webreport.gather import ReportCache
from harness.workspace import open_workspace

HERE = Path(__file__).resolve()
STAGES = ("collect", "red", "green", "regression", "full_suite")


def _outcome(i: int, j: int, attempts: int) -> tuple[str, str | None]:
    if j == attempts - 1 and i % 5:
        return "GREEN", None
    stage = STAGES[(i + j) % len(STAGES)]
    return ("ABORTED at agent", "agent") if (i + j) % 11 == 0 else (f"FAILED at {stage}", stage)


def ledger_text(items: int, attempts: int) -> tuple[str, list[tuple[str, str, str, str, int]]]:
    """The ledger, and per attempt (item id, folder, outcome, stamp, number)."""
    start = dt.datetime(2026, 9, 1, tzinfo=dt.UTC)
    out = ["# Fix Plan", ""]
    folders = []
    for i in range(items):
        item = f"ITEM-{i:05d}"
        out += [f"## [{item}] Make part {i} of the pipeline behave under load {i % 17}",
                f"- Status: {('done', 'pending', 'in_progress', 'blocked')[i % 4]}", f"- Priority: {i % 9}",
                f"- Initiative: INIT-{i % 12:02d}", f"- Slug: part_{i}"]
        if i:
            out.append(f"- Depends-On: ITEM-{i - 1:05d}")
        out += [f"- RED: tests/test_part_{i}.py::test_behaves", f"- Regression: tests/test_part_{i}.py",
                "- Exit-Criteria: the part behaves under load; no new full-suite failure", "",
                (f"Context for part {i}: the `pipeline` stage **{i % 17}** fails under load; see "
                "[the spec](specs/ledger.md). Reproduce with `pytest -k behaves`."), "", "### Attempts History"]
        for j in range(attempts):
            when = start + dt.timedelta(minutes=(i * attempts + j) * 2)
            outcome, _ = _outcome(i, j, attempts)
            stamp = when.strftime("%Y-%m-%dT%H%M%SZ")
            folder = f"plans/active/INIT-{i % 12:02d}/reports/{stamp}/part_{i}"
            out.append(f"- {when:%Y-%m-%dT%H:%M:%SZ} · #{j + 1} · {outcome} · 3f2a1bc · {folder}/analysis/summary.md")
            folders.append((item, folder, outcome, stamp, j + 1))
        out.append("")
    return "\n".join(out), folders


def write_evidence(root: Path, item: str, folder: str, outcome: str, number: int) -> None:
    base = root / folder
    stage = outcome.split(" at ")[-1] if outcome != "GREEN" else None
    stages = []
    for name in STAGES[:STAGES.index(stage) + 1 if stage in STAGES else len(STAGES)]:
        ok = name != stage
        stages.append({"name": name, "ok": ok, "skipped": False, "reason": f"{name}: {'ok' if ok else 'failed'}",
                       "duration_s": 1.5, "counts": {"passed" if ok else "failed": 3},
                       "selectors": [{"selector": "tests/x.py", "log": f"{name}/{name}-1.log",
                                      "junit": f"{name}/{name}-1.junit.xml"}]})
    record = {"schema": 1, "item": {"id": item}, "attempt": number, "outcome": outcome.split(" ")[0],
              "failed_stage": stage, "reason": "all stages passed" if stage is None else
              f"{stage}: tests/test_part.py::test_behaves failed (assertion): AssertionError",
              "duration_s": 12.0, "base_commit": "3f2a1bc", "head": "working tree", "stages": stages,
              "not_run": [], "saved_ref": None}
    files = {"attempt.json": json.dumps(record, indent=2), "analysis/summary.md": f"# {item} #{number}\n"}
    for s in stages:
        files[f"{s['name']}/{s['name']}-1.log"] = f"pytest log of {s['name']}\n" * 20
    sums = []
    for rel, text in files.items():
        path = base / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        sums.append(f"{hashlib.sha256(text.encode()).hexdigest()}  {rel}\n")
    (base / "SHA256SUMS").write_text("".join(sorted(sums, key=lambda line: line.split("  ", 1)[1])))


def git(repo: Path, *args: str) -> None:
    subprocess.run(["git", *args], cwd=repo, check=True, capture_output=True)


def make_repo(root: Path, items: int, attempts: int, evidence: bool) -> tuple[Path, float]:
    started = time.perf_counter()
    root.mkdir(parents=True)
    git(root, "init", "-q", "-b", "main")
    text, folders = ledger_text(items, attempts)
    (root / "docs").mkdir()
    (root / "docs/fix_plan.md").write_text(text)
    (root / ".gitignore").write_text("/plans/\n")
    git(root, "add", "-A")
    git(root, "-c", "user.name=Bench", "-c", "user.email=b@x", "commit", "-qm", "ledger")
    if evidence:
        for item, folder, outcome, _, number in folders:
            write_evidence(root, item, folder, outcome, number)
    return root, time.perf_counter() - started


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--items", type=int, default=5000)
    parser.add_argument("--attempts", type=int, default=4)
    parser.add_argument("--no-evidence", action="store_true", help="no evidence folders (all shown missing)")
    parser.add_argument("--no-write", action="store_true", help="print only; do not append to RESULTS.md")
    args = parser.parse_args()
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="bench-report-") as tmp:
        repo, setup_s = make_repo(Path(tmp) / "repo", args.items, args.attempts, not args.no_evidence)
        ws = open_workspace(repo)
        cache = ReportCache()
        cpu = time.process_time()
        cold = build_site(ws, repo / "plans" / "report", cache=cache)
        cold_cpu, cpu = time.process_time() - cpu, time.process_time()
        warm = build_site(ws, repo / "plans" / "report", cache=cache)
        warm_cpu = time.process_time() - cpu
    load_after = os.getloadavg()
    stamp = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    machine = (f"{platform.platform()}, {os.cpu_count()} CPU(s), python {platform.python_version()}; "
               f"load average {load_before[0]:.1f} before, {load_after[0]:.1f} after")
    met = cold.seconds < 15 and cold.index_bytes < 3_000_000
    cpu_met = cold_cpu < 15 and cold.index_bytes < 3_000_000
    lines = [
        f"## bench_report: `harness report` on {args.items:,} items x {args.attempts} attempts ({stamp})", "",
        (f"`python benchmarks/bench_report.py{' --no-evidence' if args.no_evidence else ''}` on {machine}; "
        "one thread (the build is single-threaded)."),
        f"Ledger {cold.items:,} items, {cold.attempts:,} attempts; "
        + ("no evidence folders." if args.no_evidence else
           f"{cold.attempts:,} evidence folders (attempt.json, summary, logs, SHA256SUMS), written in "
           f"{setup_s:.0f} s."), "",
        "| build | wall time (s) | CPU time (s) | index.html (MB) | pages | site (MB) |",
        "|---|---:|---:|---:|---:|---:|",
        (f"| first{'' if args.no_evidence else ' (every folder hashed)'} | {cold.seconds:.1f} | {cold_cpu:.1f} | {cold.index_bytes / 1e6:.2f} | "
         f"{cold.pages:,} | {cold.total_bytes / 1e6:.1f} |"),
        (f"| rebuild with the `--serve` cache{'' if args.no_evidence else ' (unchanged folders not hashed again)'} | "
         f"{warm.seconds:.1f} | "
         f"{warm_cpu:.1f} | {warm.index_bytes / 1e6:.2f} | {warm.pages:,} | {warm.total_bytes / 1e6:.1f} |"), "",
        (f"Target under 15 s with the index under 3 MB: **{'met' if met else 'not met'}** in wall time "
         f"({cold.seconds:.1f} s at load {load_after[0]:.1f}), **{'met' if cpu_met else 'not met'}** in CPU time "
         f"({cold_cpu:.1f} s); index {cold.index_bytes / 1e6:.2f} MB."), "",
    ]
    text = "\n".join(lines)
    print(text)
    if not args.no_write:
        with open(HERE.parent / "RESULTS.md", "a", encoding="utf-8") as handle:
            handle.write("\n" + text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
