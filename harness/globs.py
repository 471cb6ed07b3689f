"""gitignore-like glob matching of repo-relative posix paths (test globs, ignore rules)."""
from __future__ import annotations

import re
from collections.abc import Iterable
from functools import lru_cache
from pathlib import PurePosixPath


def matches_any(path: str, globs: Iterable[str]) -> bool:
    """gitignore-like matching of a repo-relative posix path.

    `**` spans directories (`tests/**` is everything under tests/, `**/test_*.py` matches at any depth
    including the top); `*`, `?` and `[...]` never match `/`; a pattern without a slash matches a name
    at any depth; a leading `/` anchors to the root; a pattern that matches a directory matches
    everything below it, as in .gitignore.
    """
    normalized = PurePosixPath(path).as_posix().lstrip("/")
    return any(_glob_regex(g).match(normalized) is not None for g in globs)


@lru_cache(maxsize=1024)
def _glob_regex(pattern: str) -> re.Pattern[str]:
    if not pattern.strip("/"):
        return re.compile(r"(?!)")
    directory_only = pattern.endswith("/")
    body = pattern.strip("/")
    if not pattern.startswith("/") and "/" not in body:
        body = "**/" + body
    segments = body.split("/")
    parts = []
    for i, segment in enumerate(segments):
        last = i == len(segments) - 1
        if segment == "**":
            parts.append(".*" if last else "(?:[^/]+/)*")
        else:
            parts.append(_segment_regex(segment) + ("" if last else "/"))
    tail = "/.*" if directory_only else "(?:/.*)?"
    return re.compile("".join(parts) + tail + r"\Z", re.DOTALL)


def _segment_regex(segment: str) -> str:
    out = []
    i = 0
    while i < len(segment):
        c = segment[i]
        if c == "*":
            while i + 1 < len(segment) and segment[i + 1] == "*":
                i += 1
            out.append("[^/]*")
        elif c == "?":
            out.append("[^/]")
        elif c == "\\" and i + 1 < len(segment):
            i += 1
            out.append(re.escape(segment[i]))
        elif c == "[" and (end := _class_end(segment, i)) != -1:
            inner = segment[i + 1 : end]
            negate = inner[:1] in ("!", "^")
            inner = (inner[1:] if negate else inner).replace("\\", "\\\\")
            out.append(f"[^/{inner}]" if negate else f"[{inner}]")
            i = end
        else:
            out.append(re.escape(c))
        i += 1
    return "".join(out)


def _class_end(segment: str, start: int) -> int:
    """Index of the `]` closing the class opened at `start`, or -1 (then `[` is literal)."""
    first = start + 1
    if segment[first : first + 1] in ("!", "^"):
        first += 1
    # A `]` right after `[` or `[!` belongs to the class, as in fnmatch.
    return segment.find("]", first + 1) if first < len(segment) else -1
