"""A push the remote rejects: the harness's commits are replayed onto the remote's head and their proofs run
again there before anything is pushed (real `harness run`s, a bare remote and a second clone that pushes)."""
from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from harness.durability.push import MAX_ROUNDS, pending_path
from harness.gitops import open_repo
from harness.main import main
from tests.conftest import git, share_through_remote, write_files
from tests.harness.project import MUL_TEST, apply_change, head_subject, make_project, status_porcelain

# mul scaled by a constant of another module: right while SCALE is 1.
MUL_SCALED = ("from pkg.constants import SCALE\n\n\ndef add(a, b):\n    return a + b\n\n\n"
              "def mul(a, b):\n    return a * b * SCALE\n")
SUB_TEST = "from pkg.calc import sub\n\n\ndef test_sub():\n    assert sub(3, 2) == 1\n"


def setup(make_repo: Callable[..., Path], tmp_path: Path) -> tuple[Path, Path, Path]:
    """(the bare remote, the harness's repository pushing to it after each commit, someone else's clone)."""
    repo = make_project(make_repo, extra={"pkg/constants.py": "SCALE = 1\n"})
    (repo / "harness.yaml").write_text((repo / "harness.yaml").read_text()
                                       + "push:\n  remote: origin\n  branch: main\n")
    git(repo, "commit", "-qam", "push after each commit")
    remote, other = share_through_remote(repo, tmp_path, clone="other")
    return remote, repo, other


def their_commit(other: Path, files: dict[str, str], message: str, *, push: bool = True) -> str:
    write_files(other, files)
    git(other, "add", "-A")
    git(other, "commit", "-qm", message)
    if push:
        git(other, "push", "-q", "origin", "HEAD:refs/heads/main")
    return git(other, "rev-parse", "HEAD").strip()


def run_item(repo: Path, item: str) -> int:
    return main(["run", "-C", str(repo), "--no-agent", item])


def remote_head(remote: Path) -> str:
    return git(remote, "rev-parse", "refs/heads/main").strip()


def trailer(repo: Path, rev: str, key: str) -> str:
    return git(repo, "log", "-1", f"--format=%(trailers:key={key},valueonly)", rev).strip()


def test_a_remote_commit_that_breaks_the_new_test_only_in_combination_is_never_pushed_over(
        make_repo, tmp_path, capsys) -> None:
    remote, repo, other = setup(make_repo, tmp_path)
    # Another file, a clean rebase, and a tree whose own tests pass: only mul's new test depends on SCALE.
    theirs = their_commit(other, {"pkg/constants.py": "SCALE = 2\n"}, "SCALE doubles")
    assert subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"], cwd=other,
                          capture_output=True, check=False).returncode == 0
    apply_change(repo, {"tests/test_mul.py": MUL_TEST, "pkg/calc.py": MUL_SCALED})

    assert run_item(repo, "CALC-001") == 0  # the attempt is GREEN where it was proven
    out = capsys.readouterr().out

    assert remote_head(remote) == theirs  # nothing was pushed over their commit
    green = git(repo, "rev-parse", "HEAD").strip()  # the branch is as it was: the proof made here, on its tree
    assert head_subject(repo) == "[CALC-001] calc gains mul: GREEN" and git(repo, "rev-parse", "HEAD~1").strip() != theirs
    assert status_porcelain(repo) == ""
    record = json.loads(pending_path(open_repo(repo)).read_text())
    refused = record["refused"]
    assert (refused["commit"], refused["item"], refused["gate"], refused["onto"]) == (green, "CALC-001", "green", theirs)
    assert "tests/test_mul.py::test_mul" in refused["reason"] and record["head"] == green
    assert f"{green[:10]} [CALC-001] fails green" in out and "nothing was pushed" in out
    kept = json.loads((Path(refused["evidence"]) / "reproof.json").read_text())
    assert not kept["ok"] and kept["failed_gate"] == "green" and kept["onto"] == theirs


def test_a_harmless_remote_commit_is_replayed_under_the_proof_and_pushed_with_its_re_proof(
        make_repo, tmp_path) -> None:
    remote, repo, other = setup(make_repo, tmp_path)
    theirs = their_commit(other, {"NOTES.md": "notes\n"}, "notes")
    apply_change(repo, {"tests/test_mul.py": MUL_TEST, "pkg/calc.py": MUL_SCALED})

    assert run_item(repo, "CALC-001") == 0

    head = git(repo, "rev-parse", "HEAD").strip()
    assert remote_head(remote) == head and git(repo, "rev-parse", "HEAD~1").strip() == theirs
    assert not pending_path(open_repo(repo)).exists()
    assert status_porcelain(repo) == "" and (repo / "NOTES.md").read_text() == "notes\n"
    assert head_subject(repo) == "[CALC-001] calc gains mul: GREEN"
    assert git(repo, "log", "-1", "--format=%an|%cn").strip() == "Harness Test|Harness Test"
    assert trailer(repo, "HEAD", "Harness-Reproven-Onto") == theirs
    evidence = trailer(repo, "HEAD", "Harness-Evidence")
    folder = trailer(repo, "HEAD", "Harness-Reproof-Evidence")
    assert folder == f"{evidence}-reproof"
    for sealed in (repo / evidence, repo / folder):  # the attempt's folder as it was, and the re-proof's own
        check = subprocess.run(["sha256sum", "-c", "--quiet", "SHA256SUMS"], cwd=sealed, capture_output=True,
                               text=True, check=False)
        assert check.returncode == 0, check.stdout + check.stderr
    record = json.loads((repo / folder / "reproof.json").read_text())
    assert record["ok"] and record["onto"] == theirs and record["paths_differing"] == ["NOTES.md"]
    assert [(s["name"], s["ok"]) for s in record["stages"]] == [("green", True), ("regression", True),
                                                                ("full_suite", True)]
    # What the remote now holds passes the item's RED selector.
    git(tmp_path, "clone", "-q", str(remote), "check")
    ran = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests/test_mul.py::test_mul"],
                         cwd=tmp_path / "check", capture_output=True, text=True, check=False)
    assert ran.returncode == 0 and "1 passed" in ran.stdout, ran.stdout


def test_a_pending_push_is_retried_by_verify_and_by_run(make_repo, tmp_path, capsys) -> None:
    remote, repo, _ = setup(make_repo, tmp_path)
    base = git(repo, "rev-parse", "HEAD").strip()
    away = remote.with_name("away.git")
    remote.rename(away)
    apply_change(repo, {"tests/test_mul.py": MUL_TEST, "pkg/calc.py": MUL_SCALED})
    assert run_item(repo, "CALC-001") == 0
    green = git(repo, "rev-parse", "HEAD").strip()
    assert pending_path(open_repo(repo)).exists()
    away.rename(remote)
    capsys.readouterr()

    assert main(["verify", "-C", str(repo), "--base", base, "--item", "CALC-001", "--dry-run"]) == 0
    assert remote_head(remote) == green and not pending_path(open_repo(repo)).exists()
    assert f"pending push from an earlier run: pushed {green[:10]}" in capsys.readouterr().err

    remote.rename(away)
    apply_change(repo, {"tests/test_sub.py": SUB_TEST,
                        "pkg/calc.py": MUL_SCALED + "\n\ndef sub(a, b):\n    return a - b\n"})
    assert run_item(repo, "CALC-002") == 0
    second = git(repo, "rev-parse", "HEAD").strip()
    assert second != green and pending_path(open_repo(repo)).exists()
    away.rename(remote)
    capsys.readouterr()
    # `harness run` retries it when it starts, before it finds that there is nothing to prove this time.
    assert run_item(repo, "CALC-002") != 0
    assert remote_head(remote) == second and not pending_path(open_repo(repo)).exists()
    assert f"pending push from an earlier run: pushed {second[:10]}" in capsys.readouterr().err


def _moving_test(trigger: Path, other: Path, *, once: bool) -> str:
    """A test of the remote's project that, while the harness re-proves onto it, makes the remote move on
    (pushes the other clone's next commit); `once`: only the first time it runs."""
    act = ("    if trigger.exists():\n        trigger.unlink()\n" if once else
           f"    if trigger.exists():\n        moves = pathlib.Path({str(other / 'moves.txt')!r})\n"
           "        moves.write_text(moves.read_text() + 'x' if moves.exists() else 'x')\n"
           f"        subprocess.run(['git', '-C', {str(other)!r}, 'add', 'moves.txt'], check=True)\n"
           f"        subprocess.run(['git', '-C', {str(other)!r}, 'commit', '-q', '-m', 'again'], check=True)\n")
    return (f"import pathlib\nimport subprocess\n\n\ndef test_the_remote_moves_on():\n"
            f"    trigger = pathlib.Path({str(trigger)!r})\n{act}"
            f"        subprocess.run(['git', '-C', {str(other)!r}, 'push', '-q', 'origin', 'HEAD:refs/heads/main'], "
            "check=True)\n")


@pytest.mark.slow
def test_when_the_remote_moves_during_the_re_proof_the_push_is_refused_and_the_round_repeats(
        make_repo, tmp_path, capsys) -> None:
    remote, repo, other = setup(make_repo, tmp_path)
    trigger = tmp_path / "move-the-remote"
    trigger.touch()
    first = their_commit(other, {"tests/test_remote_moves.py": _moving_test(trigger, other, once=True)},
                         "a test that pushes the next commit")
    second = their_commit(other, {"NOTES.md": "notes\n"}, "notes", push=False)
    apply_change(repo, {"tests/test_mul.py": MUL_TEST, "pkg/calc.py": MUL_SCALED})

    assert run_item(repo, "CALC-001") == 0

    assert not trigger.exists()  # the remote moved to `second` while the harness re-proved onto `first`
    head = git(repo, "rev-parse", "HEAD").strip()
    assert remote_head(remote) == head and git(repo, "rev-parse", "HEAD~1").strip() == second
    assert trailer(repo, "HEAD", "Harness-Reproven-Onto") == second
    out = capsys.readouterr().out
    assert f"moved on from {first[:10]} before the push" in out
    record = json.loads((repo / trailer(repo, "HEAD", "Harness-Reproof-Evidence") / "reproof.json").read_text())
    assert record["onto"] == second and record["ok"]


@pytest.mark.slow
def test_a_remote_that_keeps_moving_leaves_the_push_pending_after_a_bounded_number_of_rounds(
        make_repo, tmp_path) -> None:
    remote, repo, other = setup(make_repo, tmp_path)
    trigger = tmp_path / "keep-moving"
    trigger.touch()
    their_commit(other, {"tests/test_remote_moves.py": _moving_test(trigger, other, once=False)},
                 "a test that pushes a new commit each time it runs")
    apply_change(repo, {"tests/test_mul.py": MUL_TEST, "pkg/calc.py": MUL_SCALED})

    assert run_item(repo, "CALC-001") == 0

    last = remote_head(remote)
    assert git(remote, "log", "--format=%s", "main").count("again") == MAX_ROUNDS
    assert "[CALC-001]" not in git(remote, "log", "--format=%s", "main")
    record = json.loads(pending_path(open_repo(repo)).read_text())
    assert f"moved on {MAX_ROUNDS} times" in record["reason"]
    # The branch holds the commits re-proven on the head of the last round, which the remote has left.
    assert trailer(repo, "HEAD", "Harness-Reproven-Onto") == git(remote, "rev-parse", "main~1").strip() != last
