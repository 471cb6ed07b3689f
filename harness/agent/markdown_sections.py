"""Pieces of a Markdown file for the agent's prompt: the section under a GitHub anchor (a spec excerpt) and
the entries of a findings file that concern an item.

The text is parsed by markdown-it-py (CommonMark with tables, the parser the web report renders with), so
headings inside fenced code, setext headings, list items and table rows are what a Markdown reader sees.
Only top-level blocks count: a `#` line inside a list item or a fence is not a heading.
"""
from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from markdown_it import MarkdownIt

_PARSER = MarkdownIt("commonmark").enable("table")
_LIST_OPEN = ("bullet_list_open", "ordered_list_open")


@dataclass(frozen=True)
class Heading:
    """A top-level heading: its first source line, its level (1-6) and its text."""

    line: int
    level: int
    title: str


@dataclass(frozen=True)
class Block:
    """A piece a finding can be: a paragraph, one list item, one table row with its header (`head`), or
    another top-level block (fence, quote, html). Lines are source line numbers, `end` exclusive."""

    start: int
    end: int
    head: tuple[int, int] | None = None

    def text(self, lines: list[str]) -> str:
        body = lines[self.start:self.end]
        if self.head is not None:
            body = [*lines[self.head[0]:self.head[1]], *body]
        return "\n".join(body).strip("\n")


def github_slug(heading: str) -> str:
    """The anchor GitHub gives a heading: lowercase, punctuation dropped, spaces to `-`."""
    text = re.sub(r"!?\[([^\]]*)\]\([^)]*\)", r"\1", heading)
    text = re.sub(r"<[^>]+>", "", text).strip().lower()
    return re.sub(r"[^\w\- ]", "", text).replace(" ", "-")


def _parse(text: str) -> tuple[list[Heading], list[Block]]:
    """The top-level headings and the other top-level pieces, in source order."""
    tokens = _PARSER.parse(text)
    headings: list[Heading] = []
    blocks: list[Block] = []
    table_head: tuple[int, int] | None = None
    for index, token in enumerate(tokens):
        if token.map is None:
            continue
        start, end = token.map
        if token.level == 0 and token.type == "heading_open":
            headings.append(Heading(start, int(token.tag[1]), tokens[index + 1].content.strip()))
        elif token.level == 0 and token.type == "table_open":
            table_head = (start, start + 2)  # the header row and its separator
        elif token.level == 2 and token.type == "tr_open" and table_head and start >= table_head[1]:
            blocks.append(Block(start, end, table_head))
        elif token.level == 1 and token.type == "list_item_open" or token.level == 0 and token.nesting >= 0 and token.type not in (
                "table_open", "heading_open", *_LIST_OPEN):  # an item of a top-level list
            blocks.append(Block(start, end))
    return headings, blocks


def headings(text: str) -> list[Heading]:
    return _parse(text)[0]


def markdown_section(text: str, anchor: str) -> str | None:
    """The section under the heading whose GitHub anchor is `anchor`, up to the next heading of the same
    or a higher level; None when no heading has that anchor."""
    lines = text.splitlines()
    heads = headings(text)
    wanted = anchor.lower()
    seen: dict[str, int] = {}
    for n, head in enumerate(heads):
        slug = github_slug(head.title)
        count = seen.get(slug, 0)
        seen[slug] = count + 1
        if (slug if count == 0 else f"{slug}-{count}") == wanted:
            end = next((h.line for h in heads[n + 1:] if h.level <= head.level), len(lines))
            return "\n".join(lines[head.line:end]).rstrip()
    return None


def _sections(heads: list[Heading], total: int) -> Iterator[tuple[Heading | None, int, int]]:
    """(heading, first body line, end of body before the next heading) for the preamble and each heading."""
    starts = [h.line for h in heads]
    yield None, 0, starts[0] if starts else total
    for n, head in enumerate(heads):
        yield head, head.line + 1, starts[n + 1] if n + 1 < len(starts) else total


def relevant_findings(text: str, matches: Callable[[str], bool]) -> list[str]:
    """Entries of a findings file that `matches`: a heading that matches brings its whole section
    (subsections included); otherwise matching paragraphs, list items and table rows (with their header)
    are taken one by one, under their heading."""
    lines = text.splitlines()
    heads, blocks = _parse(text)
    entries: list[str] = []
    covered_until = -1
    for head, body_start, body_end in _sections(heads, len(lines)):
        if head is not None and head.line < covered_until:
            continue
        if head is not None and matches(head.title):
            end = next((h.line for h in heads if h.line > head.line and h.level <= head.level), len(lines))
            entries.append("\n".join(lines[head.line:end]).strip())
            covered_until = end
            continue
        hits = [b.text(lines) for b in blocks if body_start <= b.start < body_end and matches(b.text(lines))]
        if hits:
            entries.append("\n\n".join([lines[head.line], *hits] if head is not None else hits).strip())
    return entries
