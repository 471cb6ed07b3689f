"""`test-machinery-changed` from a run: the hooks pytest actually ran with, from code the change adds or edits.

The source scans see a hook where it is written as one (`def pytest_runtest_makereport` in a conftest.py,
harness.gates.integrity.config_scan) and the plugins a change names (`-p`, `pytest_plugins`, entry points).
A run sees every hook implementation pytest registered, however it got there: imported into a conftest.py
under another name, bound by assignment, made by a decorator or a factory, or in a module loaded as a
plugin by any means. The recorder lists those whose code lies in the project's tree once collection has
ended (harness.pytest_run.recorder); the integrity gate reads them from the `collect` stage's runs (the RED
and Regression selectors collected with the change).

A listed implementation is a finding when its function is new with the change or its code changed (the
function of that name in its file at the base commit, compared as `ast` without positions), or when a
conftest.py (or plugin module) the change touches registers it without binding that hook's name at the base
(an unchanged helper's function imported into it); unless a source scan already reported that hook of that
file. Hooks that only report (`pytest_report_header`,
`pytest_terminal_summary`, `pytest_assertrepr_compare`, ...) are left out.
"""
from __future__ import annotations

import ast
from collections.abc import Callable, Iterable

from harness.gates.integrity.pytest_config import MACHINERY
from harness.gates.records import IntegrityFinding
from harness.pytest_run.results import ProjectHook

# Hooks that print, describe or observe and cannot change which tests run or how they end.
REPORTING_HOOKS = frozenset({
    "pytest_addoption", "pytest_addhooks", "pytest_report_header", "pytest_report_collectionfinish",
    "pytest_terminal_summary", "pytest_assertrepr_compare", "pytest_runtest_logstart", "pytest_runtest_logfinish",
    "pytest_warning_recorded", "pytest_make_parametrize_id", "pytest_plugin_registered"})


def _function_code(source: str | None, name: str, line: int | None) -> str | None:
    """The `ast` dump of the function `name` in `source` (the one starting at `line`, counting its
    decorators, when given and found), or None."""
    if not source:
        return None
    try:
        tree = ast.parse(source)
    except (SyntaxError, ValueError):
        return None
    named = [n for n in ast.walk(tree) if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef) and n.name == name]
    at_line = [n for n in named if line in (n.lineno, *(d.lineno for d in n.decorator_list))]
    chosen = (at_line or named)[:1]
    return ast.dump(chosen[0]) if chosen else None


def _binds(source: str | None, name: str) -> bool:
    """Whether a module's source binds `name` at any level (a def, an import, an assignment)."""
    if not source:
        return False
    try:
        tree = ast.parse(source)
    except (SyntaxError, ValueError):
        return False
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef) and node.name == name:
            return True
        if isinstance(node, ast.alias) and (node.asname or node.name.rpartition(".")[2]) == name:
            return True
        if isinstance(node, ast.Name) and node.id == name and isinstance(node.ctx, ast.Store):
            return True
    return False


def hook_findings(hooks: Iterable[ProjectHook], changed: set[str], old_text: Callable[[str], str | None],
                  new_text: Callable[[str], str | None], already: Iterable[IntegrityFinding]) -> list[IntegrityFinding]:
    """One finding per hook implementation whose function is new or edited in a file of `changed`, or that a
    changed conftest.py (or plugin module) registers without binding that hook's name at the base."""
    reported = {(f.file, f.detail.split(" ", 1)[0]) for f in already}
    findings: list[IntegrityFinding] = []
    seen: set[tuple[str, str, int]] = set()
    for hook in hooks:
        key = (hook.file, hook.hook, hook.line)
        if hook.hook in REPORTING_HOOKS or key in seen:
            continue
        seen.add(key)
        if (hook.file, hook.hook) in reported or (hook.plugin, hook.hook) in reported:
            continue
        edited = hook.file in changed and (
            (now := _function_code(new_text(hook.file), hook.function, hook.line)) is None
            or now != _function_code(old_text(hook.file), hook.function, None))
        registered_anew = hook.plugin in changed and not _binds(old_text(hook.plugin), hook.hook)
        if not (edited or registered_anew):
            continue
        by = f", registered by {hook.plugin}" if hook.plugin and hook.plugin != hook.file else ""
        findings.append(IntegrityFinding(
            MACHINERY, hook.file, f"{hook.file}:{hook.line}",
            f"{hook.hook}: `{hook.function}` runs as this pytest hook{by}, and the change adds or edits it: a "
            "hook can rewrite outcomes, deselect or skip tests, or replace the code under test"))
    return findings
