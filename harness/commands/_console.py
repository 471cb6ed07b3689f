"""What the commands print besides their results: timestamped progress lines and plain-text tables."""
from __future__ import annotations

import time
from collections.abc import Sequence


def say(text: str, *, indent: str = "") -> None:
    """`[HH:MM:SS] text` at once (flushed), so progress shows while a long step runs."""
    print(f"{indent}[{time.strftime('%H:%M:%S')}] {text}", flush=True)


def print_table(headers: Sequence[str], cells: Sequence[Sequence[str]]) -> None:
    """Columns as wide as their widest cell, two spaces apart, no trailing spaces."""
    widths = [max([len(h)] + [len(c[i]) for c in cells]) for i, h in enumerate(headers)]
    print("  ".join(h.ljust(w) for h, w in zip(headers, widths)).rstrip())
    for cell in cells:
        print("  ".join(c.ljust(w) for c, w in zip(cell, widths)).rstrip())
