"""What a test's checks compare, for `assertions-weakened` and `expected-values-changed`: the number of checks
can stay the same while what they check goes.

- A check that cannot fail (a tautology): `assert True`, `assert 1`, `assert (x, "message")` (a non-empty
  tuple), `assert not False`, `assert x or True`, `assert x == x` (`is`, `<=`, `>=` of one expression with
  itself), `self.assertTrue(True)`, `self.assertFalse(0)`, and any check call whose first two arguments are
  one expression (`self.assertEqual(x, x)`, `np.testing.assert_allclose(a, a)`).
- An expected value changed: a check present at the base commit and gone with the change, beside a new one
  of the same form with other constants (`assert add(1, 2) == 3` -> `assert add(1, 2) == -1`); or, where no
  check alone shows it, the test as a whole (its decorators included: parametrize cases with explicit ids
  keep their node ids) unchanged but for its constants (`expected = 3` -> `expected = -1`).
"""
from __future__ import annotations

import ast
import copy
from collections import Counter
from dataclasses import dataclass

_SAME_SIDES = (ast.Eq, ast.Is, ast.LtE, ast.GtE)
_CLIP = 120


@dataclass(frozen=True)
class Check:
    """One check as written (`text`, the assert's test without its message) and its form with every constant
    masked (`shape`)."""

    text: str
    shape: str
    tautology: bool


def _clip(text: str) -> str:
    line = " ".join(text.split())
    return line if len(line) <= _CLIP else line[: _CLIP - 3] + "..."


def _signed(node: ast.AST) -> bool:
    """`-1`, `+2.5`: a constant with its sign."""
    return isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub | ast.UAdd) and isinstance(
        node.operand, ast.Constant)


class _Mask(ast.NodeTransformer):
    def visit_Constant(self, node: ast.Constant) -> ast.AST:
        return ast.Name(id="_", ctx=ast.Load())

    def visit_UnaryOp(self, node: ast.UnaryOp) -> ast.AST:
        return ast.Name(id="_", ctx=ast.Load()) if _signed(node) else self.generic_visit(node)


def masked(node: ast.AST) -> str:
    """`node` with every constant (signed numbers as one) replaced by one placeholder: its form, whatever
    values it holds."""
    return ast.dump(_Mask().visit(copy.deepcopy(node)))


def constants(node: ast.AST) -> list[str]:
    """The source of every constant in `node`, in order (`-1` as one)."""
    found: list[str] = []
    stack = [node]
    while stack:
        current = stack.pop()
        if _signed(current) or isinstance(current, ast.Constant):
            found.append(ast.unparse(current))
            continue
        stack.extend(reversed(list(ast.iter_child_nodes(current))))
    return found


def _truthy_constant(node: ast.AST) -> bool:
    if isinstance(node, ast.Constant):
        return bool(node.value)
    if isinstance(node, ast.Tuple | ast.List | ast.Set):
        return bool(node.elts)
    return False


def _always_true(test: ast.AST) -> bool:
    if _truthy_constant(test):
        return True
    if isinstance(test, ast.UnaryOp) and isinstance(test.op, ast.Not) and isinstance(test.operand, ast.Constant):
        return not test.operand.value
    if isinstance(test, ast.BoolOp) and isinstance(test.op, ast.Or):
        return any(_always_true(value) for value in test.values)
    if isinstance(test, ast.Compare) and len(test.ops) == 1 and isinstance(test.ops[0], _SAME_SIDES):
        return ast.dump(test.left) == ast.dump(test.comparators[0])
    return False


def _call_always_passes(call: ast.Call) -> bool:
    name = call.func.attr if isinstance(call.func, ast.Attribute) else getattr(call.func, "id", "")
    args = call.args
    if name == "assertTrue" and args:
        return _always_true(args[0])
    if name == "assertFalse" and args:
        return isinstance(args[0], ast.Constant) and not args[0].value
    return len(args) >= 2 and name.startswith("assert") and ast.dump(args[0]) == ast.dump(args[1])


def check_of(node: ast.AST) -> Check:
    """The Check of an `assert` statement or a check call."""
    if isinstance(node, ast.Assert):
        return Check(_clip(f"assert {ast.unparse(node.test)}"), masked(node.test), _always_true(node.test))
    tautology = isinstance(node, ast.Call) and _call_always_passes(node)
    return Check(_clip(ast.unparse(node)), masked(node), tautology)


def test_form(function: ast.FunctionDef | ast.AsyncFunctionDef) -> tuple[str, tuple[str, ...]]:
    """(the test's form with its constants masked, its constants) over its decorators and body, less its
    docstring and its asserts' messages (rewording those changes no expected value)."""
    copied = copy.deepcopy(function)
    body = copied.body
    if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant) and isinstance(
            body[0].value.value, str):
        copied.body = body[1:] or [ast.Pass()]
    for node in ast.walk(copied):
        if isinstance(node, ast.Assert):
            node.msg = None
    return masked(copied), tuple(constants(copied))


def changed_values(before: list[Check], after: list[Check]) -> list[tuple[str, str]]:
    """(check at the base, check with the change) for each check whose constants alone changed."""
    remaining = list((Counter(after) - Counter(before)).elements())
    pairs: list[tuple[str, str]] = []
    for check in (Counter(before) - Counter(after)).elements():
        partner = next((c for c in remaining if c.shape == check.shape and c.text != check.text), None)
        if partner is not None:
            remaining.remove(partner)
            pairs.append((check.text, partner.text))
    return pairs
