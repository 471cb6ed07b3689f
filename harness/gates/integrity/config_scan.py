"""`selection-narrowed`, `known-failures-added` and `gates-weakened`: what the change did to the files that
decide which tests run, which failures are tolerated and which gates judge them. Pure functions of the two
versions (text, or harness.yaml parsed).

Read: pytest's section of pyproject.toml (`[tool.pytest.ini_options]`), pytest.ini and tox.ini
(`[pytest]`), setup.cfg (`[tool:pytest]`); every conftest.py; harness.yaml's `pytest.args` and full-suite
arguments and gates; the known-failures file.
"""
from __future__ import annotations

import ast
import configparser
import posixpath
import shlex
import tomllib
from collections.abc import Callable, Iterable
from typing import Any

import yaml

from harness.config import Config
from harness.gates.records import IntegrityFinding

# Arguments that run fewer tests, or none, when added to pytest's options.
SELECTION_ARGS = ("-k", "-m", "--deselect", "--ignore", "--ignore-glob", "--lf", "--last-failed", "--sw",
                  "--stepwise", "--co", "--collect-only", "--setup-only", "--setup-plan", "--confcutdir")
_VALUE_FLAGS = frozenset({"-k", "-m", "--deselect", "--ignore", "--ignore-glob", "--confcutdir"})
# ini keys that decide which files, classes and functions are collected at all.
COLLECTION_KEYS = ("testpaths", "python_files", "python_classes", "python_functions", "norecursedirs")
# conftest.py hooks that can deselect, ignore, skip or re-judge tests.
COLLECTION_HOOKS = frozenset({
    "pytest_collection_modifyitems", "pytest_ignore_collect", "pytest_collect_file", "pytest_collect_directory",
    "pytest_pycollect_makeitem", "pytest_deselected", "pytest_collection", "pytest_runtest_setup",
    "pytest_runtest_call", "pytest_runtest_protocol", "pytest_runtest_makereport", "pytest_report_teststatus",
    "pytest_configure", "pytest_load_initial_conftests", "pytest_cmdline_main"})
CONFIG_NAMES = frozenset({"pyproject.toml", "pytest.ini", "tox.ini", "setup.cfg", "conftest.py", "harness.yaml"})
_INI_SECTIONS = {"pytest.ini": "pytest", "tox.ini": "pytest", "setup.cfg": "tool:pytest"}

Finding = Callable[[str, str], None]


def _selection_args(tokens: Iterable[str]) -> list[str]:
    """The selection arguments among pytest arguments, each with its value (`-k slow`, `--ignore x`)."""
    tokens = list(tokens)
    found = []
    for i, token in enumerate(tokens):
        flag, eq, value = token.partition("=")
        if flag in _VALUE_FLAGS:
            if not eq:
                value = tokens[i + 1] if i + 1 < len(tokens) else ""
            found.append(f"{flag} {value}".strip())
        elif flag in SELECTION_ARGS:
            found.append(flag)
        elif token[:2] in ("-k", "-m") and len(token) > 2:  # -kslow
            found.append(f"{token[:2]} {token[2:]}")
    return found


def _tokens(value: Any) -> list[str]:
    if isinstance(value, list):
        return [str(v) for v in value]
    if isinstance(value, str):
        try:
            return shlex.split(value)
        except ValueError:
            return value.split()
    return []


def _ini_options(name: str, text: str | None) -> dict[str, Any]:
    if not text:
        return {}
    if name == "pyproject.toml":
        try:
            data = tomllib.loads(text)
        except tomllib.TOMLDecodeError:
            return {}
        return dict(data.get("tool", {}).get("pytest", {}).get("ini_options", {}))
    parser = configparser.ConfigParser(interpolation=None)
    try:
        parser.read_string(text)
    except configparser.Error:
        return {}
    section = _INI_SECTIONS[name]
    return dict(parser[section]) if parser.has_section(section) else {}


def _compare_args(old: list[str], new: list[str], where: str, add: Finding, *, plural: bool = False) -> None:
    gained = [a for a in _selection_args(new) if a not in _selection_args(old)]
    for arg in gained:
        add(where, f"{'gain' if plural else 'gains'} `{arg}`, so fewer tests run")


def _ini_findings(name: str, old: str | None, new: str | None, add: Finding) -> None:
    before, after = _ini_options(name, old), _ini_options(name, new)
    _compare_args(_tokens(before.get("addopts")), _tokens(after.get("addopts")), "addopts", add)
    for key in COLLECTION_KEYS:
        if key in after and _tokens(after.get(key)) != _tokens(before.get(key)):
            add(key, f"changed from {_tokens(before.get(key))} to {_tokens(after.get(key))}, which decides what "
                "is collected")


def _conftest_facts(text: str | None) -> tuple[set[str], dict[str, str]]:
    """(collect_ignore entries, hook name -> its code) of a conftest.py."""
    if not text:
        return set(), {}
    try:
        tree = ast.parse(text)
    except (SyntaxError, ValueError):
        return set(), {}
    ignored: set[str] = set()
    hooks: dict[str, str] = {}
    for node in ast.walk(tree):
        target_names = []
        if isinstance(node, ast.Assign | ast.AugAssign | ast.AnnAssign):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            target_names = [t.id for t in targets if isinstance(t, ast.Name)]
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and isinstance(
                node.func.value, ast.Name) and node.func.attr in ("append", "extend", "insert", "add"):
            target_names = [node.func.value.id]
        if any(name in ("collect_ignore", "collect_ignore_glob") for name in target_names):
            ignored.update(str(c.value) for c in ast.walk(node) if isinstance(c, ast.Constant)
                           and isinstance(c.value, str))
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.name in COLLECTION_HOOKS:
            hooks[node.name] = ast.dump(node, include_attributes=False)
    return ignored, hooks


def _conftest_findings(old: str | None, new: str | None, add: Finding) -> None:
    old_ignored, old_hooks = _conftest_facts(old)
    new_ignored, new_hooks = _conftest_facts(new)
    for entry in sorted(new_ignored - old_ignored):
        add("collect_ignore", f"gains {entry!r}, so it is not collected")
    for hook, code in sorted(new_hooks.items()):
        if old_hooks.get(hook) != code:
            add(hook, f"{'changed' if hook in old_hooks else 'added'}; this hook can deselect, ignore or "
                "skip tests")


def _harness_args(text: str | None) -> list[str]:
    try:
        data = yaml.safe_load(text or "") or {}
    except yaml.YAMLError:
        return []
    if not isinstance(data, dict):
        return []
    pytest = data.get("pytest") if isinstance(data.get("pytest"), dict) else {}
    gates = data.get("gates") if isinstance(data.get("gates"), dict) else {}
    suite = gates.get("full_suite") if isinstance(gates.get("full_suite"), dict) else {}
    return _tokens(pytest.get("args")) + _tokens(gates.get("full_suite_args")) + _tokens(suite.get("args"))


def selection_findings(path: str, old: str | None, new: str | None) -> list[IntegrityFinding]:
    """`selection-narrowed` findings for one changed file (any other file gives none)."""
    name = posixpath.basename(path)
    findings: list[IntegrityFinding] = []

    def add(where: str, detail: str) -> None:
        findings.append(IntegrityFinding("selection-narrowed", path, path, f"{where} {detail}"))

    if new is None or name not in CONFIG_NAMES:
        return findings
    if name == "conftest.py":
        _conftest_findings(old, new, add)
    elif name == "harness.yaml":
        _compare_args(_harness_args(old), _harness_args(new), "the pytest arguments in harness.yaml", add,
                      plural=True)
    elif name == "pyproject.toml" or name in _INI_SECTIONS:
        _ini_findings(name, old, new, add)
    return findings


def _entries(text: str | None) -> list[str]:
    return [s for line in (text or "").splitlines() if (s := line.strip()) and not s.startswith("#")]


def known_failure_findings(old_path: str | None, old: str | None, new_path: str | None,
                           new: str | None) -> list[IntegrityFinding]:
    """One `known-failures-added` finding per node id the known-failures file gains (judged against the
    file B's harness.yaml named, so pointing harness.yaml at another file is no way around it)."""
    if new_path is None:
        return []
    before = set(_entries(old))
    return [IntegrityFinding("known-failures-added", new_path, entry,
                             f"added to {new_path}" + (f" (the base used {old_path})" if old_path != new_path else ""))
            for entry in _entries(new) if entry not in before]


def gate_findings(old: Config, new: Config, path: str = "harness.yaml") -> list[IntegrityFinding]:
    """One `gates-weakened` finding per gate of harness.yaml the change switches off or loosens: collect,
    regression, full suite, integrity, mutation (off, a lower min_score, fewer mutants), the lint gate and
    the held-out acceptance tests removed. The node id field names the key."""
    findings: list[IntegrityFinding] = []

    def add(key: str, detail: str) -> None:
        findings.append(IntegrityFinding("gates-weakened", path, key, f"{key}: {detail}"))

    for key in ("collect", "regression", "full_suite", "integrity"):
        if getattr(old.gates, key) and not getattr(new.gates, key):
            add(f"gates.{key}", "switched off")
    if old.gates.lint is not None and new.gates.lint is None:
        add("gates.lint", "removed")
    before, after = old.gates.mutation, new.gates.mutation
    if before.enabled and not after.enabled:
        add("gates.mutation.enabled", "switched off")
    if after.min_score < before.min_score:
        add("gates.mutation.min_score", f"lowered from {before.min_score:g} to {after.min_score:g}")
    if after.max_mutants < before.max_mutants:
        add("gates.mutation.max_mutants", f"lowered from {before.max_mutants} to {after.max_mutants}")
    if old.holdout is not None and new.holdout is None:
        add("holdout", "removed (the held-out acceptance tests no longer run)")
    return findings
