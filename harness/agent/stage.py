"""The agent stage of an iteration: prompt, run the agent in its sandbox, take back what the harness owns.

The agent's word counts for nothing: after it returns, the harness looks at the working tree itself.
Edits it made to the ledger or the evidence folders are discarded and named in the summary.
"""
from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from pathlib import Path

import git

from harness.agent.prompt import build_prompt_context, render_prompt
from harness.agent.run import agent_argv, run_agent
from harness.agent.sandbox import Sandbox, SandboxStatus, agent_sandbox
from harness.config import Config
from harness.durability.journal import Journal
from harness.durability.lock import STATE_DIR
from harness.gates.acceptance import configured_holdout
from harness.gitops import common_git_dir, discard_changes, main_worktree, own_git_dir, working_changes
from harness.ledger import Item
from harness.proof.changes import split_owned
from harness.proof.stage_records import AgentTurnDetail, StageResult


def _owned_changes(repo: git.Repo, config: Config) -> dict[str, bytes | None]:
    """Working-tree content of every harness-owned path that differs from HEAD (None: deleted)."""
    changes = working_changes(repo)
    owned = [c.path for c in split_owned(changes, config)[1]]
    root = Path(repo.working_tree_dir)
    return {path: (root / path).read_bytes() if (root / path).is_file() else None for path in owned}


def take_back_harness_files(repo: git.Repo, config: Config, before: dict[str, bytes | None]) -> tuple[str, ...]:
    """Undo what the agent did to harness-owned paths (ledger, evidence, selector runs): each goes back to
    its state before the agent ran. Returns the paths taken back."""
    after = _owned_changes(repo, config)
    root = Path(repo.working_tree_dir)
    touched = sorted(p for p in set(before) | set(after) if before.get(p, b"\0absent") != after.get(p, b"\0absent"))
    to_head = [c for c in working_changes(repo) if c.path in touched and c.path not in before]
    discard_changes(repo, to_head)
    for path in touched:
        if path in before:
            content = before[path]
            if content is None:
                (root / path).unlink(missing_ok=True)
            else:
                (root / path).parent.mkdir(parents=True, exist_ok=True)
                (root / path).write_bytes(content)
    return tuple(touched)


def sandbox_for(repo: git.Repo, root: Path, config: Config, prompt_file: Path) -> AbstractContextManager[Sandbox]:
    """The sandbox of an agent turn in `root` (the repository, or a parallel worker's worktree) whose prompt
    is written to `prompt_file`."""
    main = main_worktree(repo)
    holdout = [p for p in (configured_holdout(config, main), configured_holdout(config, root)) if p is not None]
    what = "the working tree" if Path(root).resolve() == main else "the worker's worktree"
    argv, _ = agent_argv(config.agent, prompt_file)
    common = common_git_dir(repo)
    return agent_sandbox(config.agent, tree=root, git_dir=own_git_dir(repo), common_dir=common,
                         prompt_dir=prompt_file.parent, argv=argv, holdout=holdout, tree_what=what,
                         scratch_in=common / STATE_DIR / "staging")  # emptied by recovery after a kill -9


def _announce(status: SandboxStatus, item: Item, name: str, progress: Callable[[str], None]) -> None:
    """The sandbox line, and the warnings: no sandbox where one could be had, held-out tests without one."""
    progress(f"{item.id}: {name}: sandbox: {status.line()}")
    for warning in status.warnings(held_out_tests=bool(item.acceptance)):
        progress(f"{item.id}: warning: {warning}")


def agent_stage(*, repo: git.Repo, root: Path, config: Config, item: Item, ledger_text: str, attempt: int,
                evidence_rel: str, out_dir: Path, journal: Journal, phase: str | None = None,
                progress: Callable[[str], None] = print, echo: bool = True) -> StageResult:
    """Run the configured agent once in the working tree, in its sandbox (harness.agent.sandbox: the
    console says which, with its warnings), and judge only what the harness can see."""
    name = "agent" if phase is None else f"agent_{phase}"
    context = build_prompt_context(repo_root=root, item=item, ledger_text=ledger_text, phase=phase,
                                   ledger_path=config.ledger, evidence_root=config.evidence_root,
                                   findings_path=config.agent.findings)
    mode = "tdd" if item.mode == "tdd" else "chore"
    prompt = render_prompt(context, template_path=config.agent.prompt_template, mode=mode)
    journal.update(stage=name)
    before = _owned_changes(repo, config)
    preset = config.agent.preset if config.agent.command_from_preset else None
    via = f" (preset {preset})" if preset else ""
    prompt_file = out_dir / f"{name}.prompt.md"
    with sandbox_for(repo, root, config, prompt_file) as sandbox:
        _announce(sandbox.view.status, item, name, progress)
        progress(f"{item.id}: {name}: running {' '.join(config.agent.command or ())[:80]}{via} ...")
        run = run_agent(
            config=config.agent, prompt=prompt, cwd=root, log_path=out_dir / f"{name}.log",
            env_extra={"HARNESS_ITEM": item.id, "HARNESS_ATTEMPT": str(attempt),
                       "HARNESS_EVIDENCE_DIR": evidence_rel, **({"HARNESS_PHASE": phase} if phase else {})},
            on_start=lambda pgid: journal.update(agent_pgid=pgid), prompt_path=prompt_file,
            echo=echo, sandbox=sandbox)
    journal.update(agent_pgid=0)
    discarded = take_back_harness_files(repo, config, before)
    for path in discarded:
        progress(f"{item.id}: the agent edited {path}, which the harness owns: edit discarded")
    if run.timed_out:
        reason = f"the agent timed out after {config.agent.timeout_s} s (its process group was killed)"
    elif run.exit_code != 0:
        reason = f"the agent exited with code {run.exit_code}"
    else:
        reason = f"the agent exited 0 after {run.duration_s:.1f} s"
    detail = AgentTurnDetail(phase=phase or "single", argv=tuple(run.argv), exit_code=run.exit_code,
                             timed_out=run.timed_out, discarded_edits=discarded, preset=preset,
                             sandbox=sandbox.view)
    return StageResult(name, run.ok, reason, (), run.duration_s, detail=detail)
