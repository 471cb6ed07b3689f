"""What a test module's source says about each of its tests, and what got weaker between two versions.

Read with `ast` (the module is never imported). Tests are pytest's defaults: module-level functions named
`test*`, and methods named `test*` of classes named `Test*` (nested classes too); their ids are node ids
without parameters (`path::TestClass::test_name`). Names are resolved through the module's imports, so
`np.testing.assert_allclose`, `from pytest import raises` and `import numpy.testing as npt` all count.
"""
from __future__ import annotations

import ast
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from harness.gates.integrity.check_values import Check, changed_values, check_of, test_form
from harness.gates.integrity.import_aliases import import_aliases
from harness.gates.records import IntegrityFinding

PYTEST_CHECKS = frozenset({"pytest.raises", "pytest.warns", "pytest.approx", "pytest.deprecated_call"})
CHECK_MODULES = ("numpy.testing.", "torch.testing.")
SKIP_MARKS = frozenset({"pytest.mark.skip", "pytest.mark.skipif", "pytest.mark.xfail"})
SKIP_CALLS = frozenset({"pytest.skip", "pytest.xfail", "pytest.importorskip"})
# Statements whose body may not run: a check under one of these can be passed over.
_CONDITIONAL = (ast.If, ast.While, ast.Try, ast.TryStar, ast.Match)
_FUNCTIONS = (ast.FunctionDef, ast.AsyncFunctionDef)


@dataclass(frozen=True)
class TestFacts:
    """One test as written. `skip_marks`: the source of every skip/skipif/xfail mark that applies to it
    (its decorators, its classes' decorators and `pytestmark`s, parametrize's `marks=`)."""

    __test__ = False  # not a test class, despite the name

    checks: int
    conditional_checks: int
    skip_marks: tuple[str, ...]
    skip_calls: int
    returns: int
    conditional_def: bool
    check_list: tuple[Check, ...] = ()  # each check as written, in order (harness.gates.integrity.check_values)
    form: str = ""  # the test with its constants masked
    values: tuple[str, ...] = ()  # its constants, in order


@dataclass(frozen=True)
class ModuleFacts:
    """`tests` by id without the file (`TestClass::test_name`); `module_marks`: skip marks of the module's
    `pytestmark`; `helper_skip_calls`: skip calls outside the tests (fixtures, helpers, module level)."""

    tests: Mapping[str, TestFacts] = field(default_factory=lambda: MappingProxyType({}))
    module_marks: tuple[str, ...] = ()
    helper_skip_calls: int = 0
    parsed: bool = True


class _Names:
    """The module's import aliases: `np` -> `numpy`, `raises` -> `pytest.raises`."""

    def __init__(self, tree: ast.Module) -> None:
        self.aliases = import_aliases(tree)

    def resolve(self, node: ast.AST) -> str | None:
        """The dotted name an expression refers to (`pytest.mark.skip`), through the aliases."""
        parts: list[str] = []
        while isinstance(node, ast.Attribute):
            parts.append(node.attr)
            node = node.value
        if isinstance(node, ast.Call):  # pytest.mark.skipif(...) used as a decorator
            return self.resolve(node.func)
        if not isinstance(node, ast.Name):
            return None
        head = self.aliases.get(node.id, node.id)
        return ".".join([head, *reversed(parts)])


def _is_check(node: ast.AST, names: _Names) -> bool:
    if isinstance(node, ast.Assert):
        return True
    if not isinstance(node, ast.Call):
        return False
    func = node.func
    if isinstance(func, ast.Attribute) and isinstance(func.value, ast.Name) and func.value.id == "self":
        return func.attr.startswith("assert")  # unittest.TestCase
    name = names.resolve(func)
    if name is None:
        return False
    return name in PYTEST_CHECKS or (name.startswith(CHECK_MODULES) and name.rsplit(".", 1)[-1].startswith("assert"))


def _is_skip_call(node: ast.AST, names: _Names) -> bool:
    return isinstance(node, ast.Call) and names.resolve(node.func) in SKIP_CALLS


def _skip_marks(expressions: list[ast.expr], names: _Names) -> list[str]:
    """The source of every skip/skipif/xfail mark inside these expressions (decorators, `pytestmark`)."""
    marks = []
    for expression in expressions:
        calls_of = {id(n.func): n for n in ast.walk(expression) if isinstance(n, ast.Call)}
        for node in ast.walk(expression):
            if isinstance(node, ast.Attribute | ast.Name) and names.resolve(node) in SKIP_MARKS:
                marks.append(ast.unparse(calls_of.get(id(node), node)))
    return marks


def _pytestmark(body: list[ast.stmt]) -> list[ast.expr]:
    return [s.value for s in body if isinstance(s, ast.Assign)
            and any(isinstance(t, ast.Name) and t.id == "pytestmark" for t in s.targets)]


def _walk_body(fn: ast.AST) -> Iterator[tuple[ast.AST, bool, bool]]:
    """(node, under a condition, inside a nested function) for every node of a function's body."""
    stack = [(child, False, False) for child in reversed(list(ast.iter_child_nodes(fn)))
             if child not in getattr(fn, "decorator_list", ())]
    while stack:
        node, conditional, nested = stack.pop()
        yield node, conditional, nested
        inner_conditional = conditional or isinstance(node, _CONDITIONAL)
        inner_nested = nested or isinstance(node, (*_FUNCTIONS, ast.Lambda))
        for child in reversed(list(ast.iter_child_nodes(node))):
            # the condition of an `if` runs; only its body may not
            cond = inner_conditional and not (isinstance(node, ast.If | ast.While) and child is node.test)
            stack.append((child, cond or conditional, inner_nested))


def _test_facts(fn: ast.FunctionDef | ast.AsyncFunctionDef, inherited_marks: list[str], conditional_def: bool,
                names: _Names) -> TestFacts:
    checks = conditional_checks = skip_calls = returns = 0
    check_list: list[Check] = []
    for node, conditional, nested in _walk_body(fn):
        if _is_check(node, names):
            checks += 1
            conditional_checks += conditional
            check_list.append(check_of(node))
        elif _is_skip_call(node, names):
            skip_calls += 1
        elif isinstance(node, ast.Return) and not nested:
            returns += 1
    marks = sorted(inherited_marks + _skip_marks(list(fn.decorator_list), names))
    form, values = test_form(fn)
    return TestFacts(checks, conditional_checks, tuple(marks), skip_calls, returns, conditional_def,
                     tuple(check_list), form, values)


def _collect(body: list[ast.stmt], prefix: str, marks: list[str], conditional: bool, names: _Names,
             tests: dict[str, TestFacts], in_class: bool) -> None:
    for stmt in body:
        if isinstance(stmt, _FUNCTIONS) and stmt.name.startswith("test"):
            tests[prefix + stmt.name] = _test_facts(stmt, marks, conditional, names)
        elif isinstance(stmt, ast.ClassDef) and stmt.name.startswith("Test"):
            class_marks = marks + _skip_marks(list(stmt.decorator_list) + _pytestmark(stmt.body), names)
            _collect(stmt.body, f"{prefix}{stmt.name}::", class_marks, conditional, names, tests, True)
        elif isinstance(stmt, ast.If | ast.Try | ast.TryStar | ast.With | ast.AsyncWith) and not in_class:
            for block in ("body", "orelse", "finalbody", "handlers"):
                inner = getattr(stmt, block, [])
                inner = [s for h in inner for s in h.body] if block == "handlers" else inner
                _collect(inner, prefix, marks, conditional or not isinstance(stmt, ast.With | ast.AsyncWith),
                         names, tests, in_class)


def module_facts(source: str) -> ModuleFacts:
    """The facts of every test in a module's source; a module that does not parse has none (`parsed`)."""
    try:
        tree = ast.parse(source)
    except (SyntaxError, ValueError):
        return ModuleFacts(parsed=False)
    names = _Names(tree)
    module_marks = _skip_marks(_pytestmark(tree.body), names)
    tests: dict[str, TestFacts] = {}
    _collect(tree.body, "", module_marks, False, names, tests, False)
    in_tests = sum(t.skip_calls for t in tests.values())
    all_calls = sum(1 for node in ast.walk(tree) if _is_skip_call(node, names))
    return ModuleFacts(MappingProxyType(tests), tuple(sorted(module_marks)), all_calls - in_tests)


def _gained(new: tuple[str, ...], old: tuple[str, ...]) -> list[str]:
    return list((Counter(new) - Counter(old)).elements())


def compare_modules(path: str, old: ModuleFacts, new: ModuleFacts) -> list[IntegrityFinding]:
    """Findings for tests present in both versions (removed tests are judged by collection)."""
    findings: list[IntegrityFinding] = []

    def add(kind: str, test: str, detail: str) -> None:
        findings.append(IntegrityFinding(kind, path, test, detail))

    if not (old.parsed and new.parsed):
        return findings
    for name, before in old.tests.items():
        after = new.tests.get(name)
        if after is None:
            continue
        node = f"{path}::{name}"
        for mark in _gained(after.skip_marks, before.skip_marks):
            add("test-skipped", node, f"gains the mark {mark}")
        if after.skip_calls > before.skip_calls:
            add("test-skipped", node, f"gains {after.skip_calls - before.skip_calls} pytest.skip/xfail/"
                "importorskip call(s)")
        if after.conditional_def and not before.conditional_def:
            add("test-skipped", node, "is now defined under a condition (if/try), so it may not be collected")
        if after.returns > before.returns:
            add("test-skipped", node, "gains a return statement, so its checks after it may not run")
        unconditional_before = before.checks - before.conditional_checks
        unconditional_after = after.checks - after.conditional_checks
        moved = min(after.conditional_checks - before.conditional_checks, unconditional_before - unconditional_after)
        if moved > 0:
            add("test-skipped", node, f"{moved} check(s) moved under a condition (if/while/try), so they may "
                "not run")
        if after.checks < before.checks:
            add("assertions-removed", node, f"checks {before.checks} -> {after.checks}")
        _value_findings(node, before, after, add)
    if new.helper_skip_calls > old.helper_skip_calls:
        add("test-skipped", path, "a fixture, helper or module-level statement gains a pytest.skip/xfail/"
            "importorskip call")
    return findings


def _value_findings(node: str, before: TestFacts, after: TestFacts, add: Callable[[str, str, str], None]) -> None:
    """assertions-weakened (a check that cannot fail gained) and expected-values-changed (a check's constants,
    or the test's, changed while its form stayed)."""
    tautologies = list((Counter(c.text for c in after.check_list if c.tautology)
                        - Counter(c.text for c in before.check_list if c.tautology)).elements())
    if tautologies:
        add("assertions-weakened", node, f"gains {len(tautologies)} check(s) that cannot fail: "
            + ", ".join(f"`{text}`" for text in tautologies[:3]))
    pairs = changed_values(list(before.check_list), list(after.check_list))
    if pairs:
        more = f" (+{len(pairs) - 2} more)" if len(pairs) > 2 else ""
        add("expected-values-changed", node, "; ".join(f"`{old}` -> `{new}`" for old, new in pairs[:2]) + more)
    elif before.form and before.form == after.form and before.values != after.values:
        changed = [(b, a) for b, a in zip(before.values, after.values, strict=True) if b != a]
        more = f" (+{len(changed) - 3} more)" if len(changed) > 3 else ""
        add("expected-values-changed", node, "its constants changed: "
            + ", ".join(f"{b} -> {a}" for b, a in changed[:3]) + more)


def removed_tests(path: str, old: ModuleFacts, new: ModuleFacts | None) -> list[IntegrityFinding]:
    """Tests defined at B and gone from the source (used where collection cannot tell)."""
    gone = [name for name in old.tests if new is None or name not in new.tests]
    return [IntegrityFinding("test-removed", path, f"{path}::{name}", "defined at the base commit, gone now")
            for name in gone]
