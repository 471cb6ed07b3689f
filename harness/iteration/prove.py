"""Step 1 of an iteration, prove: the agent's turn(s) if there is an agent, then the stages.

The change set is listed from the tree by the harness itself (the agent's word counts for nothing), once,
before any test runs in the tree; the stages judge exactly that change set and it is the one committed.
"""
from __future__ import annotations

from contextlib import ExitStack

import git

from harness.agent.stage import agent_stage
from harness.gitops import changes_between, temp_worktree, working_changes
from harness.iteration.records import AttemptContext, IterationRequest, Progress, Proof
from harness.iteration.stage_plans import run_stages
from harness.proof.changes import ChangeSet, classify_changes
from harness.proof.stage_records import StageResult


def list_changes(request: IterationRequest, repo: git.Repo) -> ChangeSet:
    """The change under proof as it is now: the working tree against HEAD, or the commits base..head."""
    cfg = request.config
    if request.head is None:
        raw_changes = working_changes(repo)
    else:
        raw_changes = changes_between(repo, request.base, request.head)
    return classify_changes(raw_changes, cfg)


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
            stages += run_stages(request, changeset, staging / "phase_red", root, repo, journal, progress,
                                 red_only=True)
            if not all(s.ok for s in stages):
                return Proof(tuple(stages), changeset)
    stages += run_stages(request, changeset, staging, root, repo, journal, progress)
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
        stages = run_stages(request, changeset, attempt.staging, green_cwd, repo, attempt.journal, progress)
    return Proof(tuple(stages), changeset)
