"""The optional lint gate (`gates.lint.command`): a change must not add static-analysis findings.

The linter runs twice, at the base commit (in a worktree) and on the change; findings the base already
had are tolerated, as known test failures are. Findings are compared WITHOUT line numbers, as
(path, code, message) with counts, so code that merely moved is not new but a second identical finding
in the same file is.

Parsed output lines: `path:line:col: CODE message`, `path:line:col: message`, `path:line: message`
(flake8, ruff --output-format=concise, pyflakes, mypy, pylint's parseable format), and ruff's default
`CODE message` followed by ` --> path:line:col`.
"""
from __future__ import annotations

import os
import re
import sys
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from harness import proc
from harness.atomic import atomic_write_text
from harness.config import PYTHON_PLACEHOLDER
from harness.errors import HarnessError

_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
_LOCATED = re.compile(r"(?P<path>[^\s:][^:]*?):(?P<line>[0-9]+):(?:(?P<col>[0-9]+):)?[ \t]+(?P<rest>\S.*)")
_CODE = re.compile(r"(?P<code>[A-Z]+[0-9]+)(?:[ \t]+\[\*\])?(?:[ \t]+(?P<message>.*))?")
_RUFF_HEAD = re.compile(r"(?P<code>[A-Z]+[0-9]+)(?:[ \t]+\[\*\])?[ \t]+(?P<message>\S.*)")
_RUFF_ARROW = re.compile(r"[ \t]*-->[ \t]*(?P<path>[^\s:][^:]*?):(?P<line>[0-9]+)(?::(?P<col>[0-9]+))?[ \t]*")


class LintError(HarnessError):
    """The lint command cannot be started; the message says what to fix in harness.yaml."""


@dataclass(frozen=True)
class ToolFinding:
    """One finding as the linter printed it; `key` is what comparisons use (no line or column)."""

    path: str
    line: int
    col: int | None
    code: str
    message: str

    @property
    def key(self) -> tuple[str, str, str]:
        return (self.path, self.code, self.message)

    def describe(self) -> str:
        where = f"{self.path}:{self.line}" + (f":{self.col}" if self.col is not None else "")
        return f"{where}: {self.code + ' ' if self.code else ''}{self.message}"


@dataclass(frozen=True)
class LintRun:
    """One run of the lint command in `cwd`; `findings` in output order."""

    command: tuple[str, ...]
    cwd: Path
    exit_code: int
    timed_out: bool
    duration_s: float
    log_path: Path
    findings: tuple[ToolFinding, ...]

    @property
    def failed_to_run(self) -> bool:
        """Timed out, killed, or exited non-zero without printing a single finding (a crash or a usage
        error, not a verdict on the code)."""
        return self.timed_out or self.exit_code < 0 or (self.exit_code != 0 and not self.findings)

    def counts(self) -> Counter[tuple[str, str, str]]:
        return Counter(f.key for f in self.findings)


@dataclass(frozen=True)
class LintVerdict:
    ok: bool
    new_findings: tuple[ToolFinding, ...]
    fixed_findings: tuple[ToolFinding, ...]
    reason: str

    def summary(self) -> str:
        """Markdown for the evidence summary: the reason, then every new and fixed finding."""
        lines = [self.reason]
        if self.new_findings:
            lines += ["", "New findings:", *(f"- `{f.describe()}`" for f in self.new_findings)]
        if self.fixed_findings:
            lines += ["", "Fixed findings:", *(f"- `{f.describe()}`" for f in self.fixed_findings)]
        return "\n".join(lines)


def _normal_path(path: str, cwd: Path) -> str:
    """Repo-relative posix path, so the base worktree and the working tree name a file alike."""
    p = Path(path)
    if p.is_absolute():
        try:
            p = p.relative_to(cwd)
        except ValueError:
            try:
                p = p.resolve().relative_to(cwd.resolve())
            except (ValueError, OSError):
                return PurePosixPath(path).as_posix()
    return PurePosixPath(os.path.normpath(p.as_posix())).as_posix()


def parse_findings(output: str, cwd: Path) -> tuple[ToolFinding, ...]:
    """Findings in a linter's output; lines that are neither form (summaries, code excerpts) are skipped."""
    cwd = Path(cwd)
    findings = []
    lines = [_ANSI.sub("", line) for line in output.splitlines()]
    for i, line in enumerate(lines):
        if m := _LOCATED.fullmatch(line.rstrip()):
            rest = m["rest"].strip()
            code_match = _CODE.fullmatch(rest)
            code, message = (code_match["code"], (code_match["message"] or "").strip()) if code_match else (
                "", rest)
            col = int(m["col"]) if m["col"] else None
            findings.append(ToolFinding(_normal_path(m["path"], cwd), int(m["line"]), col, code, message))
            continue
        head = _RUFF_HEAD.fullmatch(line.rstrip())
        arrow = _RUFF_ARROW.fullmatch(lines[i + 1]) if head and i + 1 < len(lines) else None
        if head and arrow:
            col = int(arrow["col"]) if arrow["col"] else None
            findings.append(ToolFinding(_normal_path(arrow["path"], cwd), int(arrow["line"]), col,
                                        head["code"], head["message"].strip()))
    return tuple(findings)


def run_lint(command: Sequence[str], cwd: Path, log_path: Path, timeout_s: float,
             kill_grace_s: float = proc.KILL_GRACE_S) -> LintRun:
    """Run the lint command in `cwd` (its own process group; killed on timeout), keep its output in
    `log_path`, and parse the findings. `{python}` in the command is this interpreter."""
    if not command:
        raise LintError("`gates.lint.command` is empty; give an argv list such as [ruff, check, .]")
    argv = [part.replace(PYTHON_PLACEHOLDER, sys.executable) for part in command]
    cwd = Path(cwd)
    env = {**os.environ, "NO_COLOR": "1"}  # colour codes would break the line formats
    try:
        done = proc.run(argv, cwd=cwd, env=env, timeout_s=timeout_s, capture=True, kill_grace_s=kill_grace_s,
                        label="the linter")
    except proc.StartError as exc:
        if exc.not_found or not cwd.is_dir():
            raise LintError(f"the lint command {argv[0]!r} was not found (or {cwd} does not exist); check "
                            "`gates.lint.command` in harness.yaml: install the linter or give its full path"
                            ) from None
        raise LintError(f"the lint command {argv[0]!r} could not be started ({exc.reason}); check "
                        "`gates.lint.command` in harness.yaml") from None
    text = done.output or ""  # ends with proc's own notes (a timeout, processes it had to end)
    footer = f"\n[harness] exit {done.returncode} after {done.duration_s} s"
    atomic_write_text(Path(log_path), f"$ {' '.join(argv)}\n(in {cwd})\n\n{text}{footer}\n")
    return LintRun(tuple(argv), cwd, done.returncode, done.timed_out, done.duration_s, Path(log_path),
                   parse_findings(text, cwd))


def _surplus(findings: Sequence[ToolFinding], allowance: Counter[tuple[str, str, str]]) -> list[ToolFinding]:
    """Findings beyond what `allowance` covers, per key, the later occurrences first counted as extra."""
    left = Counter(allowance)
    extra = []
    for finding in findings:
        if left[finding.key] > 0:
            left[finding.key] -= 1
        else:
            extra.append(finding)
    return extra


def _listing(findings: Sequence[ToolFinding], limit: int = 5) -> str:
    shown = "; ".join(f.describe() for f in findings[:limit])
    return shown + (f"; and {len(findings) - limit} more" if len(findings) > limit else "")


def compare_lint(base: LintRun, head: LintRun) -> LintVerdict:
    """ok when the change adds no finding the base did not have (per file, code and message, counted)."""
    if head.failed_to_run:
        why = "timed out" if head.timed_out else f"exited {head.exit_code} without reporting findings"
        return LintVerdict(False, (), (), f"static analysis: the linter {why} on the change; see "
                           f"{head.log_path}")
    base_counts = Counter() if base.failed_to_run else base.counts()
    new = tuple(_surplus(head.findings, base_counts))
    fixed = tuple(_surplus(base.findings, head.counts())) if not base.failed_to_run else ()
    note = ""
    if base.failed_to_run:
        note = (f" (the base run {'timed out' if base.timed_out else f'exited {base.exit_code}'} without "
                "findings, so every finding counts as new)")
    if new:
        reason = f"static analysis: {len(new)} new finding(s){note}: {_listing(new)}"
    else:
        reason = "static analysis: no new findings" + (f" ({len(fixed)} fixed)" if fixed else "") + note
    return LintVerdict(not new, new, fixed, reason)


def lint_change(command: Sequence[str], *, base_cwd: Path, head_cwd: Path, out_dir: Path,
                timeout_s: float) -> tuple[LintRun, LintRun, LintVerdict]:
    """Run the linter at the base (a worktree of the base commit) and on the change, and compare."""
    base = run_lint(command, base_cwd, Path(out_dir) / "lint-base.log", timeout_s)
    head = run_lint(command, head_cwd, Path(out_dir) / "lint-head.log", timeout_s)
    return base, head, compare_lint(base, head)
