"""`test-machinery-changed` from the source: what the change does to the plugins pytest loads.

A plugin runs inside the pytest process with every power a conftest.py has: it can rewrite reports, deselect
tests, replace the code under test. pytest loads one named by `-p` (judged with the options:
harness.gates.integrity.pytest_options), by `pytest_plugins` in a conftest.py or a test module, by a
`pytest11` entry point of an installed distribution, or by `PYTEST_PLUGINS` (which the harness removes from
every run, harness.pytest_run.environment). Judged here, pure functions of a file's two versions:

- `pytest_plugins`: every statement of a Python file that binds it, however spelt (an assignment, an
  augmented or annotated one, an import under that name, `globals()["pytest_plugins"]`,
  `setattr(module, "pytest_plugins", ...)`, an attribute of a module object): one the base did not have is
  a finding;
- `pytest11` entry points: pyproject.toml (`[project.entry-points.pytest11]`, `[tool.poetry.plugins.pytest11]`),
  setup.cfg (`[options.entry_points]`), setup.py (`entry_points={"pytest11": [...]}` or an ini text) and
  `entry_points.txt`: an entry the base did not have is a finding.

Which modules pytest actually loaded as plugins is known only from a run; the recorder reports those (the
integrity gate's `plugins` check).
"""
from __future__ import annotations

import ast
import configparser
import posixpath
import tomllib
from collections import Counter
from collections.abc import Iterator

from harness.gates.integrity.pytest_config import MACHINERY
from harness.gates.records import IntegrityFinding

PLUGINS_NAME = "pytest_plugins"
ENTRY_GROUP = "pytest11"
_CLIP = 160


def _clip(text: str) -> str:
    line = " ".join(text.split())
    return line if len(line) <= _CLIP else line[: _CLIP - 3] + "..."


def _statements(tree: ast.AST) -> Iterator[ast.stmt]:
    for node in ast.walk(tree):
        if isinstance(node, ast.stmt) and not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef
                                                         | ast.ClassDef | ast.If | ast.Try | ast.With
                                                         | ast.For | ast.While | ast.TryStar | ast.Match):
            yield node


def _is_name_text(node: ast.AST | None) -> bool:
    return isinstance(node, ast.Constant) and node.value == PLUGINS_NAME


def _binds_plugins(statement: ast.stmt) -> bool:
    """Whether `statement` binds `pytest_plugins`: by name, as an attribute, as the key stored into a
    namespace (`globals()["pytest_plugins"] = ...`), or handed by its text to a call that can bind it
    (`setattr(module, "pytest_plugins", ...)`, `vars(m).update({"pytest_plugins": ...})`). Its text alone,
    e.g. a constant naming it, binds nothing."""
    for node in ast.walk(statement):
        if isinstance(node, ast.Name) and node.id == PLUGINS_NAME and isinstance(node.ctx, ast.Store | ast.Del):
            return True
        if isinstance(node, ast.Attribute) and node.attr == PLUGINS_NAME and isinstance(node.ctx, ast.Store):
            return True
        if isinstance(node, ast.Subscript) and isinstance(node.ctx, ast.Store | ast.Del) and _is_name_text(
                node.slice):
            return True
        if isinstance(node, ast.Call) and (
                any(_is_name_text(arg) for arg in node.args)
                or any(k.arg == PLUGINS_NAME for k in node.keywords)
                or any(isinstance(arg, ast.Dict) and any(_is_name_text(key) for key in arg.keys)
                       for arg in node.args)):
            return True
        if isinstance(node, ast.alias) and (node.asname or node.name) == PLUGINS_NAME:
            return True
    return False


def plugin_statements(source: str | None) -> list[str]:
    """The source of each simple statement that binds `pytest_plugins` (normalised by `ast.unparse`)."""
    if not source:
        return []
    try:
        tree = ast.parse(source)
    except (SyntaxError, ValueError):
        return []
    return [ast.unparse(s) for s in _statements(tree) if _binds_plugins(s)]


def plugin_findings(path: str, old: str | None, new: str | None) -> list[IntegrityFinding]:
    """One finding per statement binding `pytest_plugins` that `new` gains over `old`."""
    gained = Counter(plugin_statements(new)) - Counter(plugin_statements(old))
    return [IntegrityFinding(MACHINERY, path, path, f"`{_clip(statement)}` makes pytest load the modules it names "
                             "as plugins, which can rewrite outcomes or replace the code under test")
            for statement in gained.elements()]


def _ini_entries(text: str, section: str) -> set[str]:
    parser = configparser.ConfigParser(interpolation=None)
    parser.optionxform = str  # type: ignore[assignment,method-assign]
    try:
        parser.read_string(text)
    except configparser.Error:
        return set()
    if not parser.has_section(section):
        return set()
    if section == ENTRY_GROUP:
        return {f"{key} = {value}" for key, value in parser[section].items()}
    raw = parser[section].get(ENTRY_GROUP, "")
    return {" ".join(line.split()) for line in raw.splitlines() if line.strip()}


def _toml_entries(text: str) -> set[str]:
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError:
        return set()
    groups = [data.get("project", {}).get("entry-points", {}).get(ENTRY_GROUP),
              data.get("tool", {}).get("poetry", {}).get("plugins", {}).get(ENTRY_GROUP)]
    return {f"{key} = {value}" for group in groups if isinstance(group, dict) for key, value in group.items()}


def _setup_py_entries(text: str) -> set[str]:
    try:
        tree = ast.parse(text)
    except (SyntaxError, ValueError):
        return set()
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Dict):
            for key, value in zip(node.keys, node.values, strict=True):
                if isinstance(key, ast.Constant) and key.value == ENTRY_GROUP:
                    found |= {" ".join(str(c.value).split()) for c in ast.walk(value)
                              if isinstance(c, ast.Constant) and isinstance(c.value, str)}
        elif isinstance(node, ast.Constant) and isinstance(node.value, str) and f"[{ENTRY_GROUP}]" in node.value:
            found |= _ini_entries(node.value, ENTRY_GROUP)
    return found


def entry_points(path: str, text: str | None) -> set[str]:
    """The `pytest11` entry points (`name = module`) a packaging file declares; none for other files."""
    if not text:
        return set()
    name = posixpath.basename(path)
    if name == "pyproject.toml":
        return _toml_entries(text)
    if name == "setup.cfg":
        return _ini_entries(text, "options.entry_points")
    if name == "setup.py":
        return _setup_py_entries(text)
    if name == "entry_points.txt":
        return _ini_entries(text, ENTRY_GROUP)
    return set()


def entry_point_findings(path: str, old: str | None, new: str | None) -> list[IntegrityFinding]:
    gained = entry_points(path, new) - entry_points(path, old)
    return [IntegrityFinding(MACHINERY, path, path, f"gains the {ENTRY_GROUP} entry point `{entry}`: installed, "
                             "pytest loads it as a plugin in every run") for entry in sorted(gained)]
