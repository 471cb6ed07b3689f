"""Mutants on the changed lines of a module: where each operator applies, which ones to run, and the
mutated source of each (through cosmic-ray's `mutate_code`, which rewrites one occurrence and keeps the
rest of the module byte for byte).

An operator's occurrences are counted in the order cosmic-ray walks the parse tree, so the n-th position
found here is the one `mutate_code(source, operator, n)` rewrites.
"""
from __future__ import annotations

import ast
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from cosmic_ray.ast import ast_nodes, get_ast
from cosmic_ray.mutating import mutate_code
from cosmic_ray.operators.operator import Operator

from harness.gates.mutation.operators import operator_name, operators


@dataclass(frozen=True)
class Candidate:
    """A place an operator applies: `occurrence` counts that operator's positions in the module."""

    path: str
    line: int
    operator: Operator
    occurrence: int


@dataclass(frozen=True)
class Mutant:
    """A mutated module. `source` is None when the rewrite does not parse (it cannot be imported)."""

    path: str
    line: int
    operator: str
    original: str
    mutant: str
    source: str | None


def candidates(path: str, source: str, lines: Iterable[int]) -> list[Candidate]:
    """Every operator position that touches one of `lines` (1-based, in `source`)."""
    wanted = frozenset(lines)
    if not wanted:
        return []
    nodes = list(ast_nodes(get_ast(source)))
    found = []
    for operator in operators():
        occurrence = 0
        for node in nodes:
            for (start_line, _), (end_line, _) in operator.mutation_positions(node):
                touched = wanted.intersection(range(start_line, end_line + 1))
                if touched:
                    found.append(Candidate(path, min(touched), operator, occurrence))
                occurrence += 1
    return found


def choose(found: Sequence[Candidate], limit: int) -> list[Candidate]:
    """At most `limit` candidates, spread over the lines: every line gets one before any gets a second.

    Deterministic: lines in file order, each line's candidates in operator order."""
    by_line: dict[tuple[str, int], list[Candidate]] = defaultdict(list)
    for candidate in found:
        by_line[(candidate.path, candidate.line)].append(candidate)
    queues = [by_line[key] for key in sorted(by_line)]
    chosen: list[Candidate] = []
    depth = 0
    while len(chosen) < limit and any(depth < len(q) for q in queues):
        for queue in queues:
            if depth < len(queue) and len(chosen) < limit:
                chosen.append(queue[depth])
        depth += 1
    return chosen


def _line(text: str, number: int) -> str:
    lines = text.splitlines()
    return lines[number - 1].strip() if 0 < number <= len(lines) else ""


def make_mutant(candidate: Candidate, source: str) -> Mutant | None:
    """The mutated module, or None when the operator changed nothing there."""
    mutated = mutate_code(source, candidate.operator, candidate.occurrence)
    if mutated is None or mutated == source:
        return None
    try:
        ast.parse(mutated)
    except (SyntaxError, ValueError):
        parsed: str | None = None
    else:
        parsed = mutated
    return Mutant(candidate.path, candidate.line, operator_name(candidate.operator), _line(source, candidate.line),
                  _line(mutated, candidate.line), parsed)
