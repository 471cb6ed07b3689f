"""Recover from a harness that died mid-iteration (kill -9, power loss): nothing is lost, nothing of the dead
attempt is left uncommitted.

Called at every start while holding the repository lock, so the journal's writer is certainly gone. In
order: the recorded agent process group is ended; the files the attempt set aside (the ones the commit
leaves out) are put back; if the attempt's recording commit exists it had finished and nothing more is
done. Otherwise the harness's uncommitted write to the ledger is taken out (the person's own uncommitted
ledger edits stay: harness.durability.set_aside), the dead attempt's evidence folder is removed, its work
(every change a commit would hold) is saved on `refs/harness/aborted/<ITEM>/<n>` and taken out of the
tree, and the attempt is recorded as `ABORTED at <stage>` in one commit holding its evidence and the
ledger (with the person's edits, as every attempt's commit does). Left in the tree as they are: the
files the commit leaves out (`ignore` rules, the size cap; they are on the ref too) and edits of the
other harness-owned files (the selector history, other evidence folders), which no attempt touches.
"""
from __future__ import annotations

import shutil
from dataclasses import dataclass
from typing import Any

from harness.atomic import atomic_write_json, atomic_write_text
from harness.clock import iso, utc_now
from harness.durability.evidence import write_sha256sums
from harness.durability.journal import Journal
from harness.durability.set_aside import put_back, put_back_ledger
from harness.gitops import (
    commit_paths,
    discard_changes,
    find_commits_with_trailer,
    prune_stale_worktrees,
    snapshot_to_ref,
    working_changes,
)
from harness.ledger import load_ledger, with_attempt
from harness.proc import kill_process_group
from harness.proof.changes import work_to_commit
from harness.workspace import Workspace


@dataclass(frozen=True)
class Recovery:
    item_id: str
    attempt: int
    stage: str
    saved_ref: str | None
    commit: str | None
    agent: str | None
    notes: tuple[str, ...] = ()  # what the user should know or do (files put back, a ledger left as is)

    def describe(self) -> str:
        text = f"recovered an interrupted attempt: [{self.item_id}] #{self.attempt}, aborted at {self.stage}"
        if self.agent:
            text += f"; its agent process group was {self.agent}"
        if self.saved_ref:
            text += f"; its work is saved on {self.saved_ref}"
        return text + "".join(f"; {note}" for note in self.notes)


def _clean_staging(ws: Workspace) -> None:
    shutil.rmtree(ws.git_dir / "harness" / "staging", ignore_errors=True)


def put_back_note(paths: tuple[str, ...]) -> tuple[str, ...]:
    """The recovery note for files left out of the commit that were set aside and are back in the tree."""
    if not paths:
        return ()
    return (f"put back the file(s) left out of the commit that it had set aside: {', '.join(paths)}",)


def recover(ws: Workspace) -> Recovery | None:
    """If a journal is left behind, record the attempt as aborted and take its work out of the tree."""
    journal = Journal(ws.git_dir)
    entry = journal.load()
    prune_stale_worktrees(ws.repo)
    if entry is None:
        journal.clear()  # copies of an attempt that never began
        _clean_staging(ws)
        return None
    cfg = ws.config
    item_id, attempt, stage = entry.get("item"), int(entry.get("attempt", 0)), entry.get("stage", "begin")
    evidence_rel = entry.get("evidence_dir")
    agent = None
    if entry.get("agent_pgid"):
        agent = f"{entry['agent_pgid']} ({kill_process_group(int(entry['agent_pgid']))})"
    notes = put_back_note(put_back(journal, entry))
    if evidence_rel and find_commits_with_trailer(ws.repo, "Harness-Evidence", evidence_rel):
        journal.clear()  # died after its commit: nothing to recover
        _clean_staging(ws)
        return None

    ledger_note = put_back_ledger(ws.repo, journal, ws.ledger_path, entry)
    notes += (ledger_note,) if ledger_note else ()
    if evidence_rel and (ws.root / evidence_rel).exists():
        shutil.rmtree(ws.root / evidence_rel)  # uncommitted evidence of the dead run; rewritten below
    saved_ref = entry.get("saved_ref")
    work = work_to_commit(working_changes(ws.repo), cfg)
    if work and entry.get("head", "working tree") == "working tree":
        saved_ref = f"refs/harness/aborted/{item_id}/{attempt}"
        snapshot_to_ref(ws.repo, saved_ref, f"[{item_id}] attempt {attempt}: work saved after an interrupted "
                        f"run (aborted at {stage})", identity=cfg.commit.identity)
        journal.update(saved_ref=saved_ref)  # a recovery stopped below (a broken ledger) keeps the ref
        discard_changes(ws.repo, work)

    commit = record_aborted(ws, entry, stage=stage, saved_ref=saved_ref, agent=agent)
    journal.clear()
    _clean_staging(ws)
    return Recovery(item_id, attempt, stage, saved_ref, commit, agent, notes)


def record_aborted(ws: Workspace, entry: dict[str, Any], *, stage: str, saved_ref: str | None,
                   agent: str | None, reason: str | None = None) -> str | None:
    """Write the ABORTED evidence of the journal `entry`'s attempt, its ledger line and their commit.

    The tree must hold no uncommitted evidence or ledger edit of that attempt (the caller took them out).
    `reason` replaces the default "the harness stopped ..." (a parallel worker that ended with an error).
    Returns the commit, or None when the item is no longer in the ledger."""
    cfg = ws.config
    item_id, attempt = entry.get("item"), int(entry.get("attempt", 0))
    evidence_rel = entry.get("evidence_dir")
    now = utc_now()
    folder = ws.root / (evidence_rel or f"{cfg.evidence_root}/{item_id}/reports/aborted-{attempt}")
    folder.mkdir(parents=True, exist_ok=True)
    record = {"schema": 1, "item": {"id": item_id}, "attempt": attempt, "outcome": "ABORTED",
              "failed_stage": stage, "started": entry.get("started"), "recovered": iso(now),
              "base_commit": entry.get("base"), "saved_ref": saved_ref, "agent_process_group": agent,
              "reason": reason or f"the harness stopped during stage {stage} (killed or crashed) and was "
                                  f"recovered at the next start"}
    atomic_write_json(folder / "attempt.json", record)
    atomic_write_text(folder / "analysis" / "summary.md",
                      f"# [{item_id}] attempt #{attempt}: ABORTED at {stage}\n\n{record['reason']}.\n\n"
                      f"- started: {record['started']}\n- recovered: {record['recovered']}\n"
                      f"- base commit: `{record['base_commit']}`\n"
                      f"- work saved on: {'`' + saved_ref + '`' if saved_ref else 'nothing to save'}\n"
                      f"- agent process group: {agent or 'none recorded'}\n")
    write_sha256sums(folder)
    rel = folder.relative_to(ws.root).as_posix()
    ledger = load_ledger(ws.ledger_path)
    if item_id in ledger.ids():
        number = max(attempt, ledger.get(item_id).next_attempt_number)
        text = with_attempt(ledger.text, item_id, timestamp=entry.get("started") or iso(now), number=number,
                            outcome=f"ABORTED at {stage}", base_commit=str(entry.get("base", ""))[:10],
                            evidence=f"{rel}/analysis/summary.md")
        atomic_write_text(ws.ledger_path, text)
        files = sorted(p.relative_to(ws.root).as_posix() for p in folder.rglob("*") if p.is_file())
        trailers = [("Harness-Item", item_id), ("Harness-Evidence", rel), ("Harness-Red", "not completed"),
                    ("Harness-Green", "not completed")]
        if saved_ref:
            trailers.append(("Harness-Saved-Ref", saved_ref))
        return commit_paths(ws.repo, [cfg.ledger, *files], f"[{item_id}] attempt {attempt}: ABORTED at {stage}",
                            identity=cfg.commit.identity, trailers=trailers)
    return None
