"""The `integrity` stage: compare the change with the base commit B and refuse what weakens the tests.

Static facts come from both versions of each changed file (harness.gates.integrity.test_facts, config_scan).
The test modules the change modifies or deletes are also run, at B (a temporary worktree) and with the
change (both at once, in different trees): a test collected at B and not with the change is removed (a
parametrize case whose automatic index shifted, because cases were inserted before it, is not); one
that passed at B and is skipped or xfailed with the change is skipped, whatever made it so. Their logs
stay in the evidence as `gates/integrity-base.*` and `gates/integrity-change.*`; every finding, allowed
or not, goes to `gates/integrity.json`.
"""
from __future__ import annotations

import posixpath
import re
from collections import Counter
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path

import git

from harness.atomic import atomic_write_json
from harness.config import CONFIG_FILENAME, Config, config_at, parse_config
from harness.errors import ConfigError
from harness.gates.integrity.config_scan import (
    CONFIG_NAMES,
    gate_findings,
    known_failure_findings,
    selection_findings,
)
from harness.gates.integrity.hook_scan import hook_findings
from harness.gates.integrity.plugin_scan import entry_point_findings, plugin_findings
from harness.gates.integrity.product_scan import product_findings
from harness.gates.integrity.pytest_config import MACHINERY, takeovers
from harness.gates.integrity.replacement_scan import project_modules, replacement_findings
from harness.gates.integrity.test_facts import compare_modules, module_facts, removed_tests
from harness.gates.records import IntegrityDetail, IntegrityFinding
from harness.gitops import blob_text, changed_lines, temp_worktree
from harness.globs import matches_any
from harness.proof.changes import ChangeSet
from harness.proof.stage_records import StageResult
from harness.pytest_run.results import Outcome, ProjectHook, PytestRun
from harness.pytest_run.runner import PytestSettings, run_pytest


@dataclass(frozen=True)
class IntegrityInputs:
    """The change under proof and where its two versions are read and run."""

    repo: git.Repo
    root: Path
    base: str
    head: str | None
    green_cwd: Path
    changeset: ChangeSet
    config: Config
    allowed: tuple[str, ...]

    def old_text(self, path: str | None) -> str | None:
        return None if path is None else blob_text(self.repo, self.base, path)

    def new_text(self, path: str | None) -> str | None:
        if path is None:
            return None
        if self.head is not None:
            return blob_text(self.repo, self.head, path)
        file = self.root / path
        return file.read_text(encoding="utf-8", errors="replace") if file.is_file() else None


def _is_test_module(path: str, test_globs: Sequence[str]) -> bool:
    name = posixpath.basename(path)
    return (path.endswith(".py") and (name.startswith("test_") or name.endswith("_test.py"))
            and matches_any(path, test_globs))


def _changed_config(inputs: IntegrityInputs) -> Config | ConfigError:
    """harness.yaml as the change leaves it, or why it does not parse."""
    text = inputs.new_text(CONFIG_FILENAME)
    try:
        return Config() if text is None else parse_config(text, f"{CONFIG_FILENAME} with the change")
    except ConfigError as exc:
        return exc


def _static_findings(inputs: IntegrityInputs, modules: Sequence[str]) -> list[IntegrityFinding]:
    findings: list[IntegrityFinding] = []
    for path in modules:
        old, new = inputs.old_text(path), inputs.new_text(path)
        if old is not None and new is not None:
            findings += compare_modules(path, module_facts(old), module_facts(new))
    for change in inputs.changeset.changes:
        old, new = inputs.old_text(change.path), inputs.new_text(change.path)
        if posixpath.basename(change.path) in CONFIG_NAMES:
            findings += selection_findings(change.path, old, new)
        if change.path.endswith(".py"):
            findings += plugin_findings(change.path, old, new)
        findings += entry_point_findings(change.path, old, new)
    findings += [IntegrityFinding(MACHINERY, path, path, detail) for path, detail in takeovers(
        [c.path for c in inputs.changeset.changes], inputs.old_text, inputs.new_text)]
    product_files = [c.path for c in inputs.changeset.changes if c.path.endswith(".py") and c.kind != "deleted"
                     and c not in inputs.changeset.tests]
    lines = changed_lines(inputs.repo, inputs.base, inputs.head, product_files) if product_files else {}
    for path in product_files:
        findings += product_findings(path, inputs.new_text(path), lines.get(path, ()))
    products = project_modules(inputs.green_cwd)
    for change in inputs.changeset.tests:
        if change.path.endswith(".py") and change.kind != "deleted":
            findings += replacement_findings(change.path, inputs.old_text(change.path), inputs.new_text(change.path),
                                             products, test_module=_is_test_module(change.path,
                                                                                   inputs.config.test_globs))
    base = config_at(inputs.repo, inputs.base) or Config()  # harness.yaml at B, read and parsed once
    changed: Config | None = base
    if any(change.path == CONFIG_FILENAME for change in inputs.changeset.changes):
        read = _changed_config(inputs)
        if isinstance(read, ConfigError):  # committed, it would stop every later proof before it starts
            first = str(read).splitlines()[0]
            findings.append(IntegrityFinding("gates-weakened", CONFIG_FILENAME, CONFIG_FILENAME,
                                             f"{CONFIG_FILENAME} does not parse with the change ({first}): "
                                             "once committed, every later proof stops before it starts"))
            changed = None
        else:
            changed = read
            findings += gate_findings(base, changed, CONFIG_FILENAME)
    base_known = base.known_failures
    new_known = changed.known_failures if changed is not None else base_known
    findings += known_failure_findings(base_known, inputs.old_text(base_known), new_known,
                                       inputs.new_text(new_known))
    return findings


def _file_of(nodeid: str) -> str:
    return nodeid.split("::", 1)[0]


def _collection_error_files(run: PytestRun) -> set[str]:
    return {_file_of(r.nodeid) for r in run.collection_errors()}


AUTO_ID = re.compile(r"([A-Za-z_]\w*?)\d+")  # pytest's id for a value it cannot print: argname + index


def case_key(nodeid: str) -> str:
    """A test id without the indexes pytest numbers parametrize cases by (`needles16` -> `needles#`)."""
    head, bracket, params = nodeid.partition("[")
    if not bracket or not params.endswith("]"):
        return nodeid

    def key(part: str) -> str:
        auto = AUTO_ID.fullmatch(part)
        return f"{auto.group(1)}#" if auto else part

    return f"{head}[{'-'.join(key(part) for part in params[:-1].split('-'))}]"


def renumbered_cases(missing: Sequence[str], new: set[str]) -> set[str]:
    """Of the ids collected at the base and not with the change, those whose case is still there under a new
    index (cases inserted before it shift the automatic ids): per case key, when the change collects at
    least as many new ids as went missing. Where fewer came, every missing id of the key is a finding."""
    gone = Counter(case_key(n) for n in missing)
    came = Counter(case_key(n) for n in new)
    return {n for n in missing if came[case_key(n)] >= gone[case_key(n)]}


def _run_findings(inputs: IntegrityInputs, at_base: PytestRun, with_change: PytestRun | None,
                  existing: set[str]) -> list[IntegrityFinding]:
    """test-removed and test-skipped from what the two runs collected and how their tests ended."""
    findings: list[IntegrityFinding] = []
    broken_at_base = _collection_error_files(at_base)
    broken_now = _collection_error_files(with_change) if with_change else set()
    collected_now = set(with_change.collected) if with_change else set()
    renumbered = renumbered_cases([n for n in at_base.collected if n not in collected_now],
                                  collected_now - set(at_base.collected))
    # a plain test that became parametrized is still there, run once per case (`test_x` -> `test_x[a]`)
    parametrized_now = {n.partition("[")[0] for n in collected_now if "[" in n}
    for nodeid in at_base.collected:
        file = _file_of(nodeid)
        if (file in broken_now or nodeid in collected_now or nodeid in renumbered
                or ("[" not in nodeid and nodeid in parametrized_now)):
            continue  # a file that no longer collects fails GREEN or the full suite instead
        why = "collected at the base commit; its file is deleted" if file not in existing else \
            "collected at the base commit, not with the change"
        findings.append(IntegrityFinding("test-removed", file, nodeid, why))
    for file in sorted(broken_at_base):
        old = inputs.old_text(file)
        if old is not None:  # collection could not tell; the source can
            new = inputs.new_text(file)
            findings += removed_tests(file, module_facts(old), module_facts(new) if new is not None else None)
    if with_change is not None:
        passed = {r.nodeid for r in at_base.results if r.outcome == Outcome.PASSED}
        for result in with_change.results:
            if result.nodeid in passed and result.outcome in (Outcome.SKIPPED, Outcome.XFAILED):
                why = f": {result.message}" if result.message else ""
                findings.append(IntegrityFinding("test-skipped", _file_of(result.nodeid), result.nodeid,
                                                 f"passed at the base commit, {result.outcome} with the change{why}"))
    return findings


def _runs(inputs: IntegrityInputs, at_base: Sequence[str], now: Sequence[str], out_dir: Path,
          pytest: PytestSettings) -> tuple[PytestRun, PytestRun | None]:
    isolated = pytest.isolated_from(inputs.root)

    def base_run() -> PytestRun:
        with temp_worktree(inputs.repo, inputs.base) as worktree:
            return run_pytest(tuple(at_base), cwd=worktree, out_dir=out_dir, name="integrity-base",
                              command=isolated.command, env=isolated.env, timeout_s=isolated.timeout_s,
                              warm_start=isolated.warm_start)

    def change_run() -> PytestRun | None:
        if not now:
            return None
        return run_pytest(tuple(now), cwd=inputs.green_cwd, out_dir=out_dir, name="integrity-change",
                          command=pytest.command, env=pytest.env, timeout_s=pytest.timeout_s,
                          warm_start=pytest.warm_start)

    with ThreadPoolExecutor(max_workers=2, thread_name_prefix="integrity") as pool:
        base_future, change_future = pool.submit(base_run), pool.submit(change_run)
        return base_future.result(), change_future.result()


def _dedupe(findings: Sequence[IntegrityFinding]) -> list[IntegrityFinding]:
    """Each finding once; a test's changed constants are left out where a parametrize case of it is reported
    removed (the case's new values gave it a new id: the removal names the change more precisely)."""
    removed_cases = {f.test.partition("[")[0] for f in findings if f.kind == "test-removed" and "[" in f.test}
    seen: set[tuple[str, str, str]] = set()
    unique = []
    for finding in findings:
        key = (finding.kind, finding.test, finding.detail)
        if finding.kind == "expected-values-changed" and finding.test in removed_cases:
            continue
        if key not in seen:
            seen.add(key)
            unique.append(finding)
    return unique


def _reason(detail: IntegrityDetail, checked: int) -> str:
    blocking = detail.blocking
    if blocking:
        more = f" (+{len(blocking) - 1} more)" if len(blocking) > 1 else ""
        return f"integrity: {len(blocking)} finding(s) the item does not allow; {blocking[0].describe()}{more}"
    if detail.findings:
        kinds = ", ".join(sorted({f.kind for f in detail.findings}))
        return f"integrity: {len(detail.findings)} finding(s), all of kinds the item allows ({kinds})"
    return f"integrity: no findings ({checked} changed file(s) compared with the base commit)"


def integrity_gate(inputs: IntegrityInputs, *, out_dir: Path, pytest: PytestSettings,
                   hooks: Sequence[ProjectHook] = ()) -> StageResult:
    """The stage; `hooks`: the project's hook implementations pytest ran with when the `collect` stage
    collected the selectors with the change (harness.gates.integrity.hook_scan)."""
    test_globs = inputs.config.test_globs
    modules = [c.path for c in inputs.changeset.changes if _is_test_module(c.path, test_globs)]
    at_base = [path for path in modules if inputs.old_text(path) is not None]
    existing = {c.path for c in inputs.changeset.changes if c.kind != "deleted"}
    now = [path for path in at_base if path in existing]
    findings = _static_findings(inputs, modules)
    findings += hook_findings(hooks, existing, inputs.old_text, inputs.new_text, findings)
    run_files: dict[str, list[str]] = {}
    if at_base:
        base_run, change_run = _runs(inputs, at_base, now, out_dir, pytest)
        findings += _run_findings(inputs, base_run, change_run, existing)
        run_files = {"base": at_base, "change": now}
    allowed = set(inputs.allowed)
    findings = [replace(f, allowed=f.kind in allowed) for f in _dedupe(findings)]
    detail = IntegrityDetail(tuple(findings), tuple(inputs.allowed), tuple(c.path for c in inputs.changeset.changes))
    out_dir.mkdir(parents=True, exist_ok=True)
    atomic_write_json(out_dir / "integrity.json", {
        "ok": not detail.blocking,
        "allowed_kinds": list(detail.allowed_kinds),
        "findings": [{"kind": f.kind, "file": f.file, "test": f.test, "detail": f.detail, "allowed": f.allowed}
                     for f in findings],
        "files_checked": list(detail.files_checked),
        "test_modules_run": run_files,
    })
    return StageResult("integrity", not detail.blocking, _reason(detail, len(detail.files_checked)), detail=detail)
