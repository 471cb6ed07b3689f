"""Push the branch after each commit (`push: {remote, branch}` in harness.yaml), never publishing a proof on
a tree it was not made on.

The refspec is explicit (`<sha>:refs/heads/<branch>`), so what is pushed never depends on upstream
settings. A push the remote rejects because its branch has commits this one lacks is not rebased blindly:
the remote branch is fetched, the local commits are replayed onto its head and every GREEN attempt among
them is proven again on its new tree (harness.durability.reproof). Only when all of them hold does the
branch move onto the replayed commits (the working tree must be clean, as it is under the lock after an
iteration), and they are pushed by compare-and-swap on the head they were proven against
(`--force-with-lease=refs/heads/<branch>:<sha>`). If the remote moved again meanwhile, the round repeats, at
most MAX_ROUNDS times.

A conflict, a failed gate, a dirty working tree or a push that fails for another reason (the network)
leaves the remote as it was and the commits here, and records the push as pending in
`<common git dir>/harness/pending_push.json`, with which commit failed which gate on which remote head.
Every command that takes the repository lock retries it when it starts (`retry_pending`, called by
harness.commands._shared.repo_lock through harness.parallel.remote.held.retry_pending_held), by the same
rules. A push that was to give remote leases back (several machines on one remote) records them as
pending too (`leases`: ref and commit), and its retry gives them back in the same atomic push.
"""
from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import git

from harness.atomic import atomic_write_json
from harness.clock import iso, utc_now
from harness.config import PushConfig
from harness.durability.reproof import Refused, Replayed, replay_and_reprove
from harness.errors import HarnessError
from harness.gitops import (
    GIT_TIMEOUT_S,
    GitAnswer,
    commits_between,
    common_git_dir,
    fetch_branch,
    head_sha,
    is_ancestor,
    is_clean,
    move_head,
    parents_of,
    push_ref,
    push_ref_cas,
    push_refs_cas,
)
from harness.workspace import Workspace

PENDING_NAME = "pending_push.json"
MAX_ROUNDS = 3  # fetch, replay, re-prove, push: how often before a remote that keeps moving is left pending


@dataclass(frozen=True)
class PushResult:
    """`attempts`: pushes tried; `rebased`: the branch moved onto commits replayed onto the remote's head;
    `refused`: the replayed commit, gate and remote head that stopped the push, when one did."""

    ok: bool
    attempts: int
    rebased: bool
    message: str
    refused: Refused | None = None
    lease_lost: bool = False  # the lease given back in the same atomic push was no longer this holder's


def pending_path(repo: git.Repo) -> Path:
    return common_git_dir(repo) / "harness" / PENDING_NAME


def load_pending(repo: git.Repo) -> dict | None:
    """The recorded pending push, or None. An unreadable record counts as pending (it is retried)."""
    path = pending_path(repo)
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, ValueError):
        return {"unreadable": str(path)}
    return record if isinstance(record, dict) else {"unreadable": str(path)}


def _rejected(output: str) -> bool:
    """A plain push refused because the remote branch has commits this one lacks (--porcelain marks a
    refused ref with "!" and names why: stable to parse, unlike the human text)."""
    return any(line.startswith("!") and "[rejected]" in line and ("non-fast-forward" in line or "fetch first" in line)
               for line in output.splitlines())


def _refused_by_lease(output: str) -> bool:
    return any(line.startswith("!") for line in output.splitlines())


def _tail(text: str, lines: int = 8) -> str:
    kept = text.strip().splitlines()[-lines:]
    return "\n".join(f"  {line}" for line in kept) if kept else "  (git printed nothing)"


def push_branch(ws: Workspace, *, timeout_s: float = GIT_TIMEOUT_S, expected: str | None = None,
                lease: tuple[str, str] | None = None, leases: tuple[tuple[str, str], ...] = (),
                progress: Callable[[str], None] = lambda _: None) -> PushResult:
    """Push HEAD to `<remote> refs/heads/<branch>` (ws.config.push); on a rejection replay, re-prove and
    push by compare-and-swap as the module says. With `expected` (the remote head HEAD was built on) the
    first push is a compare-and-swap on it too. With `lease` (ref, sha; needs `expected`) every push also
    deletes that lease ref, in one atomic push, only if it still holds sha: the commits land only while
    their item is still this holder's (`lease_lost` when it is not; nothing is pushed, nothing recorded as
    pending). `leases`: more such leases (a pending push's, `retry_pending`). Any other failure is recorded
    as pending with the leases it carries, never raised."""
    held = (*((lease,) if lease else ()), *leases)
    repo, config = ws.repo, ws.config.push
    if config is None:
        raise HarnessError("push_branch needs `push: {remote, branch}` in harness.yaml")
    target = f"{config.remote} {config.branch}"
    head = head_sha(repo)
    if expected is None:
        first = push_ref(repo, config.remote, f"{head}:refs/heads/{config.branch}", timeout_s=timeout_s)
    else:
        first = _push_cas(ws, head, expected, held, timeout_s)
    if stale := _stale(first.output, held):
        return _lease_lost(target, stale)
    if first.ok:
        return _pushed(repo, PushResult(True, 1, False, f"pushed {head[:10]} to {target}"))
    if not (_rejected(first.output) or (expected is not None and _refused_by_lease(first.output))):
        return _failed(ws, held, 1, False, f"push to {target} failed:\n{_tail(first.output)}")
    attempts, rebased = 1, False
    for _ in range(MAX_ROUNDS):
        fetched = fetch_branch(repo, config.remote, config.branch, timeout_s=timeout_s)
        if fetched.head is None:
            return _failed(ws, held, attempts, rebased, f"push to {target} was rejected, and fetching that branch "
                           f"failed:\n{_tail(fetched.answer.output)}")
        onto = fetched.head
        if is_ancestor(repo, head, onto):
            return _pushed(repo, PushResult(True, attempts, rebased, f"nothing to push: {target} is at "
                                            f"{onto[:10]}, which holds {head[:10]}"))
        lacking = f"push to {target} was rejected: the remote's head {onto[:10]} has commits this branch lacks"
        if not is_clean(repo, untracked=False):
            return _failed(ws, held, attempts, rebased, f"{lacking}, and the branch can be moved onto them only with a "
                           "clean working tree (it holds uncommitted changes); the push is retried by the next "
                           "command that takes the lock, after this change is committed")
        try:
            replayed = replay_and_reprove(ws, onto, progress=progress)
        except HarnessError as exc:
            return _failed(ws, held, attempts, rebased, f"{lacking}; replaying this branch onto it failed: {exc}")
        if isinstance(replayed, Refused):
            return _failed(ws, held, attempts, rebased, f"{lacking}; {_refusal(replayed)}", refused=replayed)
        try:
            move_head(repo, head, replayed.head, reason=f"harness: replayed onto {target} {onto[:10]}")
        except HarnessError as exc:
            return _failed(ws, held, attempts, rebased, f"{lacking}; the replayed commits ({replayed.head[:10]}) hold, "
                           f"but the branch could not be moved onto them: {exc}")
        head, rebased, attempts = replayed.head, True, attempts + 1
        answer = _push_cas(ws, head, onto, held, timeout_s)
        if stale := _stale(answer.output, held):
            return _lease_lost(target, stale)
        if answer.ok:
            return _pushed(repo, PushResult(True, attempts, True, f"pushed {head[:10]} to {target} after "
                                            f"{_replayed(replayed, onto)}"))
        if not _refused_by_lease(answer.output):
            return _failed(ws, held, attempts, True, f"push to {target} failed after {_replayed(replayed, onto)}:\n"
                           f"{_tail(answer.output)}")
        progress(f"{target} moved on from {onto[:10]} before the push; replaying onto its new head")
    return _failed(ws, held, attempts, rebased, f"push to {target}: the remote branch moved on {MAX_ROUNDS} times while "
                   "this branch was replayed onto it and re-proven; the branch holds the commits re-proven on its "
                   f"head of the last round")


def _push_cas(ws: Workspace, head: str, expected: str, held: tuple[tuple[str, str], ...],
              timeout_s: float) -> GitAnswer:
    """HEAD onto the branch by compare-and-swap on `expected`, and the leases given back in the same push."""
    config = ws.config.push
    assert config is not None
    ref = f"refs/heads/{config.branch}"
    if not held:
        return push_ref_cas(ws.repo, config.remote, ref, head, expected, timeout_s=timeout_s)
    return push_refs_cas(ws.repo, config.remote, [(ref, head, expected), *((r, None, sha) for r, sha in held)],
                         timeout_s=timeout_s)


def _stale(output: str, held: tuple[tuple[str, str], ...]) -> list[tuple[str, str]]:
    """The leases among `held` the remote refused as no longer holding their commit."""
    return [(ref, sha) for ref, sha in held
            if any(line.startswith("!") and f":{ref}\t" in line and "stale info" in line for line in output.splitlines())]


def _lease_lost(target: str, stale: list[tuple[str, str]]) -> PushResult:
    shown = ", ".join(f"{ref} no longer holds {sha[:12]}" for ref, sha in stale)
    return PushResult(False, 1, False, f"nothing was pushed to {target}: the lease {shown} there (taken over, or "
                      "removed)", lease_lost=True)


def _replayed(replayed: Replayed, onto: str) -> str:
    proofs = (f"; re-proven there: {', '.join(f'[{i}]' for i in replayed.reproven)}" if replayed.reproven
              else "; none of them claims a proof")
    return f"replaying {replayed.commits} commit(s) onto its head {onto[:10]}{proofs}"


def _refusal(refused: Refused) -> str:
    """What stopped the push and what to do, in words."""
    commit = f"{refused.commit[:10]}" + (f" [{refused.item}]" if refused.item else "")
    if refused.gate == "conflict":
        what = f"{refused.reason}; nothing was pushed"
        todo = "rebase this branch onto it by hand, resolve the conflict and commit"
    elif refused.gate in ("merge commit", "proof unreadable"):
        what = f"{refused.reason}; nothing was pushed"
        todo = "bring this branch up to date by hand"
    else:
        what = (f"{commit} fails {refused.gate} on it ({refused.reason}); nothing was pushed, the branch was not "
                f"moved onto them, and the failed re-proof's evidence is in {refused.evidence}")
        todo = ("the remote's commits break this proof in combination: bring the branch up to date by hand "
                "(`git pull --rebase`), fix what fails, and record the item again")
    return f"{what}. To go on: {todo}"


def _pushed(repo: git.Repo, result: PushResult) -> PushResult:
    pending_path(repo).unlink(missing_ok=True)
    return result


def _failed(ws: Workspace, held: tuple[tuple[str, str], ...], attempts: int, rebased: bool, what: str, *,
            refused: Refused | None = None) -> PushResult:
    repo, config = ws.repo, ws.config.push
    assert config is not None
    sha = head_sha(repo)
    path = _record_pending(repo, config, sha, what, attempts, refused, held)
    return PushResult(False, attempts, rebased, (
        f"{what}\nThe commit {sha[:10]} is kept locally and the push recorded as pending in {path}; every "
        f"harness command that takes the lock retries it when it starts (or push by hand: git push "
        f"{config.remote} HEAD:refs/heads/{config.branch})."), refused)


def _record_pending(repo: git.Repo, config: PushConfig, sha: str, reason: str, tries: int,
                    refused: Refused | None, held: tuple[tuple[str, str], ...]) -> Path:
    previous = load_pending(repo) or {}
    path = pending_path(repo)
    leases = dict(pending_leases(previous))
    leases.update(held)
    atomic_write_json(path, {
        "remote": config.remote, "branch": config.branch, "head": sha, "reason": reason,
        "refused": refused.as_record() if refused else None,
        "leases": [{"ref": ref, "sha": lease_sha} for ref, lease_sha in sorted(leases.items())],
        "first_failed": previous.get("first_failed", iso(utc_now())), "last_failed": iso(utc_now()),
        "failures": int(previous.get("failures", 0) or 0) + tries,
    })
    return path


def pending_leases(record: dict | None) -> tuple[tuple[str, str], ...]:
    """The remote leases (ref, commit) a pending push carries: given back in the same atomic push."""
    entries = (record or {}).get("leases") or []
    return tuple((str(e["ref"]), str(e["sha"])) for e in entries
                 if isinstance(e, dict) and isinstance(e.get("ref"), str) and isinstance(e.get("sha"), str))


def retry_pending(ws: Workspace, *, timeout_s: float = GIT_TIMEOUT_S,
                  progress: Callable[[str], None] = lambda _: None) -> PushResult | None:
    """Retry a push recorded as pending, by push_branch's rules; None when none is pending. With `push` no
    longer configured the record is left alone and reported. A pending push that carries leases is pushed
    by compare-and-swap on the remote head its commits were built on, with those leases given back in the
    same atomic push (`lease_lost` when one was taken over meanwhile: nothing is pushed); when the remote
    already holds every commit, only the leases are given back."""
    record = load_pending(ws.repo)
    if record is None:
        return None
    config = ws.config.push
    if config is None:
        return PushResult(False, 0, False, f"a push is pending ({pending_path(ws.repo)}) but `push` is not "
                          "configured in harness.yaml; push by hand, then delete that file")
    held = pending_leases(record)
    if not held:
        return push_branch(ws, timeout_s=timeout_s, progress=progress)
    fetched = fetch_branch(ws.repo, config.remote, config.branch, timeout_s=timeout_s)
    if fetched.head is None:
        return _failed(ws, held, 1, False, f"retrying the push to {config.remote} {config.branch}: the branch could "
                       f"not be fetched:\n{_tail(fetched.answer.output)}")
    ahead = commits_between(ws.repo, fetched.head, head_sha(ws.repo))
    if not ahead:
        return _give_back_only(ws, held, fetched.head, timeout_s)
    parents = parents_of(ws.repo, ahead[-1])
    return push_branch(ws, timeout_s=timeout_s, expected=parents[0] if parents else fetched.head, leases=held,
                       progress=progress)


def _give_back_only(ws: Workspace, held: tuple[tuple[str, str], ...], remote_head: str,
                    timeout_s: float) -> PushResult:
    """The remote holds every commit of the pending push: give its leases back (each only if it still holds
    its commit) and clear the record."""
    config = ws.config.push
    assert config is not None
    answer = push_refs_cas(ws.repo, config.remote, [(ref, None, sha) for ref, sha in held], timeout_s=timeout_s)
    target = f"{config.remote} {config.branch}"
    if not answer.ok and not _stale(answer.output, held):
        return _failed(ws, held, 1, False, f"the leases of the pending push could not be given back on {target}:\n"
                       f"{_tail(answer.output)}")
    note = "" if answer.ok else "; a lease was no longer this holder's and was left alone"
    return _pushed(ws.repo, PushResult(True, 1, False, f"nothing to push: {target} is at {remote_head[:10]}, which "
                                       f"holds these commits; the pending push's leases were given back{note}"))
