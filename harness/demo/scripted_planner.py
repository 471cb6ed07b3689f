"""A scripted stand-in for a planner: writes a stored proposal to $HARNESS_PLAN_FILE (no network).

    python -m harness.demo.scripted_planner            the demo's proposal (scenario.PLANNER_PROPOSAL)
    python -m harness.demo.scripted_planner FILE       FILE's text, at every run
    python -m harness.demo.scripted_planner FOLDER     the first FOLDER/*.md by name, renamed to *.md.used
                                                       so that the next run takes the next one; none left:
                                                       an empty proposal (no change)

It reads its prompt from stdin like a real planner would (and ignores it); the harness checks the proposal
itself. `harness demo` and the tests use it.
"""
from __future__ import annotations

import os
import sys
from pathlib import Path

from harness.demo.scenario import PLANNER_PROPOSAL


def _proposal(source: str | None) -> str:
    if source is None:
        return PLANNER_PROPOSAL
    path = Path(source)
    if not path.is_dir():
        return path.read_text(encoding="utf-8")
    queued = sorted(path.glob("*.md"))
    if not queued:
        return ""
    text = queued[0].read_text(encoding="utf-8")
    queued[0].rename(queued[0].with_name(queued[0].name + ".used"))
    return text


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    prompt = sys.stdin.read() if not sys.stdin.isatty() else ""
    target = os.environ.get("HARNESS_PLAN_FILE")
    if not target:
        print("scripted planner: HARNESS_PLAN_FILE is not set (the harness sets it)", file=sys.stderr)
        return 2
    text = _proposal(args[0] if args else None)
    Path(target).write_text(text, encoding="utf-8")
    ids = [line.split("]")[0][4:] for line in text.splitlines() if line.startswith("## [")]
    print(f"scripted planner: prompt of {len(prompt)} characters; proposed {', '.join(ids) or 'nothing'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
