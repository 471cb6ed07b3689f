"""Push the branch after each successful commit (`push: {remote, branch}` in harness.yaml).

The refspec is explicit (`HEAD:refs/heads/<branch>`), so what is pushed never depends on upstream
settings. A push rejected as non-fast-forward is rebased onto the remote branch (`git pull --rebase`) and
retried once; a rebase conflict is aborted, leaving the branch as it was. A push that still fails never
loses the commit: it stays local, is recorded in `<common git dir>/harness/pending_push.json`, and is
retried at the next start (`retry_pending`).
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import git

from harness.atomic import atomic_write_json
from harness.clock import iso, utc_now
from harness.config import PushConfig
from harness.gitops import (
    GIT_TIMEOUT_S,
    abort_rebase,
    common_git_dir,
    head_sha,
    pull_rebase,
    push_ref,
    rebase_in_progress,
)

PENDING_NAME = "pending_push.json"


@dataclass(frozen=True)
class PushResult:
    """`attempts`: pushes tried (1 or 2); `rebased`: the branch was rebased onto the remote in between."""

    ok: bool
    attempts: int
    rebased: bool
    message: str


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


def _push(repo: git.Repo, config: PushConfig, timeout_s: float) -> tuple[bool, bool, str]:
    """(ok, rejected as non-fast-forward, git's output)."""
    answer = push_ref(repo, config.remote, f"HEAD:refs/heads/{config.branch}", timeout_s=timeout_s)
    # --porcelain marks a refused ref with "!" and names why: stable to parse, unlike the human text.
    rejected = any(line.startswith("!") and "[rejected]" in line
                   and ("non-fast-forward" in line or "fetch first" in line) for line in answer.output.splitlines())
    return answer.ok, rejected, answer.output


def _record_pending(repo: git.Repo, config: PushConfig, sha: str, reason: str, tries: int) -> Path:
    previous = load_pending(repo) or {}
    path = pending_path(repo)
    atomic_write_json(path, {
        "remote": config.remote, "branch": config.branch, "head": sha, "reason": reason,
        "first_failed": previous.get("first_failed", iso(utc_now())), "last_failed": iso(utc_now()),
        "failures": int(previous.get("failures", 0) or 0) + tries,
    })
    return path


def _tail(text: str, lines: int = 8) -> str:
    kept = text.strip().splitlines()[-lines:]
    return "\n".join(f"  {line}" for line in kept) if kept else "  (git printed nothing)"


def push_branch(repo: git.Repo, config: PushConfig, *, identity: tuple[str, str] | None = None,
                timeout_s: float = GIT_TIMEOUT_S) -> PushResult:
    """Push HEAD to `<remote> refs/heads/<branch>`; on a non-fast-forward rejection rebase and retry once.

    `identity` (name, email) is the committer of commits the rebase rewrites (the harness's commit
    identity); by default git's own configuration. A failure is recorded as pending, never raised.
    """
    target = f"{config.remote} {config.branch}"
    ok, rejected, out = _push(repo, config, timeout_s)
    if ok:
        pending_path(repo).unlink(missing_ok=True)
        return PushResult(True, 1, False, f"pushed {head_sha(repo)[:10]} to {target}")
    attempts, rebased = 1, False
    if rejected:
        pulled = pull_rebase(repo, config.remote, config.branch, identity=identity, timeout_s=timeout_s)
        if not pulled.ok:
            conflict = rebase_in_progress(repo)
            if conflict:
                abort_rebase(repo, timeout_s=timeout_s)
            what = ("rebasing onto it stopped on a conflict and was aborted (the branch is as it was); "
                    "rebase by hand" if conflict else "`git pull --rebase` failed")
            return _failed(repo, config, attempts, False,
                           f"push to {target} was rejected (the remote has commits this branch lacks); "
                           f"{what}:\n{_tail(pulled.output)}")
        rebased = True
        attempts = 2
        ok, _, out = _push(repo, config, timeout_s)
        if ok:
            pending_path(repo).unlink(missing_ok=True)
            return PushResult(True, attempts, True,
                              f"pushed {head_sha(repo)[:10]} to {target} after rebasing onto it")
    return _failed(repo, config, attempts, rebased, f"push to {target} failed:\n{_tail(out)}")


def _failed(repo: git.Repo, config: PushConfig, attempts: int, rebased: bool, what: str) -> PushResult:
    sha = head_sha(repo)
    path = _record_pending(repo, config, sha, what, attempts)
    return PushResult(False, attempts, rebased, (
        f"{what}\nThe commit {sha[:10]} is kept locally and recorded in {path}; the harness retries the push "
        f"at its next start (or push by hand: git push {config.remote} HEAD:refs/heads/{config.branch})."))


def retry_pending(repo: git.Repo, config: PushConfig | None, *, identity: tuple[str, str] | None = None,
                  timeout_s: float = GIT_TIMEOUT_S) -> PushResult | None:
    """Retry a push recorded as pending; None when none is pending. With `push` no longer configured the
    record is left alone and reported."""
    record = load_pending(repo)
    if record is None:
        return None
    if config is None:
        return PushResult(False, 0, False, f"a push is pending ({pending_path(repo)}) but `push` is not "
                          "configured in harness.yaml; push by hand, then delete that file")
    return push_branch(repo, config, identity=identity, timeout_s=timeout_s)

