"""Local commits replayed onto a remote's head and proven there before they are pushed.

A push rejected because the remote branch has commits this branch lacks (harness.durability.push) comes
here. The commits that are only here are replayed, oldest first, onto the remote's head in the object store
(gitops.replay_tree: what `git cherry-pick` computes; no checkout, no branch moves). Each replayed commit
that claims a proof, a GREEN attempt (trailers `Harness-Item`, `Harness-Red` and `Harness-Green`, and an
attempt.json in its `Harness-Evidence` folder whose outcome is GREEN), is proven again on its new tree by
the gates the merge queue runs on a merged tree (harness.proof.tree_gates, with the item's selectors as the
attempt recorded them): its RED selectors pass, its Regression selectors pass, the full suite fails only on
known failures. Where only harness-owned files differ from the tree it was proven on, the gates are not run
twice and the record says so.

The re-proof's evidence is a folder beside the attempt's, `<attempt folder>-reproof/` (reproof.json and the
gates' pytest files, sealed by a SHA256SUMS of its own; the attempt's sealed folder is left as it is),
replaced at each re-proof and committed with the replayed commit, which gains the trailers
`Harness-Reproven-Onto: <remote head>` and `Harness-Reproof-Evidence: <folder>`. Commits that claim no proof
(failed and aborted attempts, block commits, commits made by hand) are replayed as they are.

The answer is a chain of commits no ref points to (`Replayed`), or the first reason it must not be pushed
(`Refused`: a merge commit, a conflict, a proof that cannot be read, a gate that failed, with the failed
re-proof's evidence kept in `<common git dir>/harness/failed_reproof/`). Nothing moves either way.
"""
from __future__ import annotations

import gzip
import json
import shutil
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from harness import __version__
from harness.atomic import atomic_write_json
from harness.clock import iso, utc_now
from harness.config import judging_settings
from harness.durability.evidence import (
    compress_large_files,
    machine_prefixes,
    redact_machine_paths,
    write_sha256sums,
)
from harness.errors import HarnessError
from harness.gitops import (
    blob_bytes,
    commit_message,
    commit_tree,
    commits_between,
    common_git_dir,
    parents_of,
    replay_tree,
    rewrite_commit,
    trailers_of,
    tree_with_folder,
)
from harness.iteration.attempt_record import stage_dict
from harness.proof.stage_records import StageResult
from harness.proof.tree_gates import ProvenClaim, code_moved, gates_on_commit, gates_stage
from harness.pytest_run.runner import PytestSettings
from harness.workspace import Workspace

REPROOF = "reproof"
ONTO_TRAILER = "Harness-Reproven-Onto"
EVIDENCE_TRAILER = "Harness-Reproof-Evidence"
FOLDER_SUFFIX = "-reproof"
FAILED_FOLDER = "failed_reproof"
_CLAIM_TRAILERS = ("Harness-Item", "Harness-Red", "Harness-Green")


@dataclass(frozen=True)
class Refused:
    """Why the replayed commits must not be pushed: the local `commit` (and its item, when it claims a
    proof), the `gate` that stopped it (`merge commit`, `conflict`, `proof unreadable`, or the failed gate:
    `green`, `regression`, `full_suite`), the remote head `onto`, the reason, and where the failed re-proof's
    evidence is kept (None when no gate ran)."""

    commit: str
    item: str | None
    gate: str
    onto: str
    reason: str
    evidence: str | None = None

    def as_record(self) -> dict[str, str | None]:
        return {"commit": self.commit, "item": self.item, "gate": self.gate, "onto": self.onto,
                "reason": self.reason, "evidence": self.evidence}


@dataclass(frozen=True)
class Replayed:
    """The last of the replayed commits (`head`, no ref points to it yet), how many were replayed, and the
    items whose proof holds on the new trees (re-run, or unchanged code)."""

    head: str
    commits: int
    reproven: tuple[str, ...]


@dataclass(frozen=True)
class _Claim:
    item: str
    folder: str  # the attempt's evidence folder, repo-relative
    proven: ProvenClaim


def replay_and_reprove(ws: Workspace, onto: str, *,
                       progress: Callable[[str], None] = lambda _: None) -> Replayed | Refused:
    """Replay the commits of HEAD that `onto` lacks onto `onto`, proving each GREEN attempt among them
    again on its new tree; the first refusal stops. Raises HarnessError only for a broken repository."""
    repo, identity = ws.repo, ws.config.commit.identity
    parent, reproven = onto, []
    local = commits_between(repo, onto, "HEAD")[::-1]
    for sha in local:
        if len(parents_of(repo, sha)) != 1:
            return Refused(sha, None, "merge commit", onto, f"{sha[:10]} is a merge commit; the harness replays "
                           "only commits with one parent")
        claim = _claim_of(ws, sha)
        item = claim.item if isinstance(claim, _Claim) else None
        if isinstance(claim, str):
            return Refused(sha, None, "proof unreadable", onto, claim)
        merged = replay_tree(repo, sha, parent, identity=identity)
        if merged.tree is None:
            shown = ", ".join(merged.conflicts[:8]) + (" ..." if len(merged.conflicts) > 8 else "")
            return Refused(sha, item, "conflict", onto, f"replaying {sha[:10]} onto {onto[:10]} conflicts in "
                           f"{shown}")
        message = commit_message(repo, sha)
        if claim is None:
            parent = rewrite_commit(repo, sha, merged.tree, parent, message, identity=identity)
            continue
        progress(f"re-proving {sha[:10]} [{claim.item}] on {onto[:10]}, the remote's head ...")
        candidate = commit_tree(repo, merged.tree, parent, message, identity=identity)
        outcome = _reprove(ws, sha, candidate, onto, claim)
        if isinstance(outcome, Refused):
            return outcome
        folder = claim.folder + FOLDER_SUFFIX
        try:
            tree = tree_with_folder(repo, candidate, folder, outcome)
        finally:
            shutil.rmtree(outcome, ignore_errors=True)
        parent = rewrite_commit(repo, sha, tree, parent, _with_reproof_trailers(message, onto, folder),
                                identity=identity)
        reproven.append(claim.item)
    return Replayed(parent, len(local), tuple(reproven))


def _claim_of(ws: Workspace, sha: str) -> _Claim | str | None:
    """The proof commit `sha` claims (None: it claims none), or why the claim cannot be read."""
    trailers = trailers_of(ws.repo, sha)
    if not all(trailers.get(key) for key in _CLAIM_TRAILERS) or trailers["Harness-Green"][-1] == "not completed":
        return None  # not an attempt's record, or an aborted one
    item = trailers["Harness-Item"][-1]
    folders = trailers.get("Harness-Evidence")
    if not folders:
        return (f"{sha[:10]} carries Harness-Red and Harness-Green trailers for [{item}] but names no "
                "Harness-Evidence folder, so what it proved cannot be read")
    folder = folders[-1].rstrip("/")
    raw = blob_bytes(ws.repo, sha, f"{folder}/attempt.json")
    if raw is None and (packed := blob_bytes(ws.repo, sha, f"{folder}/attempt.json.gz")) is not None:
        raw = gzip.decompress(packed)
    unknown = "so what it proved is unknown"
    if raw is None:
        return f"{sha[:10]} records an attempt of [{item}] but has no {folder}/attempt.json, {unknown}"
    try:
        record = json.loads(raw)
        if not isinstance(record, dict):
            raise TypeError("not a JSON object")
        if record.get("outcome") != "GREEN":
            return None
        facts = record["item"]
        proven = ProvenClaim.of(facts["red"], facts["regression"], facts["mode"])
    except (ValueError, KeyError, TypeError, HarnessError) as exc:
        return f"{sha[:10]} records an attempt of [{item}] but its {folder}/attempt.json cannot be read ({exc}), {unknown}"
    return _Claim(item, folder, proven)


def _reprove(ws: Workspace, original: str, candidate: str, onto: str, claim: _Claim) -> Path | Refused:
    """The gates on `candidate` (commit `original` replayed onto `onto`): the sealed evidence folder to
    commit when they hold, else the refusal (its evidence moved to the failed-re-proof folder)."""
    # under the harness.yaml of the head it lands on, as the merge queue's gates (harness.config.judging)
    cfg, git_dir = judging_settings(ws.repo, onto, ws.config).config, common_git_dir(ws.repo)
    parent = git_dir / "harness" / "staging"
    parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f"reproof-{claim.item}-", dir=parent))
    started_at, started = utc_now(), time.monotonic()
    moved = code_moved(ws.repo, cfg, original, candidate)
    parts: tuple[StageResult, ...] = ()
    if moved:
        pytest = PytestSettings.from_config(cfg).isolated_from(ws.root)
        parts = gates_on_commit(ws.repo, candidate, config=cfg, claim=claim.proven, out_dir=staging,
                                pytest=pytest)
        where = (f"on {original[:10]} replayed onto the remote's head {onto[:10]} ({len(moved)} path(s) differ "
                 f"from the tree it was proven on)")
        stage = gates_stage(REPROOF, parts, where, started)
    else:
        stage = StageResult(REPROOF, True, f"{REPROOF}: not run again: {original[:10]} replayed onto "
                            f"{onto[:10]} differs from the tree it was proven on only in harness-owned files",
                            skipped=True)
    failed = next((p for p in parts if not p.ok), None)
    atomic_write_json(staging / "reproof.json", {
        "schema": 1, "harness_version": __version__, "item": claim.item, "attempt_evidence": claim.folder,
        "commit": original, "onto": onto, "replayed_tree": candidate, "ok": stage.ok, "skipped": stage.skipped,
        "failed_gate": failed.name if failed else None, "reason": stage.reason, "paths_differing": moved,
        "started": iso(started_at), "finished": iso(utc_now()),
        "stages": [stage_dict(p, staging) for p in parts],
    })
    redact_machine_paths(staging, machine_prefixes(ws.root))
    compress_large_files(staging, cfg.caps.evidence_file_bytes)
    write_sha256sums(staging)
    if failed is None:
        return staging
    kept = git_dir / "harness" / FAILED_FOLDER
    shutil.rmtree(kept, ignore_errors=True)
    shutil.move(staging, kept)
    return Refused(original, claim.item, failed.name, onto, stage.reason, str(kept))


def _with_reproof_trailers(message: str, onto: str, folder: str) -> str:
    """`message` whose trailer block names this re-proof (an earlier re-proof's trailers are replaced)."""
    keys = (f"{ONTO_TRAILER}:", f"{EVIDENCE_TRAILER}:")
    kept = [line for line in message.rstrip("\n").splitlines() if not line.startswith(keys)]
    return "\n".join([*kept, f"{ONTO_TRAILER}: {onto}", f"{EVIDENCE_TRAILER}: {folder}"]) + "\n"
