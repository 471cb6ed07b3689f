"""Step 0 of an iteration, preflight: everything that can be checked before the attempt is claimed.

An error found here is the configuration's or the ledger's, never the change's: it raises a HarnessError
whose message names what to fix (the field and the file), before any journal, staging folder or evidence
folder exists, so it costs no attempt and leaves the tree, the ledger and the refs as they were. Checked:

    the item       its Allow and Mutation values; its RED, Regression and Acceptance selectors parse
    acceptance     for an item with `- Acceptance:` selectors, the held-out folder (`holdout.dir`) exists
    the agent      when an agent will run: `agent.command` (or `agent.preset`) is set and its program exists
                   (on PATH, or as a path, relative paths from the repository root) and is executable; the
                   prompt template exists and renders for each of the item's phases; with
                   `agent.sandbox: bwrap`, a working bwrap is found, and every `agent.writable` path exists
                   (harness.agent.sandbox)
    lint           with `gates.lint`, the lint command's program exists

`harness run`, `harness loop`, `harness verify` (through harness.iteration.execute) and the parallel
scheduler (before it takes an item's lease) call `preflight`; an error that still happens after the claim
is unwound by harness.iteration.execute.
"""
from __future__ import annotations

import os
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path

from harness.agent.presets import PRESETS
from harness.agent.prompt import AgentError, build_prompt_context, render_prompt
from harness.agent.run import agent_argv
from harness.agent.sandbox import check_sandbox
from harness.config import PYTHON_PLACEHOLDER, AgentConfig, Config
from harness.errors import HarnessError, SelectorError
from harness.gates.acceptance import check_acceptance
from harness.gates.lint import LintError
from harness.iteration.records import IterationRequest
from harness.ledger import INTEGRITY_KINDS, MUTATION_VALUES, Item
from harness.pytest_run.runner import parse_selector

SELECTOR_FIELDS = ("RED", "Regression", "Acceptance")


def preflight(request: IterationRequest, *, use_agent: bool) -> None:
    """Check what can be checked before the attempt is claimed (see the module docstring); HarnessError
    (exit 4) naming the fix otherwise. Reads files; starts nothing and writes nothing."""
    cfg, item, root = request.config, request.item, request.root
    check_item(request)
    if use_agent:
        check_agent(cfg, item, root, ledger_text=request.ledger.text if request.ledger else "")
    if cfg.gates.lint is not None:
        check_lint(cfg, root)


def check_item(request: IterationRequest) -> None:
    """The item's Allow, Mutation, selector and Acceptance fields can be honoured (HarnessError naming the
    field and its line otherwise)."""
    cfg, item = request.config, request.item
    unknown = [kind for kind in item.allow if kind not in INTEGRITY_KINDS]
    if unknown:
        raise HarnessError(f"item {item.id}: `Allow: {', '.join(item.allow)}` names {', '.join(unknown)}, which "
                           f"the integrity gate does not find; the kinds are {', '.join(INTEGRITY_KINDS)}")
    if item.mutation is not None and item.mutation not in MUTATION_VALUES:
        raise HarnessError(f"item {item.id}: `Mutation: {item.mutation}` is not one of {', '.join(MUTATION_VALUES)}")
    for name in SELECTOR_FIELDS:
        lines = item.field_lines.get(name, ())
        for index, raw in enumerate(item.fields.get(name, ())):
            if not raw:
                continue
            try:
                parse_selector(raw)
            except SelectorError as exc:
                where = f"{cfg.ledger}:{lines[index]}" if index < len(lines) else cfg.ledger
                raise SelectorError(f"{where}: item {item.id}, `- {name}:` {exc}") from None
    check_acceptance(cfg, item, request.root)


def program_problem(program: str, cwd: Path, env_path: str | None = None) -> str | None:
    """Why `program` (argv[0]) cannot be started in `cwd`, or None: a bare name is looked up on PATH (as
    the child would), a path (one with a `/`) is taken from `cwd` unless absolute."""
    if "/" not in program:
        if shutil.which(program, path=env_path if env_path is not None else os.environ.get("PATH")) is None:
            return f"{program!r} is not on PATH"
        return None
    path = Path(program) if os.path.isabs(program) else Path(cwd) / program
    if not path.is_file():
        return f"{path} does not exist"
    if not os.access(path, os.X_OK):
        return f"{path} is not executable (chmod +x it)"
    return None


@dataclass(frozen=True)
class ProgramProblem:
    """Why a configured program cannot start (`problem`), and what to do about it (`fix`)."""

    problem: str
    fix: str


def agent_program_problem(agent: AgentConfig, root: Path) -> ProgramProblem | None:
    """Why the agent's program (argv[0] of `agent.command` or of its preset) cannot start in `root`, or
    None; AgentError when no agent is configured. `harness doctor` reports the same."""
    argv, _ = agent_argv(agent, root / ".harness-preflight.prompt.md")
    problem = program_problem(argv[0], root)
    if problem is None:
        return None
    if agent.command_from_preset and agent.preset in PRESETS:
        preset = PRESETS[agent.preset]
        return ProgramProblem(f"{problem} (preset {preset.name})",
                              f"install it ({preset.install}) so that `{preset.program}` is on PATH, or set "
                              "`agent.command` in harness.yaml to the preset's argv with the program's full "
                              "path (it wins over the preset)")
    return ProgramProblem(problem, f"fix `agent.command` in harness.yaml ({list(agent.command or ())!r}): "
                                   "install the program, put it on PATH or give its full path")


def check_agent(cfg: Config, item: Item, root: Path, *, ledger_text: str) -> None:
    """The agent's program exists, its prompt renders for every phase the item will run, and its sandbox
    can be had."""
    cannot_start = agent_program_problem(cfg.agent, root)  # no agent command: AgentError
    if cannot_start:
        raise AgentError(f"the agent cannot start: {cannot_start.problem}; {cannot_start.fix}")
    mode = "tdd" if item.mode == "tdd" else "chore"
    for phase in tuple(cfg.agent.phases) if cfg.agent.phases else (None,):
        context = build_prompt_context(repo_root=root, item=item, ledger_text=ledger_text, phase=phase,
                                       ledger_path=cfg.ledger, evidence_root=cfg.evidence_root,
                                       findings_path=cfg.agent.findings)
        render_prompt(context, template_path=cfg.agent.prompt_template, mode=mode)
    check_sandbox(cfg.agent, root)


def check_lint(cfg: Config, root: Path) -> None:
    """The lint gate's program exists."""
    assert cfg.gates.lint is not None
    command = cfg.gates.lint.command
    if not command:
        raise LintError("`gates.lint.command` is empty; give an argv list such as [ruff, check, .]")
    problem = program_problem(command[0].replace(PYTHON_PLACEHOLDER, sys.executable), root)
    if problem:
        raise LintError(f"the lint gate cannot start: {problem}; fix `gates.lint.command` in harness.yaml "
                        f"({list(command)!r}): install the linter or give its full path, or set "
                        "`gates.lint: null`")
