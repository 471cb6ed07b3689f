"""The chosen operators: cosmic-ray's by name (every name in the table exists) and our two own."""
from __future__ import annotations

import pytest
from cosmic_ray.mutating import mutate_code

from harness.gates.mutation.operators import NumberPlusOne, ReturnNone, operator_name, operators


def test_every_operator_in_the_table_exists_and_names_are_unique() -> None:
    names = [operator_name(op) for op in operators()]
    assert len(names) == len(set(names))
    assert "ReplaceBinaryOperator_Mul_Add" in names and "ReplaceBinaryOperator_Mul_Pow" in names
    assert "ReplaceComparisonOperator_Lt_LtE" in names and "AddNot" in names
    assert names[-2:] == ["ReturnNone", "NumberPlusOne"]


@pytest.mark.parametrize(("operator", "source", "expected"), [
    (ReturnNone(), "def f(a, b):\n    return a * b\n", "def f(a, b):\n    return None\n"),
    (NumberPlusOne(), "x = 0x10\n", "x = 17\n"),
    (NumberPlusOne(), "y = 2.5 * z\n", "y = 3.5 * z\n"),
])
def test_our_operators_rewrite_one_occurrence(operator, source: str, expected: str) -> None:
    assert mutate_code(source, operator, 0) == expected


def test_return_none_leaves_a_bare_return_and_return_none_alone() -> None:
    assert mutate_code("def f():\n    return None\n", ReturnNone(), 0) is None
    assert mutate_code("def f():\n    return\n", ReturnNone(), 0) is None
