"""`harness report` at scale: build time and index size for a ledger of 5,000 items with 4 attempts each.

Target (issue 14): the site renders in under 15 s with the index under 3 MB.

    python benchmarks/bench_report.py                     # 5,000 x 4 with evidence folders; appends to RESULTS.md
    python benchmarks/bench_report.py --baseline 8f1a4cb  # the same, and the code of that commit, in one run
    python benchmarks/bench_report.py --items 500 --no-write      # quick look

Builds a real git repository holding the ledger (items with fields, prose, dependencies and attempts over
90 days: GREEN, FAILED at each stage, ABORTED) and, unless --no-evidence, one small evidence folder per
attempt written as the harness writes them (attempt.json with stages, summary, logs, SHA256SUMS), so the
build checks 20,000 folders against their checksums. Each measured code (this checkout, and with
--baseline the `harness/` folder of that commit, exported with `git archive`) builds the site in a fresh
Python process, into a new folder: the first build (every folder hashed, nothing cached), then a rebuild
with the cache `harness report --serve` keeps, run in-process as `--serve` runs it. Several codes take
turns (`--rounds`), so they meet the same load. Each build is timed as wall time and as CPU time: its
process's, and its children's (the item workers, git); with the load average before and after. On a
machine shared with other jobs the CPU time is the steadier figure: the wall time of an idle machine is
about the CPU time over the cores the build keeps busy. Evidence folders are not committed (the report
reads them from the working tree either way), so no recording commit is found and no diff is rendered.
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


# Run in a fresh interpreter whose PYTHONPATH holds the code to measure: prints one JSON line.
TIMER = r"""
import inspect, json, os, resource, sys, time
from pathlib import Path
from harness.webreport.build import build_site
from harness.webreport.gather import ReportCache
from harness.workspace import open_workspace

def children_cpu():
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime

def timed(label, **kwargs):
    load, wall, cpu, child = os.getloadavg()[0], time.perf_counter(), time.process_time(), children_cpu()
    result = build_site(ws, Path(sys.argv[2]), **kwargs)
    return {"build": label, "wall": time.perf_counter() - wall, "cpu": time.process_time() - cpu,
            "children": children_cpu() - child, "load_before": load, "load_after": os.getloadavg()[0],
            "index_bytes": result.index_bytes, "pages": result.pages, "total_bytes": result.total_bytes,
            "items": result.items, "attempts": result.attempts}

try:
    from harness.webreport.item_pages import worker_count
except ImportError:  # code from before the item workers: one process
    def worker_count(items):
        return 1
from harness.ledger import load_ledger

ws = open_workspace(Path(sys.argv[1]))
workers = worker_count(len(load_ledger(ws.ledger_path).items))
cache = ReportCache()
rows = [timed("first", cache=cache)]
serve_like = {"workers": 1} if "workers" in inspect.signature(build_site).parameters else {}
rows.append(timed("rebuild", cache=cache, **serve_like))
import harness
print(json.dumps({"code": harness.__file__, "workers": workers, "rows": rows}))
"""


def export_code(rev: str, into: Path) -> Path:
    """The `harness/` folder of commit `rev` of this repository, written below `into`."""
    into.mkdir(parents=True)
    archive = subprocess.run(["git", "archive", "--format=tar", rev, "harness"], cwd=HERE.parents[1], check=True,
                             capture_output=True).stdout
    subprocess.run(["tar", "-x", "-C", str(into)], input=archive, check=True)
    return into


def measure(code_root: Path, repo: Path, out: Path) -> dict:
    env = {**os.environ, "PYTHONPATH": str(code_root)}
    # cwd: `python -c` puts the working folder first on sys.path; there it is the measured code's own.
    done = subprocess.run([sys.executable, "-c", TIMER, str(repo), str(out)], env=env, cwd=code_root, check=True,
                          capture_output=True, text=True)
    run = json.loads(done.stdout.strip().splitlines()[-1])
    if not Path(run["code"]).is_relative_to(code_root):
        raise SystemExit(f"measured {run['code']}, not the code in {code_root}")
    return run


def _verdict(seconds: float, small_index: bool) -> str:
    return "met" if seconds < 15 and small_index else "not met"


def section(args: argparse.Namespace, setup_s: float, runs: list[tuple[str, dict]], load: tuple[float, float]
            ) -> str:
    stamp = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    command = "python benchmarks/bench_report.py" + (" --no-evidence" if args.no_evidence else "") + (
        f" --baseline {args.baseline}" if args.baseline else "") + (f" --rounds {args.rounds}" if args.rounds > 1 else "")
    first = runs[0][1]["rows"][0]
    lines = [
        f"## bench_report: `harness report` on {args.items:,} items x {args.attempts} attempts ({stamp})", "",
        (f"`{command}` on {platform.platform()}, {os.cpu_count()} CPU(s), python {platform.python_version()}; "
         f"load average {load[0]:.1f} before the first build, {load[1]:.1f} after the last."),
        f"Ledger {first['items']:,} items, {first['attempts']:,} attempts; "
        + ("no evidence folders." if args.no_evidence else
           f"{first['attempts']:,} evidence folders (attempt.json, summary, logs, SHA256SUMS), written in "
           f"{setup_s:.0f} s."),
        ("Each row a fresh process; CPU = the process + its children (item workers, git). The idle-machine "
         "wall is an estimate, not a measurement: CPU time over the cores the build keeps busy."), "",
        ("| code | build | processes | load before/after | wall (s) | CPU (s) | idle-machine wall, est. (s) "
         "| index.html (MB) | pages | site (MB) |"),
        "|---|---|---:|---|---:|---:|---:|---:|---:|---:|",
    ]
    for label, run in runs:
        for row in run["rows"]:
            busy = run["workers"] if row["build"] == "first" else 1
            cores = min(busy, os.cpu_count() or 1)
            cpu = row["cpu"] + row["children"]
            name = ("first (every folder hashed)" if row["build"] == "first" else
                    "rebuild as `--serve` does (cache, in-process)")
            lines.append(f"| {label} | {name} | {busy} | {row['load_before']:.1f} / {row['load_after']:.1f} | "
                         f"{row['wall']:.1f} | {cpu:.1f} | {cpu / cores:.1f} | {row['index_bytes'] / 1e6:.2f} | "
                         f"{row['pages']:,} | {row['total_bytes'] / 1e6:.1f} |")
    lines.append("")
    for label, run in runs:
        row = run["rows"][0]
        cpu = row["cpu"] + row["children"]
        cores = min(run["workers"], os.cpu_count() or 1)
        small = row["index_bytes"] < 3_000_000
        lines.append(f"Target under 15 s with the index under 3 MB, {label}, first build: "
                     f"**{_verdict(row['wall'], small)}** in wall time ({row['wall']:.1f} s at load "
                     f"{row['load_after']:.1f}); **{_verdict(cpu / cores, small)}** on "
                     f"an idle machine by the estimate ({cpu:.1f} s CPU over {cores} core(s): {cpu / cores:.1f} s).")
    return "\n".join(lines) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--items", type=int, default=5000)
    parser.add_argument("--attempts", type=int, default=4)
    parser.add_argument("--no-evidence", action="store_true", help="no evidence folders (all shown missing)")
    parser.add_argument("--baseline", metavar="REV", help="also measure the harness/ of this commit, in turn")
    parser.add_argument("--rounds", type=int, default=1, help="how many times each code builds, in turn")
    parser.add_argument("--no-write", action="store_true", help="print only; do not append to RESULTS.md")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-report-") as tmp:
        repo, setup_s = make_repo(Path(tmp) / "repo", args.items, args.attempts, not args.no_evidence)
        codes = [("this checkout", HERE.parents[1])]
        if args.baseline:
            codes.insert(0, (f"baseline {args.baseline}", export_code(args.baseline, Path(tmp) / "baseline")))
        load_before = os.getloadavg()[0]
        runs = []
        for n in range(args.rounds):
            for i, (label, root) in enumerate(codes):
                runs.append((label, measure(root, repo, Path(tmp) / f"site-{n}-{i}")))
                print(f"{label}: {runs[-1][1]}", file=sys.stderr)
        text = section(args, setup_s, runs, (load_before, os.getloadavg()[0]))
    print(text)
    if not args.no_write:
        with open(HERE.parent / "RESULTS.md", "a", encoding="utf-8") as handle:
            handle.write("\n" + text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
