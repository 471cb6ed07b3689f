"""The house rules, read from the code itself (docs/architecture.md says why each holds):

- no import circle between modules, counting every import statement (function-local and TYPE_CHECKING
  ones included: a circle hidden in a function is still a circle);
- no module over 500 lines;
- `harness` and `ptycho_torch` never import each other;
- in the harness, subprocesses start only in `harness/proc.py` and git runs only inside `harness/gitops/`.
"""
from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

from harness.graphs import cyclic_components

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("harness", "ptycho_torch")
MAX_LINES = 500
# Loaded by pytest inside the project under test (in another process), never imported by the harness.
PLUGIN_FILES = {"harness/pytest_run/recorder.py"}


def _modules(package: str) -> dict[str, Path]:
    found = {}
    for path in sorted((ROOT / package).rglob("*.py")):
        rel = path.relative_to(ROOT).with_suffix("")
        parts = rel.parts[:-1] if rel.name == "__init__" else rel.parts
        found[".".join(parts)] = path
    return found


ALL_MODULES = {name: path for package in PACKAGES for name, path in _modules(package).items()}


def _imported(module: str, path: Path) -> Iterator[str]:
    """Every module an import statement in `path` names (resolved to a module of ours where it is one)."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    is_package = path.name == "__init__.py"
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = module.split(".")
                base = base if is_package else base[:-1]
                base = base[: len(base) - (node.level - 1)]
                target = ".".join([*base, node.module] if node.module else base)
            else:
                target = node.module or ""
            yield target
            for alias in node.names:  # `from pkg import module` imports a module
                yield f"{target}.{alias.name}"


def _graph() -> dict[str, set[str]]:
    graph: dict[str, set[str]] = {}
    for name, path in ALL_MODULES.items():
        edges = set()
        for target in _imported(name, path):
            while target and target not in ALL_MODULES:
                target = target.rpartition(".")[0]
            if target and target != name and not name.startswith(target + "."):
                edges.add(target)  # a package's own __init__ imported by its submodule is not a circle
        graph[name] = edges
    return graph


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Groups of modules that import each other, each sorted (harness.graphs finds them)."""
    return sorted(sorted(c) for c in cyclic_components({k: sorted(v) for k, v in sorted(graph.items())}))


def test_the_cycle_finder_finds_a_circle_through_a_function_local_import(tmp_path: Path) -> None:
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert _cycles(graph) == [["a", "b", "c"]]
    source = "def f():\n    from pkg.b import thing\n"
    path = tmp_path / "a.py"
    path.write_text(source)
    assert "pkg.b" in set(_imported("pkg.a", path))


def test_no_import_circle() -> None:
    cycles = _cycles(_graph())
    assert not cycles, "import circles (each a group of modules that import each other):\n" + "\n".join(
        " <-> ".join(c) for c in cycles)


@pytest.mark.parametrize("package", PACKAGES)
def test_no_module_over_500_lines(package: str) -> None:
    sizes = {str(p.relative_to(ROOT)): len(p.read_text(encoding="utf-8").splitlines())
             for p in _modules(package).values()}
    big = {path: n for path, n in sizes.items() if n > MAX_LINES}
    assert not big, f"modules over {MAX_LINES} lines: {big}"


def test_the_two_packages_never_import_each_other() -> None:
    graph = _graph()
    crossing = [(a, b) for a, edges in graph.items() for b in edges if a.split(".")[0] != b.split(".")[0]]
    assert not crossing, crossing


def _harness_sources() -> dict[str, str]:
    return {str(p.relative_to(ROOT)): p.read_text(encoding="utf-8") for p in _modules("harness").values()
            if str(p.relative_to(ROOT)) not in PLUGIN_FILES}


def test_subprocesses_start_only_in_proc() -> None:
    users = sorted(path for path, text in _harness_sources().items()
                   if path != "harness/proc.py"
                   and any(isinstance(n, (ast.Import, ast.ImportFrom))
                           and ("subprocess" in [a.name for a in n.names] or getattr(n, "module", None) == "subprocess")
                           for n in ast.walk(ast.parse(text))))
    assert not users, f"modules that start subprocesses themselves (use harness.proc): {users}"


def _runs_git(tree: ast.AST) -> bool:
    for node in ast.walk(tree):
        if isinstance(node, (ast.List, ast.Tuple)) and node.elts and isinstance(node.elts[0], ast.Constant) \
                and node.elts[0].value == "git":
            return True  # an argv starting with "git"
        if isinstance(node, ast.Attribute) and node.attr == "git" and isinstance(node.value, ast.Name) \
                and node.value.id in ("repo", "ws", "self"):
            return True  # gitpython's repo.git.<command>(...)
        if isinstance(node, ast.Attribute) and node.attr == "git" and isinstance(node.value, ast.Attribute) \
                and node.value.attr == "repo":
            return True  # ws.repo.git.<command>(...)
    return False


def test_git_runs_only_inside_gitops() -> None:
    users = sorted(path for path, text in _harness_sources().items()
                   if not path.startswith("harness/gitops") and _runs_git(ast.parse(text)))
    assert not users, f"modules that run git themselves (add a typed function to harness.gitops): {users}"


# The harness's top level shows its rooms: packages, plus only the entry point, the error tree and the plumbing.
TOP_LEVEL_MODULES = {"__init__", "__main__", "main", "errors", "workspace",
                     "proc", "atomic", "clock", "globs", "graphs", "templating"}
MAX_TOP_LEVEL_ENTRIES = 26


def test_the_harness_top_level_holds_rooms_and_only_the_entry_point_errors_and_plumbing() -> None:
    entries = sorted(p.name for p in (ROOT / "harness").iterdir() if p.name != "__pycache__")
    modules = {p.stem for p in (ROOT / "harness").glob("*.py")}
    strays = sorted(modules - TOP_LEVEL_MODULES)
    assert not strays, (f"modules at the top of harness/ that belong in a room (see docs/architecture.md): "
                        f"{strays}")
    assert len(entries) <= MAX_TOP_LEVEL_ENTRIES, f"{len(entries)} entries in harness/: {entries}"


def test_docs_architecture_names_every_module_and_folder() -> None:
    doc = (ROOT / "docs" / "architecture.md").read_text(encoding="utf-8")
    missing = []
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            if path.name in ("__init__.py", "__main__.py"):
                continue
            named = (f"`{path.stem}`", f"`{path.name}`", f"/{path.name}`")
            if not any(name in doc for name in named):
                missing.append(str(path.relative_to(ROOT)))
        for folder in sorted(p for p in (ROOT / package).rglob("*") if p.is_dir() and (p / "__init__.py").exists()):
            if folder != ROOT / package and f"`{folder.name}/`" not in doc:
                missing.append(str(folder.relative_to(ROOT)) + "/")
    assert not missing, f"docs/architecture.md does not name: {missing}"
