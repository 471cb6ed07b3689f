"""The planner's prompt: the ledger (a list of its items and the file), the findings, the last attempts
with the reasons the harness measured, the goal, and where the proposal goes. The built-in template is
harness/templates/plan_prompt.md.j2; `planner.prompt_template` overrides it (same context)."""
from __future__ import annotations

import gzip
import json
import zlib
from collections import Counter
from pathlib import Path, PurePosixPath
from typing import Any

from harness.agent.planner.checks import EDITABLE_STATUSES
from harness.agent.prompt import render_prompt
from harness.config import Config
from harness.durability.evidence import evidence_folder_of
from harness.ledger import Ledger

BUILTIN_TEMPLATE = "plan_prompt.md.j2"
LEDGER_MAX_CHARS = 30_000
FINDINGS_MAX_CHARS = 12_000
ITEMS_MAX = 300
RECENT_ATTEMPTS = 10


def build_plan_context(*, repo_root: Path, config: Config, ledger: Ledger, plan_file: Path,
                       goal: str | None) -> dict[str, Any]:
    """Everything the planner's template may use, as plain data (the keys are listed in plan_prompt.md.j2)."""
    root = Path(repo_root)
    # Done items go last and are the ones cut: the planner plans from what is still open.
    ordered = sorted(ledger.items, key=lambda item: item.status == "done")
    items = [{"id": i.id, "title": i.title, "status": i.status, "status_reason": i.status_reason,
              "priority": i.priority, "mode": i.mode, "depends_on": list(i.depends_on),
              "attempts": len(i.attempts), "last_outcome": i.attempts[-1].outcome if i.attempts else None,
              "editable": i.status in EDITABLE_STATUSES} for i in ordered[:ITEMS_MAX]]
    ledger_text, ledger_omitted = _cut(ledger.text.rstrip("\n"), LEDGER_MAX_CHARS)
    return {
        "repo_root": str(root), "ledger_path": config.ledger, "plan_file": str(plan_file), "goal": goal,
        "items": items, "items_omitted": max(0, len(ordered) - ITEMS_MAX),
        "counts": dict(Counter(i.status for i in ledger.items)),
        "ledger_text": ledger_text, "ledger_omitted_chars": ledger_omitted,
        "findings": _findings(root, config.agent.findings),
        "recent_attempts": _recent_attempts(root, ledger),
        "require_acceptance": bool(config.planner and config.planner.require_acceptance),
        "test_globs": list(config.test_globs), "editable_statuses": list(EDITABLE_STATUSES),
    }


def render_plan_prompt(context: dict[str, Any], template_path: str | None) -> str:
    """The prompt from the built-in template, or from `planner.prompt_template` (AgentError naming it)."""
    return render_prompt(context, template_path=template_path, builtin=BUILTIN_TEMPLATE,
                         setting="planner.prompt_template")


def _cut(text: str, limit: int) -> tuple[str, int]:
    if len(text) <= limit:
        return text, 0
    cut = text.rfind("\n", 0, limit)
    cut = cut if cut > limit // 2 else limit
    return text[:cut], len(text) - cut


def _inside(root: Path, rel: str) -> Path | None:
    pure = PurePosixPath(rel)
    if not rel or pure.is_absolute() or ".." in pure.parts or "\\" in rel:
        return None
    return root / pure


def _findings(root: Path, rel: str | None) -> dict[str, Any] | None:
    path = _inside(root, rel) if rel else None
    if path is None or not path.is_file():
        return None
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return None
    shown, omitted = _cut(text.strip("\n"), FINDINGS_MAX_CHARS)
    return {"path": rel, "text": shown, "omitted_chars": omitted}


def _recent_attempts(root: Path, ledger: Ledger) -> list[dict[str, Any]]:
    """The last attempts across the ledger, newest first, each with the reason its attempt.json gives."""
    attempts = sorted(((a, item) for item in ledger.items for a in item.attempts),
                      key=lambda pair: pair[0].timestamp, reverse=True)[:RECENT_ATTEMPTS]
    return [{"item": item.id, "title": item.title, "number": a.number, "timestamp": a.timestamp,
             "outcome": a.outcome, "evidence": a.evidence, "reason": _reason(root, a.evidence)}
            for a, item in attempts]


def _reason(root: Path, evidence: str) -> str | None:
    folder = _inside(root, evidence_folder_of(evidence))
    if folder is None:
        return None
    for path in (folder / "attempt.json", folder / "attempt.json.gz"):
        if not path.is_file():
            continue
        try:
            data = path.read_bytes()
            record = json.loads(gzip.decompress(data) if path.suffix == ".gz" else data)
        except (OSError, EOFError, zlib.error, ValueError):
            return None
        reason = record.get("reason") if isinstance(record, dict) else None
        return reason if isinstance(reason, str) else None
    return None
