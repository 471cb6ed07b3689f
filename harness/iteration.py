"""One verified iteration: collect -> RED proof -> GREEN proof -> gates -> evidence -> ledger -> commit.

Used by `harness run` (the change is in the working tree) and `harness verify` (the change is committed,
REV..HEAD). Evidence is staged under the git dir and moved into the tree complete, with its SHA256SUMS,
so a crash never leaves a half-written evidence folder in the repository.
"""
from __future__ import annotations

import os
import shutil
import tempfile
import time
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import git

from harness import __version__
from harness.agent_stage import agent_stage
from harness.atomic import atomic_write_json, atomic_write_text
from harness.changes import ChangeSet, classify_changes, harness_roots
from harness.clock import iso, stamp, utc_now
from harness.config import Config
from harness.evidence import compress_large_files, evidence_dir, write_sha256sums
from harness.gates import collect_gate, full_suite_gate, regression_gate
from harness.gitops import (
    changes_between,
    commit_paths,
    common_git_dir,
    copy_working_files,
    discard_changes,
    snapshot_to_ref,
    temp_worktree,
    working_changes,
    write_files_at_rev,
)
from harness.ledger import Item, Ledger, parse_ledger, record_attempt, write_ledger_atomic
from harness.lint_gate import lint_change
from harness.locking import Journal
from harness.proof import StageResult, prove_green, prove_red
from harness.pytest_runner import ISOLATE_ENV, Selector, parse_selector
from harness.report import attempt_record, render_summary, trailer_green, trailer_red

Progress = Callable[[str], None]


@dataclass(frozen=True)
class IterationRequest:
    """What to prove. `head` None: the change is the working tree; otherwise the commits base..head."""

    root: Path
    config: Config
    item: Item
    base: str
    head: str | None = None
    keep_open: bool = False
    dry_run: bool = False
    ledger: Ledger | None = field(default=None, repr=False)  # the parse the item came from, reused if current


@dataclass(frozen=True)
class IterationResult:
    item_id: str
    attempt: int
    succeeded: bool
    failed_stage: str | None
    reason: str
    evidence_dir: Path
    commit: str | None
    saved_ref: str | None
    stages: tuple[StageResult, ...]
    changeset: ChangeSet
    record: dict = field(repr=False, default_factory=dict)

    @property
    def outcome(self) -> str:
        return "GREEN" if self.succeeded else f"FAILED at {self.failed_stage}"


def _pytest_kwargs(config: Config) -> dict:
    return {"command": tuple(config.pytest.argv()), "env": dict(config.pytest.env),
            "timeout_s": config.pytest.timeout_s}


def isolated(kwargs: dict, root: Path) -> dict:
    """pytest settings for a run in a temporary worktree: hide modules of the working tree at `root`
    (an editable install of it would otherwise leak the changed code into the base commit's run)."""
    return {**kwargs, "env": {**kwargs["env"], ISOLATE_ENV: str(root)}}


def _selectors(raw: tuple[str, ...]) -> tuple[Selector, ...]:
    return tuple(parse_selector(text) for text in raw)


def _skipped(name: str, why: str) -> StageResult:
    return StageResult(name, True, f"{name}: {why}", extra=(("skipped", True),))


def run_stages(request: IterationRequest, changeset: ChangeSet, staging: Path, green_cwd: Path,
               repo: git.Repo, journal: Journal, progress: Progress, *,
               red_only: bool = False) -> list[StageResult]:
    """Run the stages in order and stop at the first that fails (later stages are reported as not run).

    `red_only`: collect and the RED proof only (the first phase of a two-phase agent iteration).
    """
    cfg, item = request.config, request.item
    kwargs = _pytest_kwargs(cfg)
    if request.head is not None:  # GREEN and the gates run in a worktree at head
        kwargs = isolated(kwargs, request.root)
    red, regression = _selectors(item.red), _selectors(item.regression)
    stages: list[StageResult] = []

    def stage(name: str, fn: Callable[[], StageResult]) -> bool:
        journal.update(stage=name)
        progress(f"{item.id}: {name} ...")
        started = time.monotonic()
        result = fn()
        if not result.duration_s:
            result = StageResult(result.name, result.ok, result.reason, result.outcomes,
                                 time.monotonic() - started, result.extra)
        stages.append(result)
        progress(f"{item.id}: {name}: {'ok' if result.ok else 'FAILED'} ({result.reason})")
        return result.ok

    # In the red phase the new test cannot import what the change has yet to add: the RED proof judges it.
    if cfg.gates.collect and not red_only and not stage(
        "collect", lambda: collect_gate(red + regression, cwd=green_cwd, out_dir=staging / "collect",
                                        pytest_kwargs=kwargs)):
        return stages

    if item.mode in ("chore", "docs"):
        stages.append(_skipped("red", f"not required: Mode {item.mode} items skip the RED proof"))
    else:
        def red_stage() -> StageResult:
            with temp_worktree(repo, request.base) as worktree:
                if request.head is None:
                    copy_working_files(request.root, worktree, changeset.tests)
                else:
                    write_files_at_rev(repo, request.head, changeset.tests, worktree)
                return prove_red(red, worktree=worktree, out_dir=staging / "red",
                                 pytest_kwargs=isolated(kwargs, request.root),
                                 has_test_changes=changeset.has_test_changes)

        if not stage("red", red_stage) or red_only:
            return stages

    if red or item.mode == "tdd":
        if not stage("green", lambda: prove_green(red, cwd=green_cwd, out_dir=staging / "green",
                                                  pytest_kwargs=kwargs)):
            return stages
    else:
        stages.append(_skipped("green", "no RED selectors named"))

    if cfg.gates.regression and not stage(
        "regression", lambda: regression_gate(regression, cwd=green_cwd, out_dir=staging / "gates",
                                              pytest_kwargs=kwargs)):
        return stages

    if cfg.gates.full_suite and not stage("full_suite", lambda: full_suite_gate(
            cwd=green_cwd, out_dir=staging / "gates", args=tuple(cfg.gates.full_suite_args),
            known_failures=cfg.known_failures, pytest_kwargs=kwargs)):
        return stages

    if cfg.gates.lint is not None:
        def lint_stage() -> StageResult:
            with temp_worktree(repo, request.base) as base_tree:
                _, _, verdict = lint_change(cfg.gates.lint.command, base_cwd=base_tree, head_cwd=green_cwd,
                                            out_dir=staging / "gates", timeout_s=cfg.pytest.timeout_s)
            return StageResult("lint", verdict.ok, verdict.reason,
                               extra=(("new_findings", tuple(f.describe() for f in verdict.new_findings)),
                                      ("fixed_findings", len(verdict.fixed_findings))))

        stage("lint", lint_stage)
    return stages


def _stage_dir(git_dir: Path, label: str) -> Path:
    parent = git_dir / "harness" / "staging"
    parent.mkdir(parents=True, exist_ok=True)
    return Path(tempfile.mkdtemp(prefix=f"{label}-", dir=parent))


def _move_into_place(staging: Path, final: Path) -> None:
    final.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.rename(staging, final)
    except OSError:  # the git dir may sit on another file system (worktrees, GIT_DIR)
        shutil.copytree(staging, final)
        shutil.rmtree(staging)


def _changeset(request: IterationRequest, repo: git.Repo) -> ChangeSet:
    cfg = request.config
    if request.head is None:
        raw_changes = working_changes(repo)
    else:
        raw_changes = changes_between(repo, request.base, request.head)
    return classify_changes(
        raw_changes, test_globs=cfg.test_globs, ignore_globs=cfg.ignore,
        cap_bytes=cfg.caps.changed_file_bytes, ledger_path=cfg.ledger, owned_roots=harness_roots(cfg))


def _with_agent(request: IterationRequest, repo: git.Repo, staging: Path, journal: Journal, attempt: int,
                evidence_rel: str, progress: Progress) -> list[StageResult]:
    """The agent's turn(s), then the same stages as `run --no-agent`. Two-phase: the agent writes the failing
    test, the harness proves it fails, then the agent makes it pass."""
    cfg, root = request.config, request.root
    ledger_text = request.ledger.text if request.ledger else ""
    phases: tuple[str | None, ...] = tuple(cfg.agent.phases) if cfg.agent.phases else (None,)
    stages: list[StageResult] = []
    for phase in phases:
        turn = agent_stage(repo=repo, root=root, config=cfg, item=request.item, ledger_text=ledger_text,
                           attempt=attempt, evidence_rel=evidence_rel, out_dir=staging / "agent",
                           journal=journal, phase=phase, progress=progress)
        stages.append(turn)
        if not turn.ok:
            return stages
        if phase == "red":
            changeset = _changeset(request, repo)
            stages += run_stages(request, changeset, staging / "phase_red", root, repo, journal, progress,
                                 red_only=True)
            if not all(s.ok for s in stages):
                return stages
    changeset = _changeset(request, repo)
    return stages + run_stages(request, changeset, staging, root, repo, journal, progress)


def execute(request: IterationRequest, repo: git.Repo, *, progress: Progress = print,
            now: Callable[[], datetime] = utc_now, use_agent: bool = False) -> IterationResult:
    """Prove, record and commit one attempt. The caller holds the repository lock.

    With `use_agent`, the configured agent makes the change first (working tree only)."""
    cfg, item, root = request.config, request.item, request.root
    git_dir = common_git_dir(repo)
    started = now()
    attempt = item.next_attempt_number
    final_dir = evidence_dir(root, cfg.evidence_root, item.initiative, item.slug, stamp(started))
    evidence_rel = final_dir.relative_to(root).as_posix()
    journal = Journal(git_dir)
    journal.begin(item=item.id, attempt=attempt, base=request.base, evidence_dir=evidence_rel,
                  started=iso(started), head=request.head or "working tree")
    staging = _stage_dir(git_dir, f"{stamp(started)}-{item.slug}")
    if use_agent:
        stages = _with_agent(request, repo, staging, journal, attempt, evidence_rel, progress)
        changeset = _changeset(request, repo)  # what the agent left in the tree
    else:
        changeset = _changeset(request, repo)
        with ExitStack() as stack:
            if request.head is None:
                green_cwd = root
            else:
                green_cwd = stack.enter_context(temp_worktree(repo, request.head))
            stages = run_stages(request, changeset, staging, green_cwd, repo, journal, progress)

    failed = next((s for s in stages if not s.ok), None)
    succeeded = failed is None and bool(stages)
    saved_ref = None
    if not succeeded and request.head is None and changeset.changes:
        saved_ref = f"refs/harness/failed/{item.id}/{attempt}"
    finished = now()
    record = attempt_record(
        request=request, attempt=attempt, started=started, finished=finished, stages=stages,
        changeset=changeset, succeeded=succeeded, failed=failed, saved_ref=saved_ref,
        evidence_rel=evidence_rel, staging=staging, repo=repo, harness_version=__version__)
    journal.update(stage="evidence")
    summary = render_summary(record)
    atomic_write_text(staging / "analysis" / "summary.md", summary)
    atomic_write_json(staging / "attempt.json", record)
    compress_large_files(staging, cfg.caps.evidence_file_bytes)
    write_sha256sums(staging)
    journal.update(stage="record")

    if request.dry_run:
        final_dir.rmdir()  # claimed by evidence_dir(); a dry run leaves nothing in the tree
        out = Path(tempfile.mkdtemp(prefix="harness-dry-run-")) / final_dir.name
        _move_into_place(staging, out)
        journal.clear()
        return IterationResult(item.id, attempt, succeeded, failed.name if failed else None,
                               record["reason"], out, None, None, tuple(stages), changeset, record)

    if saved_ref:
        snapshot_to_ref(repo, saved_ref, f"[{item.id}] attempt {attempt}: work saved by the harness "
                        f"(FAILED at {failed.name})", identity=(cfg.commit.name, cfg.commit.email))
    _move_into_place(staging, final_dir)

    ledger_path = root / cfg.ledger
    current = ledger_path.read_text(encoding="utf-8")
    ledger = request.ledger if request.ledger and request.ledger.text == current else \
        parse_ledger(current, cfg.ledger)
    outcome = "GREEN" if succeeded else f"FAILED at {failed.name}"
    if succeeded:
        status = "in_progress" if request.keep_open else "done"
    else:
        status = "in_progress" if item.status == "pending" else None
    text = record_attempt(ledger, item.id, timestamp=iso(started), number=attempt, outcome=outcome,
                          base_commit=request.base[:10], evidence=f"{evidence_rel}/analysis/summary.md",
                          status=status)
    write_ledger_atomic(ledger_path, text, check=False)  # record_attempt re-read the edited item
    journal.update(stage="commit")

    paths = [*(changeset.commit_paths if succeeded and request.head is None else ()), cfg.ledger,
             *sorted(p.relative_to(root).as_posix() for p in final_dir.rglob("*") if p.is_file())]
    trailers = [
        ("Harness-Item", item.id),
        ("Harness-Initiative", item.initiative),
        ("Harness-Evidence", evidence_rel),
        ("Harness-Red", trailer_red(stages)),
        ("Harness-Green", trailer_green(stages)),
        ("Harness-Base", request.base),
    ]
    if saved_ref:
        trailers.append(("Harness-Saved-Ref", saved_ref))
    subject = f"[{item.id}] {item.title}: {outcome}"
    sha = commit_paths(repo, paths, subject, identity=(cfg.commit.name, cfg.commit.email), trailers=trailers)
    if not succeeded and request.head is None:
        discard_changes(repo, list(changeset.changes))  # saved on the ref; harness-owned files stay
    journal.clear()
    return IterationResult(item.id, attempt, succeeded, failed.name if failed else None, record["reason"],
                           final_dir, sha, saved_ref, tuple(stages), changeset, record)
