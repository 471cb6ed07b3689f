"""Step 1 of an iteration, prove: the agent's turn(s) if there is an agent, then the stages.

The change set is listed from the tree by the harness itself (the agent's word counts for nothing), once,
before any test runs in the tree; the stages judge exactly that change set and it is the one committed.
In the working tree the files the commit leaves out (`ignore` rules, the size cap) are set aside while the
stages run (harness.durability.set_aside) and put back after them: the proven tree is the committed tree.
"""
from __future__ import annotations

from contextlib import ExitStack
from dataclasses import replace
from pathlib import Path

import git

from harness.agent.stage import agent_stage
from harness.durability.set_aside import setting_aside
from harness.gitops import changes_between, temp_worktree, working_changes
from harness.iteration.records import AttemptContext, IterationRequest, Progress, Proof
from harness.iteration.stage_plans import run_stages
from harness.proof.changes import ChangeSet, classify_changes
from harness.proof.stage_records import StageResult


def list_changes(request: IterationRequest, repo: git.Repo) -> ChangeSet:
    """The change under proof as it is now: the working tree against HEAD (with the files the commit leaves
    out named apart), or the commits base..head (proven as committed: nothing is left out)."""
    cfg = request.config
    if request.head is None:
        return classify_changes(working_changes(repo), cfg)
    return classify_changes(changes_between(repo, request.base, request.head), cfg, leave_out=False)


def _stages(request: IterationRequest, repo: git.Repo, changeset: ChangeSet, attempt: AttemptContext,
            progress: Progress, *, out_dir: Path, cwd: Path, red_only: bool = False) -> list[StageResult]:
    """run_stages with the files the commit leaves out set aside; a failed stage's reason names them, since
    the proof may have needed one."""
    def run() -> list[StageResult]:
        return run_stages(request, changeset, out_dir, cwd, repo, attempt.journal, progress, red_only=red_only)

    if request.head is not None or not changeset.left_out_changes:
        return run()
    for path, why in changeset.left_out:
        progress(f"{request.item.id}: left out of the commit, set aside while the stages run: {path} ({why})")
    with setting_aside(repo, request.root, request.base, changeset.left_out_changes, attempt.journal):
        stages = run()
    failed = next((n for n, s in enumerate(stages) if not s.ok), None)
    if failed is not None:
        names = "; ".join(f"{path} ({why})" for path, why in changeset.left_out)
        stages[failed] = replace(stages[failed], reason=(
            f"{stages[failed].reason} [the stages ran without the files left out of the commit: {names}; if "
            f"the change needs one, make it committable (drop the `ignore` rule that matches it or raise "
            f"`caps.changed_file_bytes` in harness.yaml) or make the change work without it]"))
    return stages


def _with_agent(request: IterationRequest, repo: git.Repo, attempt: AttemptContext,
                progress: Progress, echo: bool) -> Proof:
    """The agent's turn(s), then the same stages as `run --no-agent`. Two-phase: the agent writes the failing
    test, the harness proves it fails, then the agent makes it pass.

    The change set is listed after each turn, before any test runs in the tree: whatever the tests write
    into the tree afterwards was never judged, so it is not part of the change."""
    cfg, root, staging, journal = request.config, request.root, attempt.staging, attempt.journal
    ledger_text = request.ledger.text if request.ledger else ""
    phases: tuple[str | None, ...] = tuple(cfg.agent.phases) if cfg.agent.phases else (None,)
    stages: list[StageResult] = []
    for phase in phases:
        turn = agent_stage(repo=repo, root=root, config=cfg, item=request.item, ledger_text=ledger_text,
                           attempt=attempt.number, evidence_rel=attempt.evidence_rel,
                           out_dir=staging / "agent", journal=journal, phase=phase, progress=progress,
                           echo=echo)
        stages.append(turn)
        changeset = list_changes(request, repo)
        if not turn.ok:
            return Proof(tuple(stages), changeset)
        if phase == "red":
            stages += _stages(request, repo, changeset, attempt, progress, out_dir=staging / "phase_red",
                              cwd=root, red_only=True)
            if not all(s.ok for s in stages):
                return Proof(tuple(stages), changeset)
    stages += _stages(request, repo, changeset, attempt, progress, out_dir=staging, cwd=root)
    return Proof(tuple(stages), changeset)


def prove(request: IterationRequest, repo: git.Repo, attempt: AttemptContext, *, use_agent: bool,
          progress: Progress, echo: bool = True) -> Proof:
    """Run the agent (with `use_agent`; working tree only) and the stages; nothing is recorded yet.

    `echo`: the agent's output goes to the console as well as to its log (parallel workers keep it quiet)."""
    if use_agent:
        return _with_agent(request, repo, attempt, progress, echo)
    changeset = list_changes(request, repo)
    with ExitStack() as stack:
        if request.head is None:
            green_cwd = request.root
        else:
            green_cwd = stack.enter_context(temp_worktree(repo, request.head))
        stages = _stages(request, repo, changeset, attempt, progress, out_dir=attempt.staging, cwd=green_cwd)
    return Proof(tuple(stages), changeset)
