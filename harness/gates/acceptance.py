"""Held-out acceptance tests (stage `acceptance`): tests the agent never sees judge the change.

`holdout: {dir: PATH}` in harness.yaml names a folder outside the repository whose files are laid out as
they would be in it (`PATH/tests/acceptance/test_x.py`). For an item with `- Acceptance: <selector>`
lines, after GREEN, the harness builds a temporary tree holding the change (a worktree at the base
commit plus the change's files, or a worktree at `head`), copies the held-out files into it, and runs
each selector there: every selected test must pass (skips are not passes).

Held-out files never enter the working tree, a commit, the prompt or the evidence: their pytest logs,
JUnit XML and failure messages stay in a temporary folder that is deleted; the evidence keeps only node
ids and outcomes (`acceptance/acceptance.json`).
"""
from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import git

from harness.atomic import atomic_write_json
from harness.config import Config
from harness.errors import HarnessError
from harness.gates.records import AcceptanceDetail
from harness.gitops import copy_working_files, temp_worktree
from harness.ledger import Item
from harness.proof.changes import ChangeSet
from harness.proof.stage_records import StageResult
from harness.pytest_run.results import Outcome, PytestRun
from harness.pytest_run.runner import PytestSettings, Selector, parse_selector, run_pytest

_SKIPPED_PARTS = frozenset({"__pycache__", ".pytest_cache", ".git"})


def configured_holdout(config: Config, repo_root: Path) -> Path | None:
    """Where holdout.dir points from `repo_root`, resolved, whether or not it exists (None: not configured)."""
    if config.holdout is None:
        return None
    return (Path(repo_root) / Path(config.holdout.dir).expanduser()).resolve()


def holdout_root(config: Config, repo_root: Path) -> Path:
    """The held-out folder, resolved; HarnessError when it is not configured, missing, or inside the repo."""
    folder = configured_holdout(config, repo_root)
    if config.holdout is None or folder is None:
        raise HarnessError("an item names `Acceptance:` selectors but harness.yaml has no `holdout: {dir: PATH}`;"
                           " add the folder of held-out tests (outside the repository)")
    if not folder.is_dir():
        raise HarnessError(f"holdout.dir {config.holdout.dir!r} (resolved to {folder}) is not a folder; create it "
                           "and put the held-out test files in it, laid out as in the repository")
    repo = Path(repo_root).resolve()
    if folder == repo or repo in folder.parents:
        raise HarnessError(f"holdout.dir {folder} lies inside the repository, where the agent and every commit "
                           "can see it; move it outside (e.g. ../holdout)")
    return folder


def check_acceptance(config: Config, item: Item, repo_root: Path) -> None:
    """Before an attempt: an item's Acceptance selectors parse and its held-out folder is usable."""
    if not item.acceptance:
        return
    for raw in item.acceptance:
        parse_selector(raw)
    holdout_root(config, repo_root)


def holdout_files(folder: Path) -> list[Path]:
    """The held-out files, relative to their folder (caches left out)."""
    return sorted(p.relative_to(folder) for p in folder.rglob("*")
                  if p.is_file() and not _SKIPPED_PARTS & set(p.relative_to(folder).parts) and p.suffix != ".pyc")


def _place_holdout(folder: Path, tree: Path) -> int:
    files = holdout_files(folder)
    clashes = [str(rel) for rel in files if (tree / rel).exists()]
    if clashes:
        raise HarnessError(f"held-out file(s) {', '.join(clashes[:3])} would replace the repository's own; held-out "
                           "tests must add files, not change the project (rename them in holdout.dir)")
    for rel in files:
        (tree / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(folder / rel, tree / rel)
    return len(files)


def _judge(selector: Selector, run: PytestRun) -> str | None:
    """Why the selector's held-out tests did not all pass (node ids and outcomes only), or None."""
    if run.timed_out:
        return f"{selector.raw} {run.exit_meaning}"
    if run.returncode in (3, 4) or run.returncode < 0 or not (run.results or run.collected):
        if not run.results and not run.collected:
            return (f"{selector.raw} collects no test in the held-out tree; check the Acceptance selector "
                    "and the files in holdout.dir")
        return f"{selector.raw} could not run (pytest exit {run.returncode}, {run.exit_meaning})"
    if run.record_problems:
        return f"{selector.raw}: {run.untrusted_reason()}"
    offenders = [f"{r.nodeid} {r.outcome}" for r in run.results if r.outcome != Outcome.PASSED]
    not_run = run.not_run()
    if offenders or not_run:
        listed = offenders + [f"{n} did not run" for n in not_run]
        return f"{len(listed)} held-out test(s) did not pass: " + "; ".join(listed[:5]) + (
            f"; and {len(listed) - 5} more" if len(listed) > 5 else "")
    if run.returncode != 0:
        return f"{selector.raw}: pytest exited {run.returncode} ({run.exit_meaning})"
    return None


def acceptance_stage(*, repo: git.Repo, root: Path, base: str, head: str | None, changeset: ChangeSet,
                     item: Item, config: Config, out_dir: Path, pytest: PytestSettings) -> StageResult:
    folder = holdout_root(config, root)
    selectors = [parse_selector(raw) for raw in item.acceptance]
    isolated = pytest.isolated_from(root)
    results: list[tuple[str, str]] = []
    problems: list[str] = []
    runs = []
    with tempfile.TemporaryDirectory(prefix="harness-acceptance-logs-") as logs, \
            temp_worktree(repo, head or base) as tree:
        if head is None:
            copy_working_files(root, tree, changeset.changes)
        try:
            placed = _place_holdout(folder, tree)
        except HarnessError as exc:
            return StageResult("acceptance", False, f"acceptance: {exc}",
                               detail=AcceptanceDetail(tuple(s.raw for s in selectors), (), 0))
        for index, selector in enumerate(selectors, start=1):
            run = run_pytest(selector.args, cwd=tree, out_dir=Path(logs), name=f"acceptance-{index}",
                             command=isolated.command, env=isolated.env, timeout_s=isolated.timeout_s,
                             warm_start=isolated.warm_start)
            outcomes = [(r.nodeid, str(r.outcome)) for r in run.results]
            results += outcomes
            runs.append({"selector": selector.raw, "returncode": run.returncode, "timed_out": run.timed_out,
                         "duration_s": round(run.duration_s, 3),
                         "results": [{"nodeid": n, "outcome": o} for n, o in outcomes]})
            problem = _judge(selector, run)
            if problem:
                problems.append(problem)
    out_dir.mkdir(parents=True, exist_ok=True)
    atomic_write_json(out_dir / "acceptance.json", {"selectors": runs, "holdout_files": placed})
    detail = AcceptanceDetail(tuple(s.raw for s in selectors), tuple(results), placed)
    if problems:
        return StageResult("acceptance", False, "acceptance: " + problems[0], detail=detail)
    return StageResult("acceptance", True, f"acceptance: all {len(results)} held-out test(s) pass", detail=detail)
