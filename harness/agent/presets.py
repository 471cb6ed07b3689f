"""Agent presets: `agent: {preset: NAME}` in harness.yaml names one of the coding-agent CLIs below, and the
preset gives its non-interactive argv, how the prompt reaches it, a timeout and environment.

Each key harness.yaml sets itself beside a preset wins: `agent.command` replaces the preset's argv,
`agent.timeout_s` its timeout, and `agent.env` is laid over the preset's environment, variable by variable
(harness.config.load applies the preset). The prompt goes on stdin unless the argv holds `{prompt_file}`
(harness.agent.run). Nothing an agent prints is read as a claim of success: the harness proves RED and
GREEN itself afterwards. No preset sets a credential: each CLI reads its own login or API key as usual.

The flags are those each tool's own documentation gave when read on 2026-12-07 (`docs` names the page; the
README's "Agent presets" table shows the resulting argv). Tools change their flags: when one no longer
accepts a flag, give `agent.command` in harness.yaml (it wins over the preset) and report it.

    claude-code  `claude -p` (print mode: one non-interactive run; the prompt is read from stdin) with
                 `--dangerously-skip-permissions` (no permission prompts: in print mode an unapproved tool
                 call would otherwise be refused, and the agent must run the tests); env
                 CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC=1 (documented as DISABLE_AUTOUPDATER,
                 DISABLE_BUG_COMMAND, DISABLE_ERROR_REPORTING and DISABLE_TELEMETRY together: no update
                 mid-loop changes the agent between attempts).
    codex        `codex exec` (non-interactive; it asks for no approvals) with `--sandbox workspace-write`
                 (edits and commands inside the workspace; the removed `--full-auto` meant this),
                 `--color never` (the log is a file) and `-` (the prompt is read from stdin).
    aider        `--message-file {prompt_file}` (one message, then exit), `--yes-always` (no confirmation
                 prompts), `--no-auto-commits` and `--no-dirty-commits` (the harness makes the commit; an
                 agent commit would move HEAD under the proof), `--no-gitignore` (no edit to .gitignore in
                 the change), `--no-check-update`, `--no-show-release-notes`, `--no-analytics`, and
                 `--no-pretty` (no colour codes in the log). Aider keeps its chat history and tag cache in
                 `.aider*` files at the repository root: list `.aider*` in harness.yaml's `ignore`.
    gemini-cli   `gemini` with the prompt on stdin (headless: its stdin and stdout are pipes, not a
                 terminal) and `--approval-mode yolo` (every tool call approved; `--yolo` is deprecated).
                 With folder trust switched on, set `agent.env: {GEMINI_TRUST_WORKSPACE: "true"}`:
                 worktrees of parallel loops are new folders, never trusted before.
"""
from __future__ import annotations

import difflib
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType


@dataclass(frozen=True)
class AgentPreset:
    """One coding-agent CLI run unattended. `argv` holds `{prompt_file}` where the prompt goes by file;
    otherwise it goes on stdin. `flags`: (flag, what it does) as `docs` says; `install`: how to get it."""

    name: str
    argv: tuple[str, ...]
    timeout_s: int
    install: str
    docs: str
    flags: tuple[tuple[str, str], ...]
    env: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))

    @property
    def program(self) -> str:
        return self.argv[0]


PRESETS: Mapping[str, AgentPreset] = MappingProxyType({preset.name: preset for preset in (
    AgentPreset(
        name="claude-code",
        argv=("claude", "-p", "--dangerously-skip-permissions"),
        timeout_s=3600,
        env=MappingProxyType({"CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1"}),
        install="npm install -g @anthropic-ai/claude-code",
        docs="https://code.claude.com/docs/en/headless, /en/cli-reference and /en/env-vars",
        flags=(("-p", "print mode: run once without the interactive UI; piped stdin is the prompt"),
               ("--dangerously-skip-permissions", "skip every permission prompt"),
               ("CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC=1", "no auto-update, telemetry, error reports")),
    ),
    AgentPreset(
        name="codex",
        argv=("codex", "exec", "--sandbox", "workspace-write", "--color", "never", "-"),
        timeout_s=3600,
        install="npm install -g @openai/codex",
        docs="https://developers.openai.com/codex/noninteractive and `codex exec --help` "
             "(openai/codex codex-rs/exec/src/cli.rs)",
        flags=(("exec", "non-interactive mode: no approval prompts"),
               ("--sandbox workspace-write", "may edit files and run commands inside the workspace"),
               ("--color never", "no colour codes in the output"),
               ("-", "read the prompt from stdin")),
    ),
    AgentPreset(
        name="aider",
        argv=("aider", "--message-file", "{prompt_file}", "--yes-always", "--no-auto-commits",
              "--no-dirty-commits", "--no-gitignore", "--no-check-update", "--no-show-release-notes",
              "--no-analytics", "--no-pretty"),
        timeout_s=1800,  # one message and its edits (and aider's lint fix-ups), then it exits
        install="python -m pip install aider-install && aider-install",
        docs="https://aider.chat/docs/config/options.html and https://aider.chat/docs/scripting.html",
        flags=(("--message-file FILE", "send the file's text as one message, apply the edits, exit"),
               ("--yes-always", "say yes to every confirmation"),
               ("--no-auto-commits, --no-dirty-commits", "never commit: the harness commits"),
               ("--no-gitignore", "do not add .aider* to .gitignore"),
               ("--no-check-update, --no-show-release-notes, --no-analytics", "no update check, notes or analytics"),
               ("--no-pretty", "plain output")),
    ),
    AgentPreset(
        name="gemini-cli",
        argv=("gemini", "--approval-mode", "yolo"),
        timeout_s=3600,
        install="npm install -g @google/gemini-cli",
        docs="https://github.com/google-gemini/gemini-cli docs/cli/cli-reference.md, docs/cli/headless.md "
             "and docs/cli/trusted-folders.md",
        flags=(("(stdin)", "piped input is the prompt; headless when not run in a terminal"),
               ("--approval-mode yolo", "approve every tool call")),
    ),
)})


def unknown_preset_hint(name: str) -> str:
    """`; did you mean `X`?` for a misspelt preset name, or ''."""
    close = difflib.get_close_matches(name, list(PRESETS), n=1, cutoff=0.6)
    return f"; did you mean `{close[0]}`?" if close else ""
