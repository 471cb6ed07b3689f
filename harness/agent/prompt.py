"""The agent's prompt: the context (item, spec excerpt, findings, selectors, previous attempt) and its
jinja2 template (a default per item mode ships with the package; `agent.prompt_template` overrides it)."""
from __future__ import annotations

import gzip
import json
import re
from collections.abc import Callable, Mapping
from pathlib import Path, PurePosixPath
from types import EllipsisType
from typing import Any

import jinja2

from harness.agent.markdown_sections import github_slug, headings, markdown_section, relevant_findings
from harness.errors import HarnessError
from harness.ledger import DEFAULT_LEDGER_PATH, Item
from harness.templating import TEMPLATES_DIR, environment

DEFAULT_TEMPLATES = {"tdd": "prompt.md.j2", "chore": "prompt_chore.md.j2", "docs": "prompt_chore.md.j2"}
PHASES = ("red", "green")
SPEC_MAX_CHARS = 12_000
FINDINGS_MAX_CHARS = 8_000
SUMMARY_MAX_CHARS = 6_000
# The held-out tests judge the agent's change; it is not told which ones they are.
HELD_OUT_FIELD = "Acceptance"



class AgentError(HarnessError):
    """The agent cannot be started, or its prompt cannot be rendered; the message says what to fix."""


def build_prompt_context(
    *,
    repo_root: Path,
    item: Item,
    ledger_text: str | None = None,
    findings_path: str | None = "docs/findings.md",
    previous_summary: str | None | EllipsisType = ...,
    phase: str | None = None,
    ledger_path: str = DEFAULT_LEDGER_PATH,
    evidence_root: str = "plans/active",
) -> dict[str, Any]:
    """Everything a prompt template may use, as plain data (the keys are documented in prompt.md.j2).

    `previous_summary`: `...` reads the summary of the item's last attempt from its evidence path; a string
    is used as that summary instead; None leaves the previous attempt out. `ledger_text` adds the item's
    section verbatim as `item_text`.
    """
    if phase is not None and phase not in PHASES:
        raise AgentError(f"agent phase {phase!r} is not one of {', '.join(PHASES)} (see `agent.phases`)")
    root = Path(repo_root)
    spec = _spec_context(root, item.spec)
    return {
        "repo_root": str(root),
        "item": _item_context(item),
        "item_text": _item_text(ledger_text, item) if ledger_text is not None else None,
        "mode": item.mode,
        "phase": phase,
        "attempt": item.next_attempt_number,
        "spec": spec,
        "findings": _findings_context(root, findings_path, item, spec) if findings_path else None,
        "selectors": {"red": list(item.red), "regression": list(item.regression)},
        "previous": _previous_context(root, item, previous_summary),
        "ledger_path": ledger_path,
        "evidence_root": evidence_root,
    }


def _item_context(item: Item) -> dict[str, Any]:
    return {
        "id": item.id, "title": item.title, "status": item.status, "priority": item.priority,
        "mode": item.mode, "initiative": item.initiative, "slug": item.slug, "spec": item.spec,
        "depends_on": list(item.depends_on), "red": list(item.red), "regression": list(item.regression),
        "exit_criteria": list(item.exit_criteria), "prose": item.prose,
        # pairs, not a dict: templates list the fields in the order they are written
        "fields": [(key, list(values)) for key, values in item.fields.items() if key != HELD_OUT_FIELD],
        "attempts": len(item.attempts),
    }


def _item_text(ledger_text: str, item: Item) -> str:
    lines = ledger_text.splitlines()
    end = item.attempts_line - 1 if item.attempts_line else item.content_end_line
    held_out = set(item.field_lines.get(HELD_OUT_FIELD, ()))
    return "\n".join(line for number, line in enumerate(lines[item.line - 1 : end], start=item.line)
                     if number not in held_out).rstrip()


def _inside(root: Path, rel: str) -> Path | None:
    """`root / rel` when `rel` is a repo-relative path that stays inside the repository, else None."""
    pure = PurePosixPath(rel)
    if not rel or pure.is_absolute() or ".." in pure.parts or "\\" in rel:
        return None
    return root / pure


def _read_text(path: Path) -> str:
    data = path.read_bytes()
    if path.suffix == ".gz":
        data = gzip.decompress(data)
    return data.decode("utf-8", errors="replace")


def _truncate(text: str, limit: int) -> tuple[str, int]:
    """(text cut at a line end near `limit`, characters left out)."""
    if len(text) <= limit:
        return text, 0
    cut = text.rfind("\n", 0, limit)
    if cut < limit // 2:
        cut = limit
    return text[:cut].rstrip(), len(text) - cut


def _spec_context(root: Path, spec: str | None) -> dict[str, Any] | None:
    if not spec:
        return None
    ref = spec.strip()
    path_text, _, anchor = ref.partition("#")
    info: dict[str, Any] = {"ref": ref, "path": path_text, "anchor": anchor or None, "excerpt": None,
                            "omitted_chars": 0, "problem": None, "is_file": False}
    if not path_text or "://" in ref or any(c.isspace() for c in path_text):
        info["problem"] = "the Spec field is not a file reference (path or path#anchor); no excerpt included"
        return info
    path = _inside(root, path_text)
    if path is None:
        info["problem"] = f"{path_text} is not a path inside the repository; no excerpt included"
        return info
    if not path.is_file():
        info["problem"] = f"the spec file {path_text} does not exist in the repository"
        return info
    info["is_file"] = True
    try:
        text = _read_text(path)
    except OSError as exc:
        info["problem"] = f"the spec file {path_text} cannot be read ({exc.strerror or exc})"
        return info
    if anchor:
        section = markdown_section(text, anchor)
        if section is None:
            anchors = [github_slug(h.title) for h in headings(text)][:20]
            info["problem"] = (f"{path_text} has no heading with anchor #{anchor}; its anchors are: "
                               + (", ".join(f"#{a}" for a in anchors) or "(none)"))
            return info
        text = section
    info["excerpt"], info["omitted_chars"] = _truncate(text.strip("\n"), SPEC_MAX_CHARS)
    return info


# --- findings ----------------------------------------------------------------------------------------


def _matcher(item: Item, spec: dict[str, Any] | None) -> Callable[[str], bool]:
    words = sorted({item.id, item.initiative}, key=len, reverse=True)
    # A word boundary that treats `-` and `.` inside ids as part of the id: DATA-1 must not match DATA-10.
    pattern = re.compile(
        "|".join(rf"(?<![\w])(?<![\w][-.]){re.escape(w)}(?![\w])(?![-.]\w)" for w in words), re.IGNORECASE)
    paths = []
    if spec is not None and spec["is_file"]:
        paths = [spec["path"], PurePosixPath(spec["path"]).name]
    return lambda text: bool(pattern.search(text)) or any(p in text for p in paths)


def _findings_context(root: Path, findings_path: str, item: Item, spec: dict[str, Any] | None
                      ) -> dict[str, Any]:
    info: dict[str, Any] = {"path": findings_path, "exists": False, "entries": [], "omitted": 0,
                            "problem": None}
    path = _inside(root, findings_path)
    if path is None or not path.is_file():
        return info
    info["exists"] = True
    try:
        text = _read_text(path)
    except OSError as exc:
        info["problem"] = f"{findings_path} cannot be read ({exc.strerror or exc})"
        return info
    entries = relevant_findings(text, _matcher(item, spec))
    budget = FINDINGS_MAX_CHARS
    for n, entry in enumerate(entries):
        if len(entry) > budget and info["entries"]:
            info["omitted"] = len(entries) - n
            break
        shown, omitted = _truncate(entry, budget)
        info["entries"].append(shown + (f"\n[... {omitted} more characters]" if omitted else ""))
        budget -= len(shown)
    return info


# --- previous attempt --------------------------------------------------------------------------------


def _first_existing(candidates: list[Path]) -> Path | None:
    for path in candidates:
        for variant in (path, path.with_name(path.name + ".gz")):
            if variant.is_file():
                return variant
    return None


def _previous_context(root: Path, item: Item, previous_summary: str | None | EllipsisType
                      ) -> dict[str, Any] | None:
    if previous_summary is None or not item.attempts:
        return None
    last = item.attempts[-1]
    info: dict[str, Any] = {
        "number": last.number, "timestamp": last.timestamp, "outcome": last.outcome,
        "succeeded": last.succeeded, "failed_stage": last.stage, "base_commit": last.base_commit,
        "evidence": last.evidence, "reason": None, "summary": None, "summary_path": None,
        "omitted_chars": 0, "problem": None,
    }
    path = _inside(root, last.evidence)
    if path is None:
        info["problem"] = f"its evidence path {last.evidence} is not inside the repository"
        return info
    # The ledger names `<evidence dir>/analysis/summary.md`; attempt.json sits in the evidence dir.
    if path.is_dir():
        folders = [path]
    else:
        folders = [path.parent, *([path.parent.parent] if path.parent.name == "analysis" else [])]
    record_path = _first_existing([f / "attempt.json" for f in folders])
    if record_path is not None:
        try:
            record = json.loads(_read_text(record_path))
        except (OSError, ValueError, EOFError) as exc:
            info["problem"] = f"{record_path.relative_to(root).as_posix()} cannot be read ({exc})"
        else:
            if isinstance(record, dict):
                info["reason"] = record.get("reason")
                info["failed_stage"] = record.get("failed_stage") or last.stage
    if isinstance(previous_summary, str):
        summary = previous_summary
    else:
        summary_path = _first_existing(
            ([path] if path.suffix == ".md" else []) + [f / "analysis" / "summary.md" for f in folders]
            + [f / "summary.md" for f in folders])
        if summary_path is None:
            if record_path is None:
                info["problem"] = f"its evidence {last.evidence} is not in the working tree"
            return info
        info["summary_path"] = summary_path.relative_to(root).as_posix()
        try:
            summary = _read_text(summary_path)
        except (OSError, EOFError) as exc:
            info["problem"] = f"{info['summary_path']} cannot be read ({exc})"
            return info
    info["summary"], info["omitted_chars"] = _truncate(summary.strip("\n"), SUMMARY_MAX_CHARS)
    return info


# --- rendering ---------------------------------------------------------------------------------------


def render_prompt(context: Mapping[str, Any], *, template_path: Path | str | None = None,
                  mode: str = "tdd", builtin: str | None = None, setting: str = "agent.prompt_template") -> str:
    """Render the prompt: the built-in template for `mode` (or the built-in named `builtin`), or
    `template_path` (the harness.yaml key `setting`, relative to the repository root unless absolute)."""
    if template_path is None:
        if builtin is None and mode not in DEFAULT_TEMPLATES:
            raise AgentError(f"no built-in prompt for Mode {mode!r} (known: {', '.join(DEFAULT_TEMPLATES)})")
        folder, name = TEMPLATES_DIR, builtin or DEFAULT_TEMPLATES[mode]
        label = f"built-in prompt template {name}"
    else:
        path = Path(template_path)
        if not path.is_absolute():
            path = Path(context["repo_root"]) / path
        if not path.is_file():
            raise AgentError(f"prompt template {path} does not exist; fix `{setting}` in "
                             "harness.yaml (a path relative to the repository root), or set it to null for "
                             "the built-in prompt")
        folder, name = path.parent, path.name
        label = f"prompt template {path} ({setting})"
    try:
        return environment(str(folder)).get_template(name).render(**context)
    except jinja2.UndefinedError as exc:
        raise AgentError(f"{label}: {exc.message}; the prompt context has: {', '.join(sorted(context))}"
                         ) from None
    except jinja2.TemplateSyntaxError as exc:
        raise AgentError(f"{label}, line {exc.lineno}: {exc.message}") from None
    except jinja2.TemplateError as exc:
        raise AgentError(f"{label}: {exc}") from None


