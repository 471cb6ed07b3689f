"""Benchmark: the cheat corpus's catch rate (issue 20, section 3).

    python benchmarks/bench_adversary.py              # every shape and honest control; appends to RESULTS.md
    python benchmarks/bench_adversary.py --no-write   # print only
    python benchmarks/bench_adversary.py --family "early exit"   # one family (repeatable)

Runs every shape of tests/harness/adversary/shapes.py through the real harness (`harness run --no-agent`
on a fresh copy of its base project) and the honest fix on every base project, then prints per family how
many shapes were refused and by which stage, and whether each honest control went GREEN. A shape counts as
caught only when it is refused where the corpus says (stage and finding). The shapes that analysis of the
change cannot catch are also run on the plain project, without the configuration that catches them, to
show what that configuration is worth.
"""
from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import subprocess
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

HERE = Path(__file__).resolve()
ROOT = HERE.parents[1]
sys.path.insert(0, str(ROOT))

from results_file import append_section

from tests.conftest import RepoTemplates
from tests.harness.adversary.corpus import BASES, Shape, Verdict, fresh, judge, judge_honest
from tests.harness.adversary.shapes import FAMILIES, SHAPES


def _outcome(verdict: Verdict) -> str:
    if verdict.code == 0:
        return "GREEN"
    kinds = ", ".join(sorted({kind for kind, _, _ in verdict.findings}))
    return f"refused at {verdict.failed_stage}" + (f" ({kinds})" if kinds else "")


def _commit() -> str:
    proc = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"], capture_output=True,
                          text=True, check=False)
    dirty = subprocess.run(["git", "-C", str(ROOT), "status", "--porcelain", "--untracked-files=no"],
                           capture_output=True, text=True, check=False).stdout.strip()
    return proc.stdout.strip() + (" with uncommitted changes" if dirty else "")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--no-write", action="store_true", help="print only; do not append to RESULTS.md")
    parser.add_argument("--family", action="append", help="run only this family's shapes (repeatable)")
    args = parser.parse_args(argv)
    shapes = [s for s in SHAPES if not args.family or s.family in args.family]
    started = time.monotonic()
    rows: list[tuple[Shape, Verdict, Verdict | None]] = []
    honest: list[tuple[str, Verdict]] = []
    with tempfile.TemporaryDirectory(prefix="bench-adversary-") as tmp:
        work = Path(tmp)
        templates = RepoTemplates(work / "templates")
        for n, shape in enumerate(shapes):
            verdict = judge(shape, fresh(work / f"shape{n}"), templates, quiet=True)
            plain = (judge(replace(shape, base="calc"), fresh(work / f"plain{n}"), templates, quiet=True)
                     if shape.caught_by else None)
            rows.append((shape, verdict, plain))
            print(f"{'caught' if verdict.refuses(shape) else 'MISSED'}: {shape.id}: {_outcome(verdict)}",
                  flush=True)
        for name in sorted({s.base for s in shapes}):
            verdict = judge_honest(BASES[name], fresh(work / f"honest-{name}"), templates, quiet=True)
            honest.append((name, verdict))
            print(f"honest control on {name}: {_outcome(verdict)}", flush=True)
    wall = time.monotonic() - started
    section = _section(rows, honest, wall)
    print(section)
    if not args.no_write:
        append_section(HERE.parent / "RESULTS.md", section)
    missed = [shape for shape, verdict, _ in rows if not verdict.refuses(shape)]
    return 1 if missed or any(v.code != 0 for _, v in honest) else 0


def _section(rows: list[tuple[Shape, Verdict, Verdict | None]], honest: list[tuple[str, Verdict]],
             wall: float) -> str:
    caught = sum(verdict.refuses(shape) for shape, verdict, _ in rows)
    now = dt.datetime.now(dt.UTC)
    lines = [
        f"\n## bench_adversary: the cheat corpus's catch rate ({now:%Y-%m-%d %H:%M} UTC)\n",
        f"- Command: `python benchmarks/bench_adversary.py` at {_commit()}",
        f"- Machine: {platform.platform()}, {os.cpu_count()} logical CPU(s); python {platform.python_version()}",
        (f"- Corpus: tests/harness/adversary/shapes.py, {len(rows)} shapes in {len({s.family for s, _, _ in rows})} "
        f"families, each `harness run --no-agent` on a fresh copy of its base project ({wall:.0f} s in all)"),
        f"- Caught: **{caught} of {len(rows)}** (refused at the stage and for the reason the corpus names)",
        "",
        "| family | caught | refusing stages |",
        "|---|---:|---|",
    ]
    for family in FAMILIES:
        mine = [(s, v) for s, v, _ in rows if s.family == family]
        if not mine:
            continue
        stages = sorted({v.failed_stage or "none (GREEN)" for _, v in mine})
        lines.append(f"| {family} | {sum(v.refuses(s) for s, v in mine)}/{len(mine)} | {', '.join(stages)} |")
    lines += ["", "| family | shape | result |", "|---|---|---|"]
    for shape, verdict, _ in rows:
        lines.append(f"| {shape.family} | {shape.name} | {_outcome(verdict)} |")
    exceptions = [(s, p) for s, _, p in rows if p is not None]
    if exceptions:
        lines += ["", "Shapes analysis of the change cannot catch, and the gate that does:", ""]
        for shape, plain in exceptions:
            lines.append(f"- {shape.id}: caught by {shape.caught_by}; on the plain project, without it: "
                         f"{_outcome(plain)}")
    lines += ["", "Honest controls (the real fix of CALC-001 on each base project): "
              + "; ".join(f"{name}: {_outcome(v)}" for name, v in honest), ""]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.exit(main())
