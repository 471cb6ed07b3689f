"""`harness ledger lint`: what is wrong with a ledger that still parses, or does not.

Duplicate ids, unknown statuses, fields and modes, dependencies on missing items, dependency cycles,
Initiative/Slug values that cannot be path components, and attempt lines whose evidence is missing.
"""
from __future__ import annotations

import difflib
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from harness.graphs import cyclic_components
from harness.ledger.model import (
    DEFAULT_LEDGER_PATH,
    INTEGRITY_KINDS,
    KNOWN_FIELDS,
    MODES,
    MUTATION_VALUES,
    STATUSES,
    Attempt,
    Item,
    Ledger,
)
from harness.ledger.parse import parse_items


@dataclass(frozen=True)
class LedgerFinding:
    """One lint result; `code` is a key of LINT_CODES. Not slotted, so `vars(finding)` gives a JSON dict."""

    line: int
    item_id: str | None
    code: str
    message: str

    def render(self, path: str) -> str:
        return f"{path}:{self.line}: {self.code}: {self.message}"


LINT_CODES = {
    "parse-error": "the text does not follow the grammar (lint_text only; parse_ledger raises instead)",
    "duplicate-id": "two items share an id (lint_text only; every repeat is reported)",
    "unknown-status": "Status is not one of " + ", ".join(STATUSES),
    "unknown-field": "a `- Key: value` field whose key the harness does not know (kept, not used)",
    "unknown-mode": "Mode is not one of " + ", ".join(MODES),
    "stray-field": "a known `- Key: value` line outside the field block, so it is ignored",
    "missing-dependency": "Depends-On names an id that no item has",
    "dependency-cycle": "items depend on each other in a cycle (named), so none of them can run",
    "bad-path-name": "Initiative or Slug is not a plain name",
    "missing-evidence": "an attempt's evidence path does not exist under the repository root",
    "bad-evidence-path": "an attempt's evidence path is absolute or leaves the repository",
    "attempt-number": "attempt numbers in an item do not increase",
    "unknown-allow": "Allow names a kind the test-integrity gate does not have: " + ", ".join(INTEGRITY_KINDS),
    "unknown-mutation": "Mutation is not one of " + ", ".join(MUTATION_VALUES),
}


def unknown_status_warnings(ledger: Ledger, path: str | None = None) -> tuple[str, ...]:
    """`path:line: ...` for each item whose Status is unknown: such an item never runs, so a command that
    passes over it says so instead of letting it vanish. `path` names the file (default: the ledger's)."""
    return tuple(
        f"{path or ledger.path}:{item.status_line or item.line}: [{item.id}] Status {item.status!r} is not one of "
        f"{', '.join(STATUSES)}, so the item never runs; fix the Status line (`harness ledger lint` lists it)"
        for item in ledger.items if not item.status_known)


def lint_ledger(ledger: Ledger, *, repo_root: Path | None = None) -> list[LedgerFinding]:
    return _lint_items(ledger.items, repo_root)


def lint_text(text: str, path: str = DEFAULT_LEDGER_PATH, repo_root: Path | None = None) -> list[LedgerFinding]:
    """Like lint_ledger, but grammar errors (every duplicate id included) become findings, not raises."""
    findings: list[LedgerFinding] = []

    def record(line: int, code: str, message: str, expected: str, item_id: str | None) -> None:
        findings.append(LedgerFinding(line, item_id, code, f"{message} (expected {expected})"))

    items = parse_items(text, record)
    return sorted(findings + _lint_items(items, repo_root), key=lambda f: f.line)


def _lint_items(items: Iterable[Item], repo_root: Path | None) -> list[LedgerFinding]:
    items = list(items)
    by_id: dict[str, Item] = {}
    for item in items:
        by_id.setdefault(item.id, item)
    out: list[LedgerFinding] = []
    add = out.append
    root = Path(repo_root).resolve() if repo_root is not None else None
    for item in items:
        if not item.status_known:
            add(LedgerFinding(item.status_line or item.line, item.id, "unknown-status",
                            f"[{item.id}] Status {item.status!r} is not one of {', '.join(STATUSES)}"))
        for key, lines in item.field_lines.items():
            if key not in KNOWN_FIELDS:
                for line in lines:
                    add(LedgerFinding(line, item.id, "unknown-field", (
                        f"[{item.id}] field {key!r} is not used by the harness "
                        f"(known: {', '.join(KNOWN_FIELDS)}; keys are case-sensitive)")))
        if item.mode not in MODES:
            add(LedgerFinding(item.field_lines["Mode"][0], item.id, "unknown-mode",
                            f"[{item.id}] Mode {item.mode!r} is not one of {', '.join(MODES)}"))
        for kind in item.allow:
            if kind not in INTEGRITY_KINDS:
                close = difflib.get_close_matches(kind, INTEGRITY_KINDS, n=1)
                add(LedgerFinding(item.field_lines["Allow"][0], item.id, "unknown-allow", (
                    f"[{item.id}] Allow names {kind!r}, which is not a finding kind of the integrity gate"
                    + (f" (did you mean {close[0]}?)" if close else f" ({', '.join(INTEGRITY_KINDS)})"))))
        if item.mutation is not None and item.mutation not in MUTATION_VALUES:
            add(LedgerFinding(item.field_lines["Mutation"][0], item.id, "unknown-mutation",
                            f"[{item.id}] Mutation {item.mutation!r} is not one of {', '.join(MUTATION_VALUES)}"))
        for line in item.stray_field_lines:
            add(LedgerFinding(line, item.id, "stray-field", f"[{item.id}] this field line is not in the field "
                            "block under the heading (a blank line or prose ends it), so it is ignored"))
        for dep in item.depends_on:
            if dep not in by_id:
                close = difflib.get_close_matches(dep, list(by_id), n=3)
                add(LedgerFinding(item.field_lines["Depends-On"][0], item.id, "missing-dependency",
                                f"[{item.id}] depends on [{dep}], which is not in the ledger"
                                + (f" (did you mean {', '.join(close)}?)" if close else "")))
        for problem in item.path_problems():
            add(LedgerFinding(problem.line, item.id, "bad-path-name", problem.message))
        previous: Attempt | None = None
        for attempt in item.attempts:
            if previous is not None and attempt.number <= previous.number:
                add(LedgerFinding(attempt.line, item.id, "attempt-number",
                                f"[{item.id}] attempt #{attempt.number} follows #{previous.number} "
                                f"(line {previous.line}); numbers must increase"))
            previous = attempt
            if root is not None:
                _lint_evidence(item, attempt, root, add)
    out.extend(_cycle_findings(items, by_id))
    return out


def _lint_evidence(item: Item, attempt: Attempt, root: Path, add: Callable[[LedgerFinding], None]) -> None:
    evidence = Path(attempt.evidence)
    if evidence.is_absolute() or ".." in evidence.parts:
        add(LedgerFinding(attempt.line, item.id, "bad-evidence-path", (
            f"[{item.id}] attempt #{attempt.number} evidence {attempt.evidence!r} must be a path inside the "
            "repository, relative to its root")))
    elif not (root / evidence).exists():
        add(LedgerFinding(attempt.line, item.id, "missing-evidence", f"[{item.id}] attempt #{attempt.number} "
                        f"evidence {attempt.evidence} does not exist under {root}"))


def _cycle_findings(items: list[Item], by_id: dict[str, Item]) -> list[LedgerFinding]:
    """One finding per strongly connected component holding a cycle."""
    order = {item_id: i for i, item_id in enumerate(by_id)}
    graph = {item_id: [d for d in item.depends_on if d in by_id] for item_id, item in by_id.items()}
    components = cyclic_components(graph)
    findings = []
    for component in components:
        members = set(component)
        first = min(component, key=order.__getitem__)
        cycle = _shortest_cycle(first, graph, members)
        rest = sorted(members - set(cycle), key=order.__getitem__)
        item = by_id[first]
        findings.append(LedgerFinding(
            item.field_lines["Depends-On"][0], first, "dependency-cycle",
            "dependency cycle: " + " -> ".join(cycle + [first]) + " (none of them can run; remove one "
            "Depends-On)" + (f"; also caught in it: {', '.join(rest)}" if rest else "")))
    return findings


def _shortest_cycle(start: str, graph: dict[str, list[str]], members: set[str]) -> list[str]:
    parent: dict[str, str | None] = {start: None}
    frontier = [start]
    while frontier:
        following = []
        for node in frontier:
            for nxt in graph[node]:
                if nxt == start:
                    path = [node]
                    while parent[path[-1]] is not None:
                        path.append(parent[path[-1]])
                    return path[::-1]
                if nxt in members and nxt not in parent:
                    parent[nxt] = node
                    following.append(nxt)
        frontier = following
    return [start]
