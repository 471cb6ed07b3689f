"""Everything the report reads from a repository: the ledger, each attempt's evidence folder, the commits
that recorded them, the changes, and the selector registry and history.

Three steps: `gather` reads what every page needs before any evidence folder is read (the ledger, which
commits carry which evidence folder, which base commits exist); `attempt_facts` reads, for one chunk of
items (harness.webreport.item_pages), their evidence folders and their changes; `gather_selectors` reads
the selector registry and history.

Git is asked a fixed number of questions however large the ledger is (harness.gitops.lookups): one walk
for the recording commits, one persistent `cat-file` for the base commits, and per chunk of items (a
fixed number of chunks) one `git show` per 200 patches. The one exception is an attempt proven by
`harness verify`, whose change is `base..head`: that is one `git diff` per such attempt, remembered in
the `ReportCache` while `--serve` runs.

Which change an attempt shows: `base..head` when attempt.json names a verified head commit; else, for a
GREEN attempt, its recording commit (the change, the evidence and the ledger are one commit); else the ref
where a failed or aborted attempt's work was saved. The ledger and the evidence root are left out.
"""
from __future__ import annotations

import re
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

import git

from harness.errors import SelectorError
from harness.gitops import (
    CommitSummary,
    Patch,
    commit_summaries,
    existing_commits,
    head_sha,
    patches,
    range_patch,
    trailer_index,
)
from harness.ledger import Item, Ledger, load_ledger
from harness.selectors.history import History, load_history
from harness.selectors.registry import Registry, build_registry
from harness.webreport.evidence_files import Evidence, VerifyCache, read_evidence
from harness.webreport.model import AttemptFacts, PatchText
from harness.webreport.paths import forget_resolved
from harness.workspace import Workspace

EVIDENCE_TRAILER = "Harness-Evidence"
_FULL_SHA = re.compile(r"[0-9a-f]{40}|[0-9a-f]{64}")
_SAVED_REF = re.compile(r"refs/harness/(?:failed|aborted)/[A-Za-z0-9._/-]+")


@dataclass
class ReportCache:
    """What stays true between rebuilds of one `--serve`: checksums of unchanged folders, diffs of commits."""

    verify: VerifyCache = field(default_factory=VerifyCache)
    ranges: dict[tuple[str, str], Patch | None] = field(default_factory=dict)
    commits: dict[str, Patch] = field(default_factory=dict)  # by full sha: a commit never changes
    lock: threading.Lock = field(default_factory=threading.Lock)


@dataclass(frozen=True)
class Sources:
    """What the whole report needs before any evidence folder is read: the ledger and the git lookups that
    do not depend on the evidence (which commits carry which evidence folder, which base commits exist)."""

    root: Path
    ledger: Ledger
    ledger_rel: str
    head: str
    recorded_by: Mapping[str, tuple[str, ...]]  # evidence folder -> commits carrying it, newest first
    bases: frozenset[str]  # the attempts' base commits that exist in the repository
    exclude: tuple[str, ...]  # left out of every diff: the ledger and the evidence root


@dataclass(frozen=True)
class SelectorSources:
    registry: Registry
    history: History
    history_rel: str
    run_commits: Mapping[str, CommitSummary]
    problems: tuple[str, ...]  # what could not be read, shown on the selectors page


def _change_source(record: Mapping[str, Any] | None, outcome: str, recorded: tuple[str, ...]
                   ) -> tuple[str, str | None, str]:
    """(kind, revision, why not) of the change to show: kind is range, commit, saved or none."""
    record = record or {}
    head = record.get("head")
    if isinstance(head, str) and _FULL_SHA.fullmatch(head):
        return "range", head, ""
    if outcome == "GREEN":
        if recorded:
            return "commit", recorded[0], ""
        return "none", None, "no diff: the commit that recorded this attempt was not found"
    saved = record.get("saved_ref")
    if isinstance(saved, str) and _SAVED_REF.fullmatch(saved) and ".." not in saved:
        return "saved", saved, ""
    return "none", None, "no diff: the attempt's work was not saved on a ref"


def _patch_text(patch: Patch | None, caption: str) -> PatchText | None:
    return None if patch is None else PatchText(caption, patch.text, patch.files, patch.cut)


def gather(ws: Workspace) -> Sources:
    forget_resolved()
    ledger = load_ledger(ws.ledger_path)
    recorded_by = trailer_index(ws.repo, EVIDENCE_TRAILER)
    bases = existing_commits(ws.repo, (a.base_commit for item in ledger.items for a in item.attempts))
    return Sources(ws.root, ledger, ws.config.ledger, head_sha(ws.repo), recorded_by, bases,
                   (ws.config.ledger, ws.config.evidence_root))


def attempt_facts(repo: git.Repo, sources: Sources, items: Sequence[Item], cache: ReportCache | None
                  ) -> dict[str, dict[int, AttemptFacts]]:
    """Item id -> attempt line -> facts, for `items`: their evidence folders read and checked, and their
    changes fetched from `repo` (one `git show` per 200 patches of these items)."""
    verify_cache = cache.verify if cache is not None else None
    evidence: dict[int, Evidence] = {a.line: read_evidence(sources.root, a.evidence, cache=verify_cache)
                                     for item in items for a in item.attempts}
    exclude = list(sources.exclude)
    changes: dict[int, tuple[str, str | None, str]] = {}
    for item in items:
        for attempt in item.attempts:
            ev = evidence[attempt.line]
            recorded = sources.recorded_by.get(ev.folder or "", ())
            changes[attempt.line] = _change_source(ev.record, attempt.outcome, recorded)
    single = _patches(repo, cache, {rev for kind, rev, _ in changes.values() if kind in ("commit", "saved") and rev},
                      exclude)
    facts: dict[str, dict[int, AttemptFacts]] = {}
    for item in items:
        per_item = facts.setdefault(item.id, {})
        for attempt in item.attempts:
            ev = evidence[attempt.line]
            kind, rev, why_not = changes[attempt.line]
            patch: PatchText | None = None
            if kind == "range" and rev:
                found = _range(repo, cache, attempt.base_commit, rev, exclude)
                patch = _patch_text(found, f"Change {attempt.base_commit[:10]}..{rev[:10]} "
                                           "(the commits that harness verify proved)")
                why_not = "" if found else "no diff: the base or the verified commit is not in this repository"
            elif kind == "commit" and rev:
                patch = _patch_text(single.get(rev), f"Change in recording commit {rev[:10]} "
                                                     "(ledger and evidence left out)")
            elif kind == "saved" and rev:
                patch = _patch_text(single.get(rev), f"Change saved on {rev} (not committed)")
                why_not = "" if patch else f"no diff: {rev} no longer exists"
            per_item[attempt.line] = AttemptFacts(ev, attempt.base_commit in sources.bases,
                                                  sources.recorded_by.get(ev.folder or "", ()), patch, why_not)
    return facts


def gather_selectors(ws: Workspace, ledger: Ledger) -> SelectorSources:
    registry, problems = _registry(ledger, ws.config.selectors.extra)
    history_rel = PurePosixPath(ws.config.selectors.history).as_posix()
    try:
        history = load_history(ws.root / history_rel)
    except SelectorError as exc:
        history = History(ws.root / history_rel, (), ())
        problems += (str(exc),)
    run_commits = commit_summaries(ws.repo, (r.commit for r in history.records))
    return SelectorSources(registry, history, history_rel, run_commits, problems + history.problems)


def _registry(ledger: Ledger, extra) -> tuple[Registry, tuple[str, ...]]:
    try:
        return build_registry(ledger, extra), ()
    except SelectorError as exc:
        return Registry(()), (f"the selector registry cannot be built: {exc}",)


def _patches(repo: git.Repo, cache: ReportCache | None, revs: set[str], exclude: list[str]) -> dict[str, Patch]:
    known: dict[str, Patch] = {}
    if cache is not None:
        with cache.lock:
            known = {rev: cache.commits[rev] for rev in revs if rev in cache.commits}
    fresh = patches(repo, revs - known.keys(), exclude=exclude)
    if cache is not None:
        with cache.lock:
            cache.commits.update((rev, p) for rev, p in fresh.items() if _FULL_SHA.fullmatch(rev))
    return {**known, **fresh}


def _range(repo: git.Repo, cache: ReportCache | None, base: str, head: str, exclude: list[str]) -> Patch | None:
    key = (base, head)
    if cache is not None:
        with cache.lock:
            if key in cache.ranges:
                return cache.ranges[key]
    found = range_patch(repo, base, head, exclude=exclude)
    if cache is not None:
        with cache.lock:
            cache.ranges[key] = found
    return found
