"""One plan step: run the planner, read and check its proposal, and with `apply` write the ledger and make
one commit. `harness plan` and `harness loop --plan-every N / --plan-when-empty` call `plan_step` with the
repository lock held.

The planner runs through harness.agent.run (its own process group, a timeout, its output to the console
and a log), in the repository root, with its prompt on stdin (or in `{prompt_file}`) and
`HARNESS_PLAN_FILE`, the file it writes its proposal to, in a temporary folder outside the repository.
It may change nothing else: the harness compares the working tree before and after its run (every
modified, deleted and untracked path git does not ignore, by content) and HEAD. A change to the tree is
refused (`tree-changed`) and taken back where the path was as HEAD has it before the run (a path that
already held a person's change is left as the planner left it, and named); a moved HEAD is refused
(`head-moved`) and left for a person to inspect. Nothing is written to the ledger unless every check of
harness.agent.planner.checks passes.

The files of the last planner run stay in `<git-dir>/harness/plan/` (prompt.md, planner.log, proposal.md),
so a proposal reviewed in a dry run is applied exactly as it was: `harness plan --apply --proposal FILE`.
"""
from __future__ import annotations

import dataclasses
import difflib
import hashlib
import os
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from harness.agent.planner.checks import PlanProblem, check_proposal
from harness.agent.planner.prompt import build_plan_context, render_plan_prompt
from harness.agent.planner.proposal import Proposal, merged_text, read_proposal
from harness.agent.run import run_agent
from harness.atomic import atomic_write_text
from harness.config import Config, PlannerConfig, judging_settings
from harness.durability.lock import STATE_DIR
from harness.errors import HarnessError, LedgerError
from harness.gitops import Change, commit_paths, discard_changes, head_sha, is_clean, working_changes
from harness.ledger import Ledger, parse_ledger, read_ledger_text, write_ledger_atomic
from harness.workspace import Workspace

PLAN_DIR = "plan"
PROPOSAL_NAME = "proposal.md"
PROPOSAL_MAX_BYTES = 1_000_000
PLANNER_TRAILER = "Harness-Planner"
OUTCOMES = ("applied", "proposed", "unchanged", "refused")


class PlannerError(HarnessError):
    """The planner could not give a proposal (not configured, not found, failed, timed out, wrote none) or
    the ledger cannot be planned now: nothing was written."""


@dataclass(frozen=True)
class PlanResult:
    """What a plan step did. `outcome`: applied (committed), proposed (a dry run: nothing written),
    unchanged (the proposal changes nothing), refused (`problems` say why; nothing written)."""

    outcome: str
    planner: str
    proposal_path: Path | None = None
    added: tuple[str, ...] = ()
    edited: tuple[str, ...] = ()
    problems: tuple[PlanProblem, ...] = ()
    diff: str = ""
    commit: str | None = None

    @property
    def summary(self) -> str:
        parts = [f"add {', '.join(self.added)}"] if self.added else []
        parts += [f"edit {', '.join(self.edited)}"] if self.edited else []
        return "; ".join(parts) or "no change"

    def problem_lines(self) -> list[str]:
        source = str(self.proposal_path) if self.proposal_path else "proposal"
        return [p.render(source) for p in self.problems]


def planner_name(planner: PlannerConfig) -> str:
    """The planner as its commit trailer names it: the configured command, placeholders unexpanded (the
    same on every machine), on one line."""
    text = planner.command[0] if planner.shell else " ".join(planner.command)
    return " ".join(text.split())[:200]


def plan_folder(ws: Workspace) -> Path:
    return ws.git_dir / STATE_DIR / PLAN_DIR


def plan_step(ws: Workspace, *, goal: str | None = None, apply: bool = False, proposal: Path | None = None,
              progress: Callable[[str], None] = print, echo: bool = True) -> PlanResult:
    """Run the planner (or take `proposal`, a file a planner wrote before), check the proposal, and with
    `apply` write the ledger and commit it. Refusals are results; PlannerError (exit 4) when no proposal
    can be had. The caller holds the repository lock."""
    config = judging_settings(ws.repo, head_sha(ws.repo), ws.config).config
    planner = ws.config.planner
    if proposal is None and planner is None:
        raise PlannerError("no planner is configured: add `planner: {command: [...]}` to harness.yaml (an argv "
                           "list, like `agent.command`; README, \"The planner\"), or give a proposal file with "
                           "--proposal FILE")
    if not is_clean(ws.repo, [config.ledger]):
        raise PlannerError(f"{config.ledger} has uncommitted changes: a plan commits the ledger, so it would take "
                           "them in or overwrite them; commit or stash them first")
    ledger = parse_ledger(read_ledger_text(ws.root / config.ledger), config.ledger)
    name = planner_name(planner) if planner is not None else "a proposal file (--proposal)"
    if proposal is not None:
        text, kept = _read_text(Path(proposal), "the proposal file"), Path(proposal)
    else:
        assert planner is not None
        kept = plan_folder(ws) / PROPOSAL_NAME
        text, refusal = _run_planner(ws, planner, config, ledger=ledger, goal=goal, progress=progress,
                                     echo=echo)
        if refusal:
            return PlanResult("refused", name, None, problems=tuple(refusal))
    return _judge(ws, config, ledger, text, planner=planner, name=name, kept=kept, goal=goal, apply=apply)


def _judge(ws: Workspace, config: Config, ledger: Ledger, text: str, *, planner: PlannerConfig | None,
           name: str, kept: Path, goal: str | None, apply: bool) -> PlanResult:
    """Read `text` against the ledger, check it, and with `apply` write and commit it."""
    read = read_proposal(text, ledger)
    if read.problems:
        problems = tuple(PlanProblem(p.code, p.item_id, p.line, p.message) for p in read.problems)
        return PlanResult("refused", name, kept, problems=problems)
    if not read.items:
        return PlanResult("unchanged", name, kept)
    new_text = merged_text(ledger, read)
    try:
        merged = parse_ledger(new_text, config.ledger)
    except LedgerError as exc:
        return PlanResult("refused", name, kept, problems=(PlanProblem("parse-error", None, None,
                                                                       f"the ledger would not parse: {exc}"),))
    problems = check_proposal(read, text, merged, test_globs=config.test_globs, repo_root=ws.root,
                              require_acceptance=bool(planner and planner.require_acceptance))
    problems += _history_problems(ledger, merged)
    if problems:
        return PlanResult("refused", name, kept, read.added, read.edited, tuple(problems))
    proposed = PlanResult("proposed", name, kept, read.added, read.edited,
                          diff=_diff(ledger.text, new_text, config.ledger))
    if not apply:
        return proposed
    path = ws.root / config.ledger
    write_ledger_atomic(path, new_text)
    try:
        sha = commit_paths(ws.repo, [config.ledger], _message(proposed.summary, read, goal),
                           identity=config.commit.identity, trailers=[(PLANNER_TRAILER, name)])
    except BaseException:
        write_ledger_atomic(path, ledger.text, check=False)  # no commit, so the ledger goes back as it was
        raise
    return dataclasses.replace(proposed, outcome="applied", commit=sha)


def _run_planner(ws: Workspace, planner: PlannerConfig, config: Config, *, ledger: Ledger, goal: str | None,
                 progress: Callable[[str], None], echo: bool) -> tuple[str, list[PlanProblem]]:
    """Run the planner; (its proposal's text, problems with its run: a changed tree or HEAD)."""
    folder = plan_folder(ws)
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    with tempfile.TemporaryDirectory(prefix="harness-plan-") as tmp:
        plan_file = Path(tmp) / PROPOSAL_NAME
        context = build_plan_context(repo_root=ws.root, config=config, ledger=ledger, plan_file=plan_file,
                                     goal=goal)
        prompt = render_plan_prompt(context, planner.prompt_template)
        before, head = _tree_state(ws), head_sha(ws.repo)
        progress(f"plan: running {planner_name(planner)[:80]} ...")
        env = {"HARNESS_PLAN_FILE": str(plan_file), "HARNESS_LEDGER": config.ledger,
               **({"HARNESS_PLAN_GOAL": goal} if goal else {})}
        run = run_agent(config=planner, prompt=prompt, cwd=ws.root, log_path=folder / "planner.log",
                        env_extra=env, prompt_path=folder / "prompt.md", echo=echo, role="planner")
        problems = _run_problems(ws, before, head)
        also = ("; " + "; ".join(p.message for p in problems)) if problems else ""
        if run.timed_out:
            raise PlannerError(f"the planner timed out after {planner.timeout_s} s (its process group was killed); "
                               f"nothing was written{also}; its log: {run.log_path}")
        if run.exit_code != 0:
            raise PlannerError(f"the planner exited with code {run.exit_code}; nothing was written{also}; its "
                               f"log: {run.log_path}")
        if problems:
            return "", problems
        if not plan_file.is_file():
            raise PlannerError(f"the planner exited 0 but wrote no proposal to $HARNESS_PLAN_FILE ({plan_file}): "
                               "it must write the items it proposes there (an empty file proposes no change); "
                               f"nothing was written; its log: {run.log_path}")
        text = _read_text(plan_file, "the planner's proposal")
    atomic_write_text(folder / PROPOSAL_NAME, text)
    return text, []


def _read_text(path: Path, what: str) -> str:
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise PlannerError(f"{what} {path} cannot be read ({exc.strerror or exc})") from None
    if len(data) > PROPOSAL_MAX_BYTES:
        raise PlannerError(f"{what} {path} holds {len(data)} bytes, over the {PROPOSAL_MAX_BYTES}-byte limit of a "
                           "proposal: propose fewer items at a time")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise PlannerError(f"{what} {path} is not UTF-8 (byte {exc.start}); it must be Markdown text") from None


_ABSENT = "absent"


def _tree_state(ws: Workspace) -> dict[str, str]:
    """Each path git sees as changed against HEAD (untracked included, ignored not), by content."""
    state = {}
    for change in working_changes(ws.repo):
        path = ws.root / change.path
        if change.kind == "deleted" or not os.path.lexists(path):
            state[change.path] = "deleted"
        elif path.is_symlink():
            state[change.path] = "link:" + os.readlink(path)
        elif path.is_file():
            state[change.path] = hashlib.sha256(path.read_bytes()).hexdigest()
        else:
            state[change.path] = "other"
    return state


def _run_problems(ws: Workspace, before: dict[str, str], head: str) -> list[PlanProblem]:
    """What the planner's run did besides its proposal (refusals), taking back what can be taken back."""
    now = head_sha(ws.repo)
    if now != head:
        return [PlanProblem("head-moved", None, None, (
            f"the planner moved HEAD from {head[:10]} to {now[:10]} (a commit, a checkout, a reset): a planner "
            "writes only its proposal file; nothing of the plan was written, and the harness leaves HEAD for "
            "you to inspect (`git log`, `git reflog`)"))]
    after = _tree_state(ws)
    changed = sorted(p for p in set(before) | set(after) if before.get(p, _ABSENT) != after.get(p, _ABSENT))
    if not changed:
        return []
    clean_before = [p for p in changed if p not in before]
    discard_changes(ws.repo, [Change(p, "modified", 0) for p in clean_before])
    left = [p for p in changed if p in before]
    message = f"the planner changed the working tree ({', '.join(changed[:10])}{' ...' if len(changed) > 10 else ''})"
    message += ": a planner writes only its proposal file ($HARNESS_PLAN_FILE)"
    if clean_before:
        message += f"; taken back (as HEAD has them): {', '.join(clean_before[:10])}"
    if left:
        message += f"; left as the planner left them (they held uncommitted changes before it ran): {', '.join(left)}"
    return [PlanProblem("tree-changed", None, None, message)]


def _history_problems(ledger: Ledger, merged: Ledger) -> list[PlanProblem]:
    """Every item's attempt lines are as they were (the merge keeps them; this is the proof)."""
    out = []
    for item in ledger.items:
        after = merged.get(item.id)
        if [a[:6] for a in item.attempts] != [a[:6] for a in after.attempts]:
            out.append(PlanProblem("attempt-lines", item.id, None,
                                   f"the plan would change the attempt lines of [{item.id}]; they are the harness's"))
    return out


def _diff(old: str, new: str, rel: str) -> str:
    return "".join(difflib.unified_diff(old.splitlines(keepends=True), new.splitlines(keepends=True),
                                        fromfile=f"a/{rel}", tofile=f"b/{rel}"))


def _message(summary: str, proposal: Proposal, goal: str | None) -> str:
    lines = [f"plan: {summary}", ""]
    if goal:
        lines += [f"Goal: {' '.join(goal.split())}", ""]
    lines += [f"- {'added' if p.is_new else 'edited'} [{p.item.id}] {p.item.title}" for p in proposal.items]
    return "\n".join(lines)
