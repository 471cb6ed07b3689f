"""`runner-detected` and `always-equal`: product code, on the lines the change adds or modifies, that would pass
a test without doing the work. Pure functions of a file's source and its changed line numbers.

`runner-detected`: the code asks whether a test runs it, and so can answer the test differently from a
user. Judged by what it reads and what it compares that with, not by one spelling:
- a comparison (`in`, `==`, `startswith`, `re.search`, ...; or a comprehension comparing what it iterates
  over) that holds a test-runner name (`pytest`, `_pytest`, `py.test`, `unittest`, `nose`,
  `conftest`, `_called_from_test`, a `test`/`tests`/`testing` word) and reads where the code runs:
  `sys.modules`, `sys.argv`, `sys.orig_argv`, `sys.executable`, `os.environ`, `os.getenv`, a frame or a
  stack (`inspect.stack`, `sys._getframe`, `.f_code`, `.filename`, ...);
- a lookup of such a name: `sys.modules.get("pytest")`, `sys.modules["pytest"]`, `importlib.util.find_spec(
  "pytest")`, `os.environ["PYTEST_CURRENT_TEST"]`, `os.getenv("TESTING")`;
- an attribute of `sys` that the interpreter does not have and that names a test (`sys._called_from_test`, set
  by a conftest), read directly or through `hasattr`/`getattr`.

`always-equal`: a value that compares equal to whatever a test compares it with:
- a comparison method (`__eq__`, `__ne__`, `__lt__`, `__le__`, `__gt__`, `__ge__`, `__contains__`) that never
  reads the value it is given, however it is defined (a `def` in a class, a lambda bound to the name, a
  `type(...)` namespace entry), unless all it returns is `NotImplemented`;
- `unittest.mock.ANY` (or the `mock` package's), which equals everything, used in product code.
The mutation gate does not catch such values: its mutants (`return x` -> `return None`, `True` -> `False` in
the `__eq__`) are killed by the very test the value fools, so the score is high.
"""
from __future__ import annotations

import ast
import re
import sys
from collections.abc import Iterable, Iterator

from harness.gates.integrity.import_aliases import import_aliases
from harness.gates.records import IntegrityFinding

RUNNER = "runner-detected"
ALWAYS_EQUAL = "always-equal"
_RUNNER_WORD = re.compile(r"(?i)_?pytest|py\.test|unittest|\bnose2?\b|conftest|_called_from_test"
                          r"|(^|[^a-z])test(s|ing)?([^a-z]|$)")
_SOURCES = frozenset({"sys.modules", "sys.argv", "sys.orig_argv", "sys.executable", "os.environ", "os.getenv",
                      "inspect.stack", "inspect.currentframe", "inspect.getouterframes", "sys._getframe",
                      "traceback.extract_stack", "traceback.format_stack"})
_FRAME_ATTRS = frozenset({"f_code", "f_back", "f_globals", "co_filename", "filename", "f_locals"})
_LOOKUPS = frozenset({"sys.modules.get", "os.environ.get", "os.getenv", "importlib.util.find_spec",
                      "pkgutil.find_loader", "importlib.import_module"})
_SUBSCRIPTED = frozenset({"sys.modules", "os.environ"})
_TEXT_TESTS = frozenset({"startswith", "endswith", "find", "rfind", "index", "rindex", "count", "__contains__",
                         "match", "search", "fullmatch"})
_MATCHERS = frozenset({"re.search", "re.match", "re.fullmatch", "fnmatch.fnmatch", "fnmatch.fnmatchcase"})
_COMPARISONS = frozenset({"__eq__", "__ne__", "__lt__", "__le__", "__gt__", "__ge__", "__contains__"})
_ANY = frozenset({"unittest.mock.ANY", "mock.ANY"})
_SYS_NAMES = frozenset(dir(sys))
_CLIP = 140


def _clip(text: str) -> str:
    line = " ".join(text.split())
    return line if len(line) <= _CLIP else line[: _CLIP - 3] + "..."


class _Names:
    """Import aliases: `environ` -> `os.environ`, `m` -> `unittest.mock`."""

    def __init__(self, tree: ast.Module) -> None:
        self.aliases = import_aliases(tree)

    def dotted(self, node: ast.AST) -> str | None:
        parts: list[str] = []
        while isinstance(node, ast.Attribute):
            parts.append(node.attr)
            node = node.value
        if isinstance(node, ast.Call):
            node = node.func
            inner = self.dotted(node)
            return None if inner is None else ".".join([inner, *reversed(parts)])
        if not isinstance(node, ast.Name):
            return None
        return ".".join([self.aliases.get(node.id, node.id), *reversed(parts)])


def _text(node: ast.AST) -> str | None:
    return node.value if isinstance(node, ast.Constant) and isinstance(node.value, str) else None


def _touched(node: ast.AST, lines: frozenset[int]) -> bool:
    start = getattr(node, "lineno", None)
    if start is None:
        return False
    return any(line in lines for line in range(start, (getattr(node, "end_lineno", None) or start) + 1))


def _planted(attr: str | None) -> bool:
    """A name on `sys` the interpreter does not have and that speaks of tests: one a conftest.py put there
    (names of newer interpreters than the harness's are not taken for one)."""
    return attr is not None and attr not in _SYS_NAMES and bool(_RUNNER_WORD.search(attr))


def _reads_where_it_runs(node: ast.AST, names: _Names) -> bool:
    for part in ast.walk(node):
        if isinstance(part, ast.Attribute) and part.attr in _FRAME_ATTRS:
            return True
        if isinstance(part, ast.Name | ast.Attribute) and names.dotted(part) in _SOURCES:
            return True
    return False


def _comparison(node: ast.AST, names: _Names) -> bool:
    if isinstance(node, ast.Compare):
        return True
    return isinstance(node, ast.Call) and (
        (isinstance(node.func, ast.Attribute) and node.func.attr in _TEXT_TESTS) or names.dotted(node.func) in _MATCHERS)


def _asks(node: ast.AST, names: _Names) -> bool:
    """A comparison (or a comprehension that compares what it iterates over) that holds a test-runner name and
    reads where the code runs."""
    if isinstance(node, ast.ListComp | ast.SetComp | ast.GeneratorExp | ast.DictComp):
        if not any(_comparison(part, names) for part in ast.walk(node)):
            return False
    elif not _comparison(node, names):
        return False
    return _reads_where_it_runs(node, names) and any(
        _RUNNER_WORD.search(t) for part in ast.walk(node) if (t := _text(part)) is not None)


def _runner_detections(tree: ast.Module, names: _Names, lines: frozenset[int]) -> Iterator[ast.AST]:
    for node in ast.walk(tree):
        if not _touched(node, lines):
            continue
        if _asks(node, names):
            yield node
        elif isinstance(node, ast.Call):
            func = names.dotted(node.func)
            first = _text(node.args[0]) if node.args else None
            looks_up = func in _LOOKUPS and first is not None and bool(_RUNNER_WORD.search(first))
            planted = (func in ("hasattr", "getattr") and len(node.args) >= 2 and names.dotted(node.args[0]) == "sys"
                       and _planted(_text(node.args[1])))
            if looks_up or planted:
                yield node
        elif isinstance(node, ast.Subscript) and names.dotted(node.value) in _SUBSCRIPTED:
            key = _text(node.slice)
            if key is not None and _RUNNER_WORD.search(key):
                yield node
        elif isinstance(node, ast.Attribute) and names.dotted(node.value) == "sys" and _planted(node.attr):
            yield node


def _ignores_its_argument(function: ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda) -> bool:
    """A comparison method whose body never reads the value it is given (the second parameter, or the
    star-args it arrives in), and that returns something other than NotImplemented."""
    arguments = [*function.args.posonlyargs, *function.args.args]
    given = arguments[1].arg if len(arguments) > 1 else (function.args.vararg.arg if function.args.vararg else None)
    if given is None:
        return False
    body: list[ast.AST] = [function.body] if isinstance(function, ast.Lambda) else list(function.body)
    if any(isinstance(n, ast.Name) and n.id == given for part in body for n in ast.walk(part)):
        return False
    if isinstance(function, ast.Lambda):
        return not (isinstance(function.body, ast.Name) and function.body.id == "NotImplemented")
    returns = [n.value for part in body for n in ast.walk(part) if isinstance(n, ast.Return)]
    return any(not (isinstance(v, ast.Name) and v.id == "NotImplemented") for v in returns if v is not None)


def _comparison_methods(tree: ast.Module) -> Iterator[tuple[str, ast.AST]]:
    """(name, definition) of every comparison method: defs and lambdas in class bodies, `type(...)` entries."""
    for node in ast.walk(tree):
        if isinstance(node, ast.ClassDef):
            for statement in node.body:
                if isinstance(statement, ast.FunctionDef | ast.AsyncFunctionDef) and statement.name in _COMPARISONS:
                    yield statement.name, statement
                elif isinstance(statement, ast.Assign) and isinstance(statement.value, ast.Lambda):
                    for target in statement.targets:
                        if isinstance(target, ast.Name) and target.id in _COMPARISONS:
                            yield target.id, statement.value
        elif isinstance(node, ast.Dict):
            for key, value in zip(node.keys, node.values, strict=True):
                if key is not None and _text(key) in _COMPARISONS and isinstance(value, ast.Lambda):
                    yield str(_text(key)), value


def _always_equal(tree: ast.Module, names: _Names, lines: frozenset[int]) -> Iterator[tuple[ast.AST, str]]:
    for name, definition in _comparison_methods(tree):
        if _touched(definition, lines) and _ignores_its_argument(definition):  # type: ignore[arg-type]
            yield definition, f"`{name}` never reads the value it is compared with"
    for node in ast.walk(tree):
        if isinstance(node, ast.Name | ast.Attribute) and _touched(node, lines) and names.dotted(node) in _ANY \
                and not isinstance(getattr(node, "ctx", None), ast.Store):
            yield node, "unittest.mock.ANY equals everything"


def product_findings(path: str, source: str | None, lines: Iterable[int]) -> list[IntegrityFinding]:
    """`runner-detected` and `always-equal` findings on the changed `lines` of a product file."""
    changed = frozenset(lines)
    if not source or not changed:
        return []
    try:
        tree = ast.parse(source)
    except (SyntaxError, ValueError):
        return []
    names = _Names(tree)
    findings: list[IntegrityFinding] = []
    seen: set[int] = set()
    for node in _runner_detections(tree, names, changed):
        line = getattr(node, "lineno", 0)
        if line not in seen:  # one finding per line: a comparison and the lookup inside it are one detection
            seen.add(line)
            findings.append(IntegrityFinding(RUNNER, path, f"{path}:{line}", f"`{_clip(ast.unparse(node))}` asks "
                                             "whether a test runs the code, so it can behave otherwise under test"))
    for node, why in _always_equal(tree, names, changed):
        line = getattr(node, "lineno", 0)
        findings.append(IntegrityFinding(ALWAYS_EQUAL, path, f"{path}:{line}", f"{why}: a value holding it passes "
                                         "any comparison a test makes"))
    return findings
