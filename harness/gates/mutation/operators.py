"""The mutation operators: cosmic-ray's, a chosen few per construct, and two of our own on its interface.

cosmic-ray (a maintained mutation-testing library) finds the positions and rewrites the code through
parso, keeping every other byte of the module. Its full cross product (every binary operator into each
of the eleven others, every comparison into each of the seven others) would spend a `max_mutants` budget
of 40 on two lines; the table below keeps the replacements that tell a strong test from a weak one: for
`a * b`, `a + b` and `a ** b` agree with it on (2, 2), `a - b` and `a / b` on (2, 1)-like inputs.

Ours, on cosmic-ray's `Operator` interface: `ReturnNone` (return values) and `NumberPlusOne`
(constants); cosmic-ray's own number operator evaluates the literal with `eval`, ours reads it with
`ast.literal_eval`.
"""
from __future__ import annotations

import ast
from collections.abc import Iterator
from typing import Any

import parso
from cosmic_ray.operators import (
    binary_operator_replacement,
    boolean_replacer,
    comparison_operator_replacement,
    unary_operator_replacement,
)
from cosmic_ray.operators.operator import Example, Operator

BINARY = {
    "Add": ("Sub", "Mul"), "Sub": ("Add", "Mul"), "Mul": ("Add", "Sub", "Div", "Pow"), "Div": ("Mul", "FloorDiv"),
    "FloorDiv": ("Div", "Mul"), "Mod": ("FloorDiv", "Mul"), "Pow": ("Mul",), "LShift": ("RShift",),
    "RShift": ("LShift",), "BitOr": ("BitAnd",), "BitAnd": ("BitOr",), "BitXor": ("BitAnd",),
}
COMPARISON = {
    "Eq": ("NotEq",), "NotEq": ("Eq",), "Lt": ("LtE", "GtE"), "LtE": ("Lt", "Gt"), "Gt": ("GtE", "LtE"),
    "GtE": ("Gt", "Lt"), "Is": ("IsNot",), "IsNot": ("Is",),
}
UNARY = ("ReplaceUnaryOperator_USub_UAdd", "ReplaceUnaryOperator_Delete_Not")


class ReturnNone(Operator):
    """`return <expr>` -> `return None`."""

    def mutation_positions(self, node: Any) -> Iterator[tuple[tuple[int, int], tuple[int, int]]]:
        if node.type == "return_stmt" and len(node.children) == 2:
            value = node.children[1]
            if not (value.type == "keyword" and value.value == "None"):
                yield (value.start_pos, value.end_pos)

    def mutate(self, node: Any, index: int) -> Any:
        node.children[1] = parso.parse(" None")
        return node

    @classmethod
    def examples(cls) -> tuple[Example, ...]:
        return (Example("return a * b", "return None"),)


class NumberPlusOne(Operator):
    """A numeric constant `n` -> `n + 1` (`0` -> `1`, `2.5` -> `3.5`, `0x10` -> `17`)."""

    def mutation_positions(self, node: Any) -> Iterator[tuple[tuple[int, int], tuple[int, int]]]:
        if node.type == "number":
            yield (node.start_pos, node.end_pos)

    def mutate(self, node: Any, index: int) -> Any:
        value = ast.literal_eval(node.value) + 1
        return parso.python.tree.Number(repr(value), node.start_pos, node.prefix)

    @classmethod
    def examples(cls) -> tuple[Example, ...]:
        return (Example("x = 1", "x = 2"), Example("x = 0x10", "x = 17"))


def _named(module: Any, name: str) -> Operator:
    return getattr(module, name)()


def operators() -> tuple[Operator, ...]:
    """Every operator the mutation gate applies, in a fixed order (the order mutants are listed in)."""
    chosen: list[Operator] = []
    for source, targets in BINARY.items():
        chosen += [_named(binary_operator_replacement, f"ReplaceBinaryOperator_{source}_{t}") for t in targets]
    for source, targets in COMPARISON.items():
        chosen += [_named(comparison_operator_replacement, f"ReplaceComparisonOperator_{source}_{t}")
                   for t in targets]
    chosen += [_named(unary_operator_replacement, name) for name in UNARY]
    chosen += [boolean_replacer.ReplaceAndWithOr(), boolean_replacer.ReplaceOrWithAnd(),
               boolean_replacer.ReplaceTrueWithFalse(), boolean_replacer.ReplaceFalseWithTrue(),
               boolean_replacer.AddNot(), ReturnNone(), NumberPlusOne()]
    return tuple(chosen)


def operator_name(operator: Operator) -> str:
    return type(operator).__name__
