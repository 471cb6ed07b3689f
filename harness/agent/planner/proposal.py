"""A planner's proposal: ledger items in the ledger's grammar, and the ledger text they would make.

A proposal holds `## [ID] Title` items with their fields and prose (docs/specs/ledger.md); text before the
first item is ignored. An item whose id the ledger lacks is **added** at the end of the ledger, in proposal
order. An item whose id the ledger has **replaces** that item's heading, field block and prose; from the
item's first `### Attempts History` heading on, the ledger's item is kept as it was (a proposal never
holds attempt lines: harness.agent.planner.checks refuses one that does). An item proposed exactly as the ledger
has it is no change. Every other byte of the ledger is kept: other items, the preamble, line endings (new
lines take the style of the ledger's first line) and a missing final newline.

Whether a proposal may be applied is harness.agent.planner.checks' business; this module only reads it and
builds the text.
"""
from __future__ import annotations

from dataclasses import dataclass

from harness.ledger import ATTEMPTS_HEADING, Item, Ledger
from harness.ledger.parse import parse_items


@dataclass(frozen=True)
class GrammarProblem:
    """A line of the proposal that breaks the ledger grammar (`code`: parse-error or duplicate-id)."""

    line: int
    item_id: str | None
    code: str
    message: str


@dataclass(frozen=True)
class ProposedItem:
    """One proposed item: as parsed from the proposal (its line numbers are the proposal's), its text
    (heading to last non-blank line, LF line ends), and the ledger's item of that id (None: a new item)."""

    item: Item
    text: str
    existing: Item | None

    @property
    def is_new(self) -> bool:
        return self.existing is None


@dataclass(frozen=True)
class Proposal:
    """The items of a proposal that change the ledger, and the grammar problems of the whole file."""

    items: tuple[ProposedItem, ...]
    problems: tuple[GrammarProblem, ...]

    @property
    def added(self) -> tuple[str, ...]:
        return tuple(p.item.id for p in self.items if p.is_new)

    @property
    def edited(self) -> tuple[str, ...]:
        return tuple(p.item.id for p in self.items if not p.is_new)


def _lines(text: str) -> list[str]:
    """`text` as lines without their ends (CRLF and LF alike), a leading BOM dropped."""
    text = text.removeprefix("\ufeff")
    return text.replace("\r\n", "\n").split("\n")


def _head_lines(lines: list[str], item: Item) -> list[str]:
    """The item's heading, fields and prose, up to (not including) its first Attempts History heading,
    without trailing blank lines."""
    stop = _tail_start(lines, item) or item.content_end_line + 1
    head = [line.rstrip("\r") for line in lines[item.line - 1:stop - 1]]
    while head and not head[-1].strip():
        head.pop()
    return head


def _tail_start(lines: list[str], item: Item) -> int | None:
    """The line of the item's first `### Attempts History` heading (the one above its first attempt), or
    None when it has none."""
    if item.attempts_line is None:
        return None
    if not item.attempts:
        return item.attempts_line
    for number in range(item.attempts[0].line - 1, item.line, -1):
        if lines[number - 1].rstrip("\r").rstrip() == ATTEMPTS_HEADING:
            return number
    return item.attempts_line


def read_proposal(text: str, ledger: Ledger) -> Proposal:
    """Parse a proposal against `ledger`: its items (those that would change nothing left out) and every
    grammar problem (the parse recovers after each, so all are reported)."""
    problems: list[GrammarProblem] = []

    def record(line: int, code: str, message: str, expected: str, item_id: str | None) -> None:
        problems.append(GrammarProblem(line, item_id, code, f"{message} (expected {expected})"))

    lines = _lines(text)
    parsed = parse_items("\n".join(lines), record)
    ledger_lines = ledger.text.split("\n")
    known = set(ledger.ids())
    items = []
    for item in parsed:
        head = lines[item.line - 1:item.content_end_line]
        existing = ledger.get(item.id) if item.id in known else None
        if existing is not None and item.attempts_line is None and head == _head_lines(ledger_lines, existing):
            continue
        items.append(ProposedItem(item, "\n".join(head), existing))
    return Proposal(tuple(items), tuple(sorted(problems, key=lambda p: p.line)))


def merged_text(ledger: Ledger, proposal: Proposal) -> str:
    """The ledger's text with the proposal applied (see the module docstring). Call it only on a proposal
    without grammar problems."""
    pieces = ledger.text.split("\n")
    first_end = ledger.text.find("\n")
    cr = "\r" if first_end > 0 and ledger.text[first_end - 1] == "\r" else ""
    unterminated = pieces[-1] != ""  # the file's last line has no line end
    edits = sorted((p for p in proposal.items if p.existing is not None), key=lambda p: -p.existing.line)
    for proposed in edits:
        old = proposed.existing
        new = proposed.text.split("\n")
        tail = _tail_start(pieces, old)
        if tail is not None:
            start, stop, new = old.line, tail - 1, [*new, ""]
        else:
            start, stop = old.line, old.content_end_line
        last_of_file = unterminated and stop == len(pieces)
        pieces[start - 1:stop] = [line + cr for line in new[:-1]] + [new[-1] + ("" if last_of_file else cr)]
    added = [p.text.split("\n") for p in proposal.items if p.existing is None]
    if not added:
        return "\n".join(pieces)
    base, after = (pieces[:-1], [""]) if not unterminated else (pieces, [])
    if unterminated:
        base[-1] += cr
    block: list[str] = []
    if base and base[-1].rstrip("\r").strip():
        block.append("")
    for number, lines in enumerate(added):
        block += ([""] if number else []) + lines
    ends = [cr] * len(block)
    if not after:
        ends[-1] = ""
    return "\n".join(base + [line + end for line, end in zip(block, ends, strict=True)] + after)
