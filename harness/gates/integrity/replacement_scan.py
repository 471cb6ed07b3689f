"""`code-under-test-replaced`: test-side code that puts something else in place of the project's own code.

A conftest.py (or a helper module it loads) that replaces `pkg.calc.mul` makes every test check the stand-in:
a stub `mul` in the product and a real one swapped in by a fixture goes GREEN. Judged by what the code does,
through the module's imports and its own names, never by the spelling:

- what is replaced: an attribute of the project's own modules (`pkg.calc.mul`, `Thing.method` imported from
  one), an entry of such a module's namespace (`vars(mod)[...]`, `mod.__dict__[...]`), or a module in
  `sys.modules` (named for the project, or by a name that cannot be read);
- how: assignment, augmented assignment or `del`; `setattr`, `delattr`, `object.__setattr__`, `type.__setattr__`;
  any call that patches a target it is given (`monkeypatch.setattr/delattr/setitem`, `mock.patch`,
  `patch.object`, `patch.dict`, `mocker.patch`, ...), with the target as an object or a dotted string
  (`"pkg.calc.mul"`); a namespace's own methods (`vars(mod).update(...)`, `sys.modules.setdefault(...)`);
- the module reached through an alias is the module: `m = pkg.calc`, `m = sys.modules["pkg.calc"]`,
  `m = importlib.import_module("pkg.calc")`, `m = __import__("pkg.calc")`; a name built of string constants
  (`"pkg." + "calc"`, an f-string of constants, a name bound to one) is read as the string it makes, and a
  module imported by a name that cannot be read (`import_module(os.environ["M"])`) may be the project's:
  writing to it counts.

Where: the whole of a conftest.py and of every other non-test module among the test files (a plugin or
helper pytest loads); in a test module, its module-level code and its autouse fixtures (`autouse` given
any value but a literal false, or through `**kwargs`; the fixture decorator reached through any alias).
A test function that patches what it calls stays out of it: that is plain mocking, in view of its reader.

The project's own modules: the top-level packages and modules of the tree (and of `src/`), less tests.
"""
from __future__ import annotations

import ast
import os
import posixpath
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from harness.gates.integrity.import_aliases import import_aliases
from harness.gates.records import IntegrityFinding

REPLACED = "code-under-test-replaced"
_PATCHING = frozenset({"setattr", "delattr", "setitem", "delitem", "patch", "object", "dict", "multiple",
                       "__setattr__", "__delattr__", "__setitem__", "__delitem__"})
_NAMESPACE_METHODS = frozenset({"update", "setdefault", "pop", "popitem", "clear", "__setitem__", "__delitem__"})
_FALSE = (False, 0, None)
_NOT_PRODUCT = frozenset({"tests", "test", "testing", "docs", "doc", "conftest", "setup", "noxfile", "build"})
_CLIP = 140
# What a module imported by a name the scan cannot read stands for; it has no dot, so `_product` sees it whole.
COMPUTED = "<a module imported by a computed name>"


def project_modules(root: Path) -> frozenset[str]:
    """The project's own top-level packages and modules in the tree at `root` (and its `src/` layout)."""
    names: set[str] = set()
    for folder in (root, root / "src"):
        try:
            entries = os.listdir(folder)
        except OSError:
            continue
        for entry in entries:
            if entry.endswith(".py") and not entry.startswith("test_"):
                names.add(entry[:-3])
            elif (folder / entry / "__init__.py").is_file():
                names.add(entry)
    return frozenset(names - _NOT_PRODUCT)


@dataclass(frozen=True)
class Replacement:
    target: str
    code: str


def _clip(text: str) -> str:
    line = " ".join(text.split())
    return line if len(line) <= _CLIP else line[: _CLIP - 3] + "..."


class _Resolver:
    """Names bound to the project's modules and objects: imports, and assignments from such a value."""

    def __init__(self, tree: ast.Module, products: frozenset[str]) -> None:
        self.products = products
        self.names = import_aliases(tree)
        self.strings: dict[str, str] = {}
        assignments = [n for n in ast.walk(tree) if isinstance(n, ast.Assign) and len(n.targets) == 1
                       and isinstance(n.targets[0], ast.Name)]
        for node in assignments:
            target = node.targets[0]
            assert isinstance(target, ast.Name)
            text = self.text(node.value)
            if text is not None:
                self.strings[target.id] = text
        for _ in range(3):  # aliases of aliases
            for node in assignments:
                target = node.targets[0]
                assert isinstance(target, ast.Name)
                value = self.dotted(node.value)
                if value is not None:
                    self.names[target.id] = value

    def text(self, node: ast.AST) -> str | None:
        """The string `node` makes where only string constants make it (`"pkg." + "calc"`, `f"pkg.{NAME}"`
        of a constant NAME, a name bound to such a string), else None."""
        if isinstance(node, ast.Constant):
            return node.value if isinstance(node.value, str) else None
        if isinstance(node, ast.Name):
            return self.strings.get(node.id)
        if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
            left, right = self.text(node.left), self.text(node.right)
            return None if left is None or right is None else left + right
        if isinstance(node, ast.JoinedStr):
            parts = [self.text(v.value if isinstance(v, ast.FormattedValue) else v) for v in node.values]
            return None if None in parts else "".join(p for p in parts if p is not None)
        return None

    def _product(self, dotted: str | None) -> str | None:
        if dotted is not None and dotted.partition(".")[0] == COMPUTED:
            return dotted
        return dotted if dotted is not None and dotted.partition(".")[0] in self.products else None

    def dotted(self, node: ast.AST) -> str | None:
        """The dotted name of any object `node` evaluates to, where the names allow it to be known."""
        if isinstance(node, ast.Name):
            return self.names.get(node.id, node.id)
        if isinstance(node, ast.Attribute):
            head = self.dotted(node.value)
            return None if head is None else f"{head}.{node.attr}"
        if isinstance(node, ast.Subscript) and self.dotted(node.value) == "sys.modules":
            return _text(node.slice)
        if isinstance(node, ast.Call):
            func = self.dotted(node.func)
            if func in ("importlib.import_module", "__import__", "sys.modules.get") and node.args:
                name = self.text(node.args[0])
                return COMPUTED if name is None else name
            if func == "getattr" and len(node.args) >= 2 and self.text(node.args[1]) is not None:
                head = self.dotted(node.args[0])
                return None if head is None else f"{head}.{self.text(node.args[1])}"
        return None

    def product(self, node: ast.AST) -> str | None:
        """The project's object `node` is, or None."""
        return self._product(self.dotted(node))

    def namespace(self, node: ast.AST) -> str | None:
        """What a namespace expression stands for: `vars(P)` / `P.__dict__` -> P (a project object), and
        `sys.modules` -> "sys.modules"; else None."""
        if isinstance(node, ast.Call) and self.dotted(node.func) == "vars" and node.args:
            return self.product(node.args[0])
        if isinstance(node, ast.Attribute) and node.attr == "__dict__":
            return self.product(node.value)
        if self.dotted(node) == "sys.modules":
            return "sys.modules"
        return None

    def target_text(self, node: ast.AST) -> str | None:
        """A target given as an object or as a dotted string: the project's object it names."""
        text = _text(node)
        return self._product(text) if text is not None else self.product(node)


def _text(node: ast.AST) -> str | None:
    return node.value if isinstance(node, ast.Constant) and isinstance(node.value, str) else None


def _entry(resolver: _Resolver, namespace: str, key: ast.AST | None) -> str | None:
    """The target of a write into a namespace: `P.key`, or a `sys.modules` entry the project owns (or
    one whose name cannot be read)."""
    name = _text(key) if key is not None else None
    if namespace != "sys.modules":
        return f"{namespace}.{name}" if name else f"{namespace} (an entry)"
    if name is None:
        return "sys.modules (an entry whose name is computed)"
    return f"sys.modules[{name!r}]" if resolver._product(name) else None


def _targets(node: ast.AST, resolver: _Resolver) -> Iterator[str]:
    """What the project loses to the statement or call `node`."""
    stores: list[ast.AST] = []
    if isinstance(node, ast.Assign):
        stores = list(node.targets)
    elif isinstance(node, ast.AugAssign | ast.AnnAssign | ast.Delete):
        stores = list(node.targets) if isinstance(node, ast.Delete) else [node.target]
    for store in stores:
        for part in ast.walk(store):
            if isinstance(part, ast.Attribute) and isinstance(part.ctx, ast.Store | ast.Del):
                owner = resolver.product(part.value)
                if owner is not None:
                    yield f"{owner}.{part.attr}"
            elif isinstance(part, ast.Subscript) and isinstance(part.ctx, ast.Store | ast.Del):
                namespace = resolver.namespace(part.value)
                if namespace is not None and (found := _entry(resolver, namespace, part.slice)):
                    yield found
    if not isinstance(node, ast.Call):
        return
    func = node.func
    name = func.attr if isinstance(func, ast.Attribute) else func.id if isinstance(func, ast.Name) else None
    if isinstance(func, ast.Attribute) and func.attr in _NAMESPACE_METHODS:
        namespace = resolver.namespace(func.value)
        if namespace is not None and (found := _entry(resolver, namespace, node.args[0] if node.args else None)):
            yield found
            return
    if isinstance(func, ast.Attribute) and name in ("__setattr__", "__delattr__") and node.args:
        owner = resolver.product(func.value)  # calc.__setattr__("mul", fake)
        if owner is not None and _text(node.args[0]):
            yield f"{owner}.{_text(node.args[0])}"
            return
    if name in _PATCHING and node.args:
        first = node.args[0]
        namespace = resolver.namespace(first)
        if namespace is not None:
            if found := _entry(resolver, namespace, node.args[1] if len(node.args) > 1 else None):
                yield found
            return
        owner = resolver.target_text(first)
        if owner is not None:
            attr = resolver.text(node.args[1]) if len(node.args) > 1 and _text(first) is None else None
            yield f"{owner}.{attr}" if attr else f"an attribute of {owner}" if owner == COMPUTED else owner


def _fixture_autouse(function: ast.FunctionDef | ast.AsyncFunctionDef, resolver: _Resolver) -> bool:
    for decorator in function.decorator_list:
        if not isinstance(decorator, ast.Call) or resolver.dotted(decorator.func) not in (
                "pytest.fixture", "_pytest.fixtures.fixture"):
            continue
        for keyword in decorator.keywords:
            if keyword.arg is None:  # **{"autouse": True}
                return True
            if keyword.arg == "autouse":
                return not (isinstance(keyword.value, ast.Constant) and keyword.value.value in _FALSE)
    return False


def _scopes(tree: ast.Module, resolver: _Resolver, whole: bool) -> Iterator[ast.AST]:
    """The nodes whose code is judged: all of them, or a test module's module-level code and autouse fixtures."""
    if whole:
        yield from ast.walk(tree)
        return
    stack: list[ast.AST] = list(tree.body)
    while stack:
        node = stack.pop()
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            if _fixture_autouse(node, resolver):
                yield from ast.walk(node)
            continue
        yield node
        stack.extend(ast.iter_child_nodes(node))


def replacements(source: str | None, products: frozenset[str], *, whole: bool) -> list[Replacement]:
    """Each place the code replaces one of the project's objects (`whole`: judge all of the module, else
    a test module's module-level code and autouse fixtures)."""
    if not source or not products:
        return []
    try:
        tree = ast.parse(source)
    except (SyntaxError, ValueError):
        return []
    resolver = _Resolver(tree, products)
    found: list[Replacement] = []
    for node in _scopes(tree, resolver, whole):
        for target in _targets(node, resolver):
            found.append(Replacement(target, _clip(ast.unparse(node))))
    return found


def replacement_findings(path: str, old: str | None, new: str | None, products: Iterable[str], *,
                         test_module: bool) -> list[IntegrityFinding]:
    """One finding per replacement `new` makes that `old` did not (compared by target and code)."""
    names = frozenset(products)
    whole = not test_module
    before = Counter(replacements(old, names, whole=whole))
    gained = Counter(replacements(new, names, whole=whole)) - before
    where = "this conftest.py" if posixpath.basename(path) == "conftest.py" else (
        "this test module's module-level code or autouse fixtures" if test_module else "this module")
    return [IntegrityFinding(REPLACED, path, path, f"{where} replaces {r.target} (`{r.code}`), so the tests may "
                             "check a stand-in instead of the code under test") for r in gained.elements()]
