"""Git commands that talk to a remote (push, fetch) and may hang on the network.

They run through harness.proc, not gitpython: each gets a timeout, and its own process group, so a
timeout also ends the ssh or credential helper it started. They never wait for a terminal prompt or an
editor (the harness runs unattended), and LC_ALL=C keeps git's messages in English for the callers that
read them. A failure is an answer here, not an exception: the caller decides what it means.
"""
from __future__ import annotations

import os
from dataclasses import dataclass

import git

from harness import proc
from harness.errors import GitError
from harness.gitops.command import git_status
from harness.gitops.revisions import root

GIT_TIMEOUT_S = 300.0
TIMED_OUT_STATUS = 124  # the status a timed-out command reads as (as timeout(1) exits)
_QUIET_ENV = {"GIT_TERMINAL_PROMPT": "0", "GIT_EDITOR": "true", "GIT_SEQUENCE_EDITOR": "true", "LC_ALL": "C"}


@dataclass(frozen=True)
class GitAnswer:
    """How one git command ended: its exit status (TIMED_OUT_STATUS after a timeout) and its merged output."""

    status: int
    output: str

    @property
    def ok(self) -> bool:
        return self.status == 0


def _run(repo: git.Repo, *args: str, timeout_s: float = GIT_TIMEOUT_S) -> GitAnswer:
    """Run `git ARGS` in the working tree with a timeout; a timeout reads as a failure, never raises."""
    env = {**os.environ, **_QUIET_ENV}
    try:
        done = proc.run(["git", *args], cwd=root(repo), env=env, timeout_s=timeout_s, capture=True)
    except proc.StartError as exc:
        raise GitError(f"git could not be started ({exc.reason}); install git and make sure it is on PATH"
                       ) from None
    if done.timed_out:
        return GitAnswer(TIMED_OUT_STATUS, f"git {' '.join(args)} did not finish within {timeout_s:.0f} s")
    return GitAnswer(done.returncode, (done.output or "").strip())


def push_ref(repo: git.Repo, remote: str, refspec: str, *, timeout_s: float = GIT_TIMEOUT_S) -> GitAnswer:
    """`git push --porcelain REMOTE REFSPEC` (porcelain: a refused ref is a line starting with "!")."""
    return _run(repo, "push", "--porcelain", remote, refspec, timeout_s=timeout_s)


@dataclass(frozen=True)
class Fetched:
    """A fetched remote branch: its commit, now in the object store (None when the fetch failed), and how
    git answered."""

    answer: GitAnswer
    head: str | None


def fetch_branch(repo: git.Repo, remote: str, branch: str, *, timeout_s: float = GIT_TIMEOUT_S) -> Fetched:
    """`git fetch --no-tags REMOTE refs/heads/BRANCH`: the remote branch's commit, read from FETCH_HEAD
    (no remote-tracking ref is needed, so REMOTE may also be a URL)."""
    answer = _run(repo, "fetch", "--no-tags", "--quiet", remote,
                  f"refs/heads/{branch}", timeout_s=timeout_s)
    if not answer.ok:
        return Fetched(answer, None)
    status, out, _ = git_status(repo, "rev-parse", "--verify", "--quiet", "FETCH_HEAD^{commit}")
    return Fetched(answer, out.strip() if status == 0 and out.strip() else None)


def push_ref_cas(repo: git.Repo, remote: str, ref: str, new: str | None, expected: str | None, *,
                 timeout_s: float = GIT_TIMEOUT_S) -> GitAnswer:
    """Compare-and-swap on the remote: point its `ref` at `new` (None: delete it) only if it holds `expected`
    there (None: only if it does not exist), with `git push --force-with-lease=REF:EXPECTED`. A refusal is
    a porcelain line starting with "!"; any other failure (the network) has none."""
    spec = f"{new}:{ref}" if new is not None else f":{ref}"
    return _run(repo, "push", "--porcelain", f"--force-with-lease={ref}:{expected or ''}", remote, spec,
                timeout_s=timeout_s)


def push_refs_cas(repo: git.Repo, remote: str, updates: list[tuple[str, str | None, str | None]], *,
                  timeout_s: float = GIT_TIMEOUT_S) -> GitAnswer:
    """Several compare-and-swaps in one atomic push (`git push --atomic`, each update `(ref, new or None to
    delete, expected or None for absent)` as in push_ref_cas): the remote applies all of them or none. A
    refused update is a porcelain line starting with "!" naming its ref and "(stale info)"; the others say
    "(atomic push failed)"."""
    leases, specs = [], []
    for ref, new, expected in updates:
        leases.append(f"--force-with-lease={ref}:{expected or ''}")
        specs.append(f"{new}:{ref}" if new is not None else f":{ref}")
    return _run(repo, "push", "--porcelain", "--atomic", *leases, remote, *specs, timeout_s=timeout_s)


def fetch_refs(repo: git.Repo, remote: str, source_prefix: str, local_prefix: str, *,
               timeout_s: float = GIT_TIMEOUT_S) -> GitAnswer:
    """Mirror every remote ref under `source_prefix` to the same name under `local_prefix` here
    (`git fetch --prune REMOTE +SRC*:DST*`): refs gone from the remote go here too. Both prefixes end in "/"."""
    return _run(repo, "fetch", "--no-tags", "--quiet", "--prune", "--no-write-fetch-head", remote,
                f"+{source_prefix}*:{local_prefix}*", timeout_s=timeout_s)


def remote_refs(repo: git.Repo, remote: str, prefix: str, *,
                timeout_s: float = GIT_TIMEOUT_S) -> dict[str, str] | None:
    """The remote's refs under `prefix` (`git ls-remote REMOTE PREFIX*`), name -> object; None when the
    remote could not be asked."""
    answer = _run(repo, "ls-remote", "--refs", remote, f"{prefix}*", timeout_s=timeout_s)
    if not answer.ok:
        return None
    refs = {}
    for line in answer.output.splitlines():
        sha, _, name = line.partition("\t")
        if name.startswith(prefix):
            refs[name] = sha
    return refs
