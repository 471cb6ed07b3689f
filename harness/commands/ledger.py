"""`harness ledger [ITEM|lint|verify] [--json]`: review the ledger and check its evidence."""
from __future__ import annotations

import dataclasses
import gzip
import json
import zlib
from pathlib import Path

from harness.commands._console import print_table
from harness.durability.evidence import evidence_folder_of, verify_sha256sums
from harness.errors import ExitCode
from harness.gitops import commit_exists, find_commits_with_trailer
from harness.ledger import Item, Ledger, lint_text, read_ledger_text
from harness.workspace import Workspace, open_workspace


def _row(item: Item) -> dict:
    last = item.attempts[-1] if item.attempts else None
    return {
        "id": item.id, "title": item.title, "status": item.status, "status_reason": item.status_reason,
        "priority": item.priority, "depends_on": list(item.depends_on), "attempts": len(item.attempts),
        "last_outcome": last.outcome if last else None, "last_when": last.timestamp if last else None,
        "evidence": last.evidence if last else None,
    }


def _print_table(rows: list[dict]) -> None:
    headers = ("id", "status", "prio", "depends-on", "attempts", "last outcome", "when", "evidence")
    cells = [(r["id"], r["status"], str(r["priority"]), ",".join(r["depends_on"]) or "-", str(r["attempts"]),
              r["last_outcome"] or "-", r["last_when"] or "-", r["evidence"] or "-") for r in rows]
    print_table(headers, cells)


def _item_detail(ws: Workspace, ledger: Ledger, item_id: str) -> dict:
    item = ledger.get(item_id)
    detail = _row(item)
    detail.update({"initiative": item.initiative, "slug": item.slug, "mode": item.mode, "spec": item.spec,
                   "red": list(item.red), "regression": list(item.regression),
                   "exit_criteria": list(item.exit_criteria)})
    history = []
    for attempt in item.attempts:
        folder = evidence_folder_of(attempt.evidence)
        commits = find_commits_with_trailer(ws.repo, "Harness-Evidence", folder)
        history.append({"when": attempt.timestamp, "number": attempt.number, "outcome": attempt.outcome,
                         "base_commit": attempt.base_commit, "evidence": attempt.evidence,
                         "recorded_in": commits[0] if commits else None})
    detail["history"] = history
    detail["last_evidence"] = None
    if item.attempts:
        folder = evidence_folder_of(item.attempts[-1].evidence)
        record_path = next((p for p in (ws.root / folder / "attempt.json", ws.root / folder / "attempt.json.gz")
                            if p.is_file()), None)
        if record_path is not None:
            detail["last_evidence"] = _last_evidence(record_path, record_path.relative_to(ws.root).as_posix())
    return detail


def _last_evidence(path: Path, rel: str) -> dict:
    """What the last attempt's attempt.json says, or `problem`: why it cannot be read (path, reason)."""
    try:
        data = path.read_bytes()
        record = json.loads(gzip.decompress(data) if path.suffix == ".gz" else data)
    except (OSError, EOFError, zlib.error, ValueError) as exc:  # ValueError: not JSON, not UTF-8
        return {"problem": f"{rel} is unreadable: {exc}"}
    if not isinstance(record, dict):
        return {"problem": f"{rel} is unreadable: it holds no JSON object"}
    stages = record.get("stages")
    stages = [s for s in stages if isinstance(s, dict) and isinstance(s.get("name"), str)] \
        if isinstance(stages, list) else []
    return {"outcome": record.get("outcome"), "reason": record.get("reason"),
            "stages": {s["name"]: {"ok": bool(s.get("ok")),
                                   "counts": s["counts"] if isinstance(s.get("counts"), dict) else {}}
                       for s in stages},
            "problem": None}


def _print_detail(d: dict) -> None:
    print(f"[{d['id']}] {d['title']}")
    print(f"  status: {d['status']}{' (' + d['status_reason'] + ')' if d['status_reason'] else ''}"
          f" · priority {d['priority']} · mode {d['mode']} · depends on: {', '.join(d['depends_on']) or '-'}")
    print(f"  initiative: {d['initiative']} · slug: {d['slug']}" + (f" · spec: {d['spec']}" if d["spec"] else ""))
    for sel in d["red"]:
        print(f"  RED: {sel}")
    for sel in d["regression"]:
        print(f"  Regression: {sel}")
    print(f"  attempts ({len(d['history'])}):")
    for h in d["history"]:
        where = h["recorded_in"][:10] if h["recorded_in"] else "not found in history"
        print(f"    #{h['number']} {h['when']} {h['outcome']} · base {h['base_commit']} · recorded in {where}")
        print(f"       {h['evidence']}")
    last = d["last_evidence"]
    if last and last["problem"]:
        print(f"  last evidence: {last['problem']} (`harness ledger verify` checks it against its SHA256SUMS)")
    elif last:
        print(f"  last evidence: {last['outcome']}: {last['reason']}")
        for name, stage in last["stages"].items():
            counts = ", ".join(f"{n} {k}" for k, n in sorted(stage["counts"].items())) or "-"
            print(f"    {name}: {'ok' if stage['ok'] else 'FAILED'} ({counts})")


def verify_evidence(ws: Workspace, ledger: Ledger) -> list[str]:
    """Every attempt's evidence folder matches its SHA256SUMS and its commits exist."""
    problems: list[str] = []
    for item in ledger.items:
        for attempt in item.attempts:
            where = f"{item.id} #{attempt.number}"
            folder = evidence_folder_of(attempt.evidence)
            if not (ws.root / folder).is_dir():
                problems.append(f"{where}: evidence folder {folder} is missing")
                continue
            problems += [f"{where}: {p}" for p in verify_sha256sums(ws.root / folder)]
            if not commit_exists(ws.repo, attempt.base_commit):
                problems.append(f"{where}: base commit {attempt.base_commit} does not exist")
            if not find_commits_with_trailer(ws.repo, "Harness-Evidence", folder):
                problems.append(f"{where}: no commit carries `Harness-Evidence: {folder}` (not committed?)")
    return problems


def ledger(*, repo: Path, target: str | None = None, as_json: bool = False) -> int:
    ws = open_workspace(repo)
    if target == "lint":
        findings = lint_text(read_ledger_text(ws.ledger_path), ws.config.ledger, repo_root=ws.root)
        if as_json:
            print(json.dumps([dataclasses.asdict(f) for f in findings], indent=2))
        else:
            for f in findings:
                print(f.render(ws.config.ledger))
            print(f"{len(findings)} finding(s)" if findings else "ledger lint: no findings")
        return ExitCode.REFUSED if findings else ExitCode.OK
    ledger_ = ws.load_ledger()
    if target == "verify":
        problems = verify_evidence(ws, ledger_)
        attempts = sum(len(i.attempts) for i in ledger_.items)
        if as_json:
            print(json.dumps({"attempts": attempts, "problems": problems}, indent=2))
        else:
            for p in problems:
                print(f"problem: {p}")
            print(f"ledger verify: {attempts} attempt(s) checked, {len(problems)} problem(s)")
        return ExitCode.REFUSED if problems else ExitCode.OK
    if target:
        detail = _item_detail(ws, ledger_, target)
        print(json.dumps(detail, indent=2)) if as_json else _print_detail(detail)
        return 0
    rows = [_row(i) for i in ledger_.items]
    if as_json:
        print(json.dumps(rows, indent=2))
    elif not rows:
        print(f"{ws.config.ledger} holds no items yet")
    else:
        _print_table(rows)
    return 0
