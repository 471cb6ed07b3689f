"""`selection-narrowed`, `known-failures-added` and `gates-weakened`: what the change did to the files that
decide which tests run, which failures are tolerated and which gates judge them. Pure functions of the two
versions (text, or harness.yaml parsed).

Read: every pytest configuration file (harness.gates.integrity.pytest_config: pytest.toml, pytest.ini,
pyproject.toml, tox.ini, setup.cfg, each setting judged by what it does); every conftest.py; harness.yaml's `pytest.args`, `pytest.command`
(the options after `-m pytest`, and the program), `pytest.env` (PYTEST_ADDOPTS's options, and every
variable harness.pytest_run.environment names, or PYTHONPATH, set or changed), full-suite arguments and
gates; the known-failures file. Options are judged by what they do, however spelt
(harness.gates.integrity.pytest_options).
"""
from __future__ import annotations

import ast
import posixpath
from collections.abc import Callable, Mapping

import yaml

from harness.config import CONFIG_FILENAME, AgentConfig, Config, PytestConfig
from harness.gates.integrity.pytest_config import CONFIG_FILES, option_findings, options_of
from harness.gates.integrity.pytest_options import SELECTION, WEAKENED, gained, split_command, tokens_of
from harness.gates.records import IntegrityFinding
from harness.pytest_run.environment import changes_a_run

# conftest.py hooks that can deselect, ignore, skip or re-judge tests.
COLLECTION_HOOKS = frozenset({
    "pytest_collection_modifyitems", "pytest_ignore_collect", "pytest_collect_file", "pytest_collect_directory",
    "pytest_pycollect_makeitem", "pytest_deselected", "pytest_collection", "pytest_runtest_setup",
    "pytest_runtest_call", "pytest_runtest_protocol", "pytest_runtest_makereport", "pytest_report_teststatus",
    "pytest_configure", "pytest_load_initial_conftests", "pytest_cmdline_main"})
CONFIG_NAMES = frozenset({*CONFIG_FILES, "conftest.py", "harness.yaml"})
DEFAULT_PYTEST_COMMAND = PytestConfig().command

Finding = Callable[..., None]  # (where, detail, kind=SELECTION, test=None)


def _compare_args(old: list[str], new: list[str], where: str, add: Finding, *, plural: bool = False,
                  test: str | None = None) -> None:
    """A finding per option `new` gains that narrows the selection or weakens the gates (pytest_options)."""
    for effect in gained(old, new):
        add(where, f"{'gain' if plural else 'gains'} `{effect.text}`, {effect.why}", kind=effect.kind, test=test)


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


def _harness_pytest(text: str | None) -> tuple[list[str], list[str], dict[str, str]]:
    """(pytest.args + the full suite's args, pytest.command, pytest.env) of a harness.yaml's text, read
    leniently: what does not parse reads as nothing (the config loader refuses it elsewhere)."""
    try:
        data = yaml.safe_load(text or "") or {}
    except yaml.YAMLError:
        data = {}
    data = data if isinstance(data, dict) else {}
    pytest = data.get("pytest") if isinstance(data.get("pytest"), dict) else {}
    gates = data.get("gates") if isinstance(data.get("gates"), dict) else {}
    suite = gates.get("full_suite") if isinstance(gates.get("full_suite"), dict) else {}
    args = tokens_of(pytest.get("args")) + tokens_of(gates.get("full_suite_args")) + tokens_of(suite.get("args"))
    command = tokens_of(pytest.get("command", list(DEFAULT_PYTEST_COMMAND)))
    env = pytest.get("env") if isinstance(pytest.get("env"), dict) else {}
    return args, command, {str(k): "" if v is None else str(v) for k, v in env.items()}


_ENV_WHY = {
    "PYTEST_PLUGINS": "pytest loads the plugins it names, which can deselect tests or rewrite their outcomes",
    "PYTEST_DISABLE_PLUGIN_AUTOLOAD": "it decides whether the installed pytest plugins load",
    "PYTHONPATH": "it decides where the tests import code from (a folder ahead of the project can stand in "
                  "for it)",
    "PYTHONOPTIMIZE": "it strips the assert statements of the code under test",
    "PYTHONWARNINGS": "it turns warnings into errors, or hides them",
    "PY_IGNORE_IMPORTMISMATCH": "pytest no longer fails on a test module imported from another place",
}


def _env_findings(old: Mapping[str, str], new: Mapping[str, str], add: Finding) -> None:
    """`pytest.env`: PYTEST_ADDOPTS judged by its options; any other variable that changes what pytest
    selects or how tests end (harness.pytest_run.environment), or PYTHONPATH, set, changed or removed."""
    _compare_args(tokens_of(old.get("PYTEST_ADDOPTS", "")), tokens_of(new.get("PYTEST_ADDOPTS", "")),
                  "`pytest.env` PYTEST_ADDOPTS", add, test="pytest.env.PYTEST_ADDOPTS")
    for name in sorted(set(old) | set(new)):
        if name == "PYTEST_ADDOPTS" or not (changes_a_run(name) or name == "PYTHONPATH"):
            continue
        before, after = old.get(name), new.get(name)
        if before == after:
            continue
        change = (f"set to {after!r}" if before is None else f"removed (was {before!r})" if after is None
                  else f"changed from {before!r} to {after!r}")
        why = _ENV_WHY.get(name, "pytest and its plugins read PYTEST_* variables (harness/pytest_run/environment.py)")
        add(f"`pytest.env` {name}", f"{change}: {why}", kind=WEAKENED, test=f"pytest.env.{name}")


def _command_findings(old: list[str], new: list[str], add: Finding) -> None:
    """`pytest.command`: the options it gains, judged as pytest reads them, and the program that starts pytest."""
    old_program, old_args = split_command(old)
    new_program, new_args = split_command(new)
    _compare_args(old_args, new_args, "`pytest.command`", add, test="pytest.command")
    if new_program != old_program:
        add("`pytest.command`", f"starts pytest through `{' '.join(new_program)}` instead of "
            f"`{' '.join(old_program)}`, which decides what runs the tests", kind=WEAKENED, test="pytest.command")


def _harness_yaml_findings(old: str | None, new: str | None, add: Finding) -> None:
    old_args, old_command, old_env = _harness_pytest(old)
    new_args, new_command, new_env = _harness_pytest(new)
    _compare_args(old_args, new_args, "the pytest arguments in harness.yaml", add, plural=True)
    _command_findings(old_command, new_command, add)
    _env_findings(old_env, new_env, add)


def selection_findings(path: str, old: str | None, new: str | None) -> list[IntegrityFinding]:
    """`selection-narrowed` (and, for an option that changes what judges the tests, `gates-weakened`)
    findings for one changed file (any other file gives none). A finding's test field is the file, or for
    harness.yaml's `pytest.command` and `pytest.env` the key (`pytest.env.PYTEST_ADDOPTS`)."""
    name = posixpath.basename(path)
    findings: list[IntegrityFinding] = []

    def add(where: str, detail: str, kind: str = SELECTION, test: str | None = None) -> None:
        findings.append(IntegrityFinding(kind, path, test or path, f"{where} {detail}"))

    if path == CONFIG_FILENAME:  # the harness's own (at the root); deleted, it leaves the defaults in force
        _harness_yaml_findings(old, new or "", add)
    elif name in CONFIG_FILES:  # deleted, its settings no longer apply
        option_findings(options_of(name, old), options_of(name, new), add)
    elif name == "conftest.py" and new is not None:
        _conftest_findings(old, new, add)
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
    the held-out acceptance tests removed, the agent's sandbox loosened (`agent.sandbox` towards off,
    `agent.network` switched on, `agent.writable` paths added). The node id field names the key."""
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
    if new.gates.reruns < old.gates.reruns:
        add("gates.reruns", f"lowered from {old.gates.reruns} to {new.gates.reruns}")
    if old.holdout is not None and new.holdout is None:
        add("holdout", "removed (the held-out acceptance tests no longer run)")
    findings += [IntegrityFinding("gates-weakened", path, key, f"{key}: {detail}")
                 for key, detail in _sandbox_loosened(old.agent, new.agent)]
    return findings


_SANDBOX_STRENGTH = {"off": 0, "auto": 1, "bwrap": 2}


def _sandbox_loosened(old: AgentConfig, new: AgentConfig) -> list[tuple[str, str]]:
    """The agent's sandbox settings a change loosens (harness.agent.sandbox): taken from the working tree,
    such an edit would decide what the next agent can reach once it is committed."""
    loosened = []
    if _SANDBOX_STRENGTH[new.sandbox] < _SANDBOX_STRENGTH[old.sandbox]:
        loosened.append(("agent.sandbox", f"loosened from {old.sandbox} to {new.sandbox}"))
    if new.network and not old.network:
        loosened.append(("agent.network", "switched on"))
    added = [p for p in new.writable if p not in old.writable]
    if added:
        loosened.append(("agent.writable", f"gains {', '.join(added)}"))
    return loosened
