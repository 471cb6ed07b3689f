"""Mutants only on the changed lines, chosen spread over the lines, with their one-line descriptions."""
from __future__ import annotations

from cosmic_ray.operators.operator import Operator

from harness.gates.mutation.mutants import Candidate, candidates, choose, make_mutant

SOURCE = """\
def add(a, b):
    return a + b


def mul(a, b):
    return a * b


def sign(x):
    if x > 0 and not x == 3:
        return 1
    return -1
"""


def test_only_the_changed_lines_get_mutants() -> None:
    found = candidates("pkg/calc.py", SOURCE, {5, 6})
    assert {c.line for c in found} == {6}
    mutants = [make_mutant(c, SOURCE) for c in found]
    assert [f"{m.original} -> {m.mutant}" for m in mutants] == [
        "return a * b -> return a + b", "return a * b -> return a - b", "return a * b -> return a / b",
        "return a * b -> return a ** b", "return a * b -> return None"]
    assert all(m.source is not None and m.source.count("\n") == SOURCE.count("\n") for m in mutants)
    assert candidates("pkg/calc.py", SOURCE, set()) == []


def test_choose_spreads_the_budget_over_lines_in_file_order() -> None:
    found = candidates("pkg/calc.py", SOURCE, range(1, 13))
    assert len(found) > 12
    assert [c.line for c in choose(found, 4)] == [2, 6, 10, 11]
    everything = choose(found, 1000)
    assert len(everything) == len(found) and [c.line for c in everything][:5] == [2, 6, 10, 11, 12]


class _Garble(Operator):
    """Turns the name `a` into something that does not parse."""

    def mutation_positions(self, node):
        if node.type == "name" and node.value == "a":
            yield (node.start_pos, node.end_pos)

    def mutate(self, node, index):
        node.value = "a a"
        return node

    @classmethod
    def examples(cls):
        return ()


def test_a_rewrite_that_does_not_parse_has_no_source_but_is_described() -> None:
    mutant = make_mutant(Candidate("pkg/calc.py", 2, _Garble(), 1), SOURCE)
    assert mutant is not None and mutant.source is None
    assert (mutant.line, mutant.original, mutant.mutant) == (2, "return a + b", "return a a + b")
    assert make_mutant(Candidate("pkg/calc.py", 2, _Garble(), 99), SOURCE) is None  # no such occurrence
