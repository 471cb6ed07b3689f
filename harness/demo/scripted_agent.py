"""A scripted stand-in for a coding agent: applies the demo's stored test-then-fix change for $HARNESS_ITEM.

It reads its prompt from stdin like a real agent would (and ignores it), and reports what it writes; the
harness judges the result itself.
"""
from __future__ import annotations

import os
import sys
from pathlib import Path

from harness.demo.scenario import AGENT_CHANGES


def main() -> int:
    prompt = sys.stdin.read() if not sys.stdin.isatty() else ""
    item = os.environ.get("HARNESS_ITEM", "")
    print(f"scripted agent: item {item}, attempt {os.environ.get('HARNESS_ATTEMPT')}, "
          f"prompt of {len(prompt)} characters")
    changes = AGENT_CHANGES.get(item)
    if changes is None:
        print(f"scripted agent: no stored change for {item!r}", file=sys.stderr)
        return 2
    for rel, text in changes:
        path = Path(rel)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        print(f"scripted agent: wrote {rel}")
    print("scripted agent: done (the harness will check this itself)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
