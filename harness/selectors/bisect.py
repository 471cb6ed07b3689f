"""Find the first commit where a selector stopped passing, with `git bisect run` in a temporary worktree.

The user's working tree, HEAD, branch and bisect state are never touched: the bisect runs in a linked
worktree, whose bisect state (BISECT_* files, refs/bisect/*) git keeps per worktree in
`<git-dir>/worktrees/<name>/`, and the worktree is removed afterwards. `git bisect run` starts the step
program below as an argv list (git quotes each argument itself); the step runs the selector alone at the
checked-out commit and exits 0 (passes), 1 (fails), 125 (cannot run there: skip) or 128 (abort).
"""
from __future__ import annotations

import json
import shutil
import sys
import tempfile
import traceback
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import git

from harness.errors import GitError, LedgerError, SelectorError
from harness.gitops import (
    bisect_run,
    checkout_detached,
    commit_exists,
    commit_info,
    commit_message,
    is_ancestor,
    resolve,
    short,
    temp_worktree,
    trailers_of,
    worktree_head,
)
from harness.ledger import load_ledger
from harness.pytest_run.runner import PytestSettings, Selector, parse_selector, run_pytest
from harness.selectors.history import History
from harness.selectors.runs import BASE_ARGS, SelectorIndex, Status, classify, normalise_arg

GOOD, BAD, SKIP, ABORT = 0, 1, 125, 128
ITEM_TRAILER = "Harness-Item"
STEP_SCRIPT = '''\
"""harness bisect step: run one selector at the checked-out commit (exit 0 good, 1 bad, 125 skip)."""
import sys

try:
    from harness.selectors.bisect import step_main
except BaseException as exc:  # exit 1 would read as "bad": abort the bisect instead
    print(f"harness bisect step: cannot import the harness: {exc!r}", file=sys.stderr)
    sys.exit(128)
sys.exit(step_main(sys.argv[1:]))
'''


@dataclass(frozen=True)
class Step:
    """The selector at one commit: verdict good/bad/skip, the selector status and why."""

    commit: str
    verdict: str
    status: str
    detail: str


@dataclass(frozen=True)
class CommitDescription:
    sha: str
    author: str
    email: str
    date: str
    subject: str
    message: str
    items: tuple[tuple[str, str | None], ...]  # (Harness-Item value, ledger title or None)


@dataclass(frozen=True)
class BisectReport:
    """`outcome`: found, ambiguous (skipped commits hide it), or not_confirmed (good/bad precondition)."""

    selector: str
    good: str
    bad: str
    good_source: str
    outcome: str
    message: str
    first_bad: CommitDescription | None = None
    candidates: tuple[str, ...] = ()
    steps: tuple[Step, ...] = field(default=())

    @property
    def skipped(self) -> tuple[Step, ...]:
        return tuple(s for s in self.steps if s.verdict == "skip")


# --- one step ----------------------------------------------------------------------------------------


def judge(selector: Selector, cwd: Path, out_dir: Path, name: str,
          options: PytestSettings) -> tuple[int, str, str]:
    """(exit code for git bisect, selector status, why) for the selector run alone in `cwd`."""
    run = run_pytest(selector.args, cwd=cwd, out_dir=out_dir, name=name, command=options.command,
                     extra_args=BASE_ARGS, env=dict(options.env), timeout_s=options.timeout_s,
                     warm_start=options.warm_start)
    result = classify(selector.raw, run.results, run.collected, run, collect_only=False)
    status = result.status
    if status == Status.PASSED:
        return GOOD, status.value, result.detail
    if status == Status.FAILED or run.timed_out:
        return BAD, status.value, result.detail
    if status == Status.ERROR:
        tests = [r for r in run.results if r.failing and r.nodeid in result.nodeids]
        if tests:
            return BAD, status.value, result.detail
        own = [e.nodeid for e in run.collection_errors() if _own_file(selector, e.nodeid, cwd)]
        if own:
            return BAD, status.value, f"its own test file does not import: {result.detail}"
        return SKIP, status.value, f"cannot run here (skipped): {result.detail}"
    return SKIP, status.value, f"cannot run here (skipped): {result.detail}"


def _own_file(selector: Selector, nodeid: str, cwd: Path) -> bool:
    """A collection error in the selector's own file(s), not in a folder above them (conftest, __init__)."""
    if SelectorIndex([selector], cwd).owners(nodeid):
        return True
    path = nodeid.partition("::")[0]
    files = {normalise_arg(a, cwd).partition("::")[0] for a in selector.args if not a.startswith("-")}
    return path in files


def step_main(argv: Sequence[str]) -> int:
    """Entry point of the step program: argv = [spec.json]. Never exits 1 for its own failures."""
    try:
        spec = json.loads(Path(argv[0]).read_text(encoding="utf-8"))
        cwd = Path.cwd()
        sha = worktree_head(cwd)
        command = tuple(spec["command"]) if spec["command"] else None
        options = PytestSettings(command, spec["env"], spec["timeout_s"], spec.get("warm_start", True))
        selector = parse_selector(spec["selector"])
        code, status, detail = judge(selector, cwd, Path(spec["out_dir"]), sha[:12], options)
        step = {"commit": sha, "verdict": {GOOD: "good", BAD: "bad", SKIP: "skip"}[code],
                "status": status, "detail": detail}
        with open(spec["steps"], "a", encoding="utf-8") as fh:
            fh.write(json.dumps(step) + "\n")
        print(f"harness bisect step: {short(sha)} {step['verdict']} ({status}): {detail}")
        return code
    except BaseException:  # noqa: BLE001 - any exit from 1 to 127 would be read as "bad"
        traceback.print_exc()
        return ABORT


# --- the bisect --------------------------------------------------------------------------------------


def default_good(history: History, selector: str) -> str:
    point = history.last_pass(selector)
    if point is None:
        raise SelectorError(
            f"{selector!r} has no passing run in {history.path}, so there is no default good revision; "
            f"give --good REV (a commit where it passes)")
    return point.commit


def bisect_selector(repo: git.Repo, raw: str, *, good: str | None, bad: str | None, history: History,
                    options: PytestSettings, ledger_path: Path | None = None) -> BisectReport:
    """Confirm the selector passes at good and fails at bad, then bisect between them."""
    selector = parse_selector(raw)
    good_source = "given" if good else "last passing run in the history"
    bad_source = "given" if bad else "HEAD"
    good_rev = good or default_good(history, raw)
    if not good and not commit_exists(repo, good_rev):
        raise SelectorError(f"the last passing run of {raw!r} was at {short(good_rev)}, which this "
                            f"repository no longer has (rebased or a shallow clone); give --good REV")
    good_sha, bad_sha = resolve(repo, good_rev), resolve(repo, bad or "HEAD")
    if good_sha == bad_sha:
        raise SelectorError(f"good and bad are the same commit ({short(good_sha)}); nothing to bisect")
    if not is_ancestor(repo, good_sha, bad_sha):
        raise SelectorError(f"good {short(good_sha)} is not an ancestor of bad {short(bad_sha)}; "
                            "git bisect needs the good commit to come before the bad one")

    def report(outcome: str, message: str, **more: object) -> BisectReport:
        return BisectReport(raw, good_sha, bad_sha, good_source, outcome, message, **more)

    tmp = Path(tempfile.mkdtemp(prefix="harness-bisect-"))
    try:
        with temp_worktree(repo, bad_sha) as worktree:
            steps = []
            for sha, want, label in ((good_sha, GOOD, "good"), (bad_sha, BAD, "bad")):
                checkout_detached(worktree, sha)
                name = f"{label}-{sha[:12]}"
                code, status, detail = judge(selector, worktree, tmp / "confirm", name, options)
                steps.append(Step(sha, {GOOD: "good", BAD: "bad", SKIP: "skip"}[code], status, detail))
                if code != want:
                    verb = "pass" if want == GOOD else "fail"
                    source = good_source if label == "good" else bad_source
                    return report("not_confirmed", f"{raw!r} does not {verb} at the {label} commit "
                                  f"{short(sha)} ({source}): it is {status}: {detail}", steps=tuple(steps))
            found, candidates, log = _run_bisect(worktree, tmp, raw, good_sha, bad_sha, options)
            steps += _read_steps(tmp / "steps.jsonl")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    if found:
        return report("found", f"first bad commit: {short(found)}", steps=tuple(steps),
                      first_bad=describe_commit(repo, found, ledger_path))
    if candidates:
        return report("ambiguous", f"skipped commits hide the first bad one; it is one of "
                      f"{', '.join(short(c) for c in candidates)}", steps=tuple(steps),
                      candidates=tuple(candidates))
    raise GitError(f"git bisect run ended without naming a commit:\n{log[-2000:]}")


def _run_bisect(worktree: Path, tmp: Path, raw: str, good: str, bad: str,
                options: PytestSettings) -> tuple[str | None, list[str], str]:
    script, spec = tmp / "bisect_step.py", tmp / "spec.json"
    script.write_text(STEP_SCRIPT, encoding="utf-8")
    spec.write_text(json.dumps({
        "selector": raw, "command": list(options.command) if options.command else None,
        "env": dict(options.env), "timeout_s": options.timeout_s,
        "warm_start": options.warm_start,
        "out_dir": str(tmp / "steps"), "steps": str(tmp / "steps.jsonl"),
    }), encoding="utf-8")
    run = bisect_run(worktree, good=good, bad=bad, step=[sys.executable, str(script), str(spec)])
    if run.first_bad is None and not run.candidates:
        raise GitError(f"git bisect run failed (exit {run.returncode}) for {raw!r}:\n{run.log[-3000:]}")
    return run.first_bad, list(run.candidates), run.log


def _read_steps(path: Path) -> list[Step]:
    if not path.exists():
        return []
    steps = []
    for line in path.read_text(encoding="utf-8").splitlines():
        obj = json.loads(line)
        steps.append(Step(obj["commit"], obj["verdict"], obj["status"], obj["detail"]))
    return steps


def describe_commit(repo: git.Repo, sha: str, ledger_path: Path | None) -> CommitDescription:
    """Author, message and the ledger item(s) named by its Harness-Item trailer."""
    info = commit_info(repo, sha)
    message = commit_message(repo, info.sha)
    items = trailers_of(repo, info.sha).get(ITEM_TRAILER, [])
    titles: dict[str, str] = {}
    if items and ledger_path is not None:
        try:
            ledger = load_ledger(ledger_path)
            titles = {i.id: i.title for i in ledger.items}
        except LedgerError:
            pass  # the item id is still worth printing without its title
    return CommitDescription(info.sha, info.author_name, info.author_email, info.date.isoformat(),
                             info.subject, message, tuple((item, titles.get(item)) for item in items))
