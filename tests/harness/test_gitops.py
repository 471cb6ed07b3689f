from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from harness import gitops
from harness.errors import GitError
from harness.gitops import Change
from tests.conftest import git

IDENTITY = ("Harness Bot", "bot@example.invalid")
BASE_FILES = {
    "README.md": "readme\n",
    "a.txt": "a\n",
    "b.txt": "b\n",
    "sub/c.txt": "c\n",
    "sub/deep/d.txt": "d\n",
    ".gitignore": "*.log\n",
}


@pytest.fixture
def repo_path(make_repo: Callable[..., Path]) -> Path:
    return make_repo(BASE_FILES)


def _dirty(repo: Path) -> None:
    """Every kind of change: unstaged edit, staged deletion, untracked, staged add, rename, ignored."""
    (repo / "a.txt").write_text("a changed\n")
    git(repo, "rm", "-q", "b.txt")
    (repo / "new.txt").write_text("brand new\n")
    (repo / "staged.txt").write_text("staged\n")
    git(repo, "add", "staged.txt")
    git(repo, "mv", "sub/c.txt", "sub/c2.txt")
    (repo / "debug.log").write_text("ignored\n")


def _changes(repo: Path) -> dict[str, str]:
    return {c.path: c.kind for c in gitops.working_changes(gitops.open_repo(repo))}


def test_open_repo_finds_root_from_subdir_and_explains_failures(repo_path: Path, tmp_path: Path) -> None:
    repo = gitops.open_repo(repo_path / "sub" / "deep")
    assert gitops.root(repo) == repo_path
    plain = tmp_path / "plain"
    plain.mkdir()
    with pytest.raises(GitError, match="is not inside a git repository; run `git init`"):
        gitops.open_repo(plain)
    empty = tmp_path / "empty"
    empty.mkdir()
    git(empty, "init", "-q")
    with pytest.raises(GitError, match="no commits yet; make a first commit"):
        gitops.open_repo(empty)
    with pytest.raises(GitError, match="does not exist"):
        gitops.open_repo(tmp_path / "missing")


def test_head_resolve_short_and_commit_queries(repo_path: Path) -> None:
    repo = gitops.open_repo(repo_path)
    head = gitops.head_sha(repo)
    assert head == git(repo_path, "rev-parse", "HEAD").strip() and len(head) == 40
    assert gitops.resolve(repo, "main") == head and gitops.resolve(repo, head[:8]) == head
    assert gitops.short(head) == head[:10]
    for bad in ["no-such-branch", "-rf", ""]:
        with pytest.raises(GitError) as info:
            gitops.resolve(repo, bad)
        assert repr(bad) in str(info.value)
    assert gitops.commit_exists(repo, head)
    assert not gitops.commit_exists(repo, "0" * 40)
    assert not gitops.commit_exists(repo, "--all")
    info = gitops.commit_info(repo, head)
    assert (info.sha, info.author_name, info.subject) == (head, "Test Author", "initial")
    assert info.date.tzinfo is not None


def test_working_changes_sees_staged_unstaged_untracked_not_ignored(repo_path: Path) -> None:
    _dirty(repo_path)
    # Staged, then edited back to HEAD's content: no change against HEAD.
    (repo_path / "README.md").write_text("tmp\n")
    git(repo_path, "add", "README.md")
    (repo_path / "README.md").write_text("readme\n")
    changes = gitops.working_changes(gitops.open_repo(repo_path))
    assert [(c.path, c.kind) for c in changes] == [
        ("a.txt", "modified"),
        ("b.txt", "deleted"),
        ("new.txt", "added"),
        ("staged.txt", "added"),
        ("sub/c.txt", "deleted"),
        ("sub/c2.txt", "added"),
    ]
    sizes = {c.path: c.size_bytes for c in changes}
    assert sizes == {"a.txt": 10, "b.txt": 0, "new.txt": 10, "staged.txt": 7, "sub/c.txt": 0, "sub/c2.txt": 2}


def test_working_changes_leaves_index_untouched(repo_path: Path) -> None:
    _dirty(repo_path)
    index = repo_path / ".git" / "index"
    before = index.read_bytes()
    gitops.working_changes(gitops.open_repo(repo_path))
    assert index.read_bytes() == before
    assert git(repo_path, "diff", "--cached", "--no-renames", "--name-only").split() == [
        "b.txt", "staged.txt", "sub/c.txt", "sub/c2.txt"
    ]


def test_changes_between_commits(repo_path: Path) -> None:
    repo = gitops.open_repo(repo_path)
    base = gitops.head_sha(repo)
    _dirty(repo_path)
    git(repo_path, "add", "-A")
    git(repo_path, "commit", "-q", "-m", "second")
    changes = gitops.changes_between(repo, base, "HEAD")
    assert changes == [
        Change("a.txt", "modified", 10),
        Change("b.txt", "deleted", 0),
        Change("new.txt", "added", 10),
        Change("staged.txt", "added", 7),
        Change("sub/c.txt", "deleted", 0),
        Change("sub/c2.txt", "added", 2),
    ]


def test_is_clean_whole_tree_and_by_path(repo_path: Path) -> None:
    repo = gitops.open_repo(repo_path)
    (repo_path / "debug.log").write_text("ignored\n")
    assert gitops.is_clean(repo)
    (repo_path / "untracked.txt").write_text("x\n")
    assert not gitops.is_clean(repo)
    assert gitops.is_clean(repo, ["a.txt"]) and not gitops.is_clean(repo, ["untracked.txt"])


@pytest.mark.parametrize(
    ("path", "glob", "expected"),
    [
        ("tests/a/b.py", "tests/**", True),
        ("tests_x/a.py", "tests/**", False),
        ("test_top.py", "**/test_*.py", True),
        ("pkg/sub/test_x.py", "**/test_*.py", True),
        ("pkg/sub/mytest_x.py", "**/test_*.py", False),
        ("pkg/a_test.py", "**/*_test.py", True),
        ("conftest.py", "**/conftest.py", True),
        ("a/b/conftest.py", "**/conftest.py", True),
        ("deep/x.log", "*.log", True),
        ("deep/x.log", "/*.log", False),
        ("x.log", "/*.log", True),
        ("src/build/out.o", "build/", True),
        ("docs/guide/a.md", "docs", True),
        ("a/b/c/d.py", "a/**/d.py", True),
        ("a/d.py", "a/**/d.py", True),
        ("a/x/y.py", "a/*.py", False),
        ("f1.txt", "f[0-9].txt", True),
        ("fx.txt", "f[0-9].txt", False),
        ("fx.txt", "f[!0-9].txt", True),
        ("./tests/x.py", "tests/**", True),
    ],
)
def test_matches_any_gitignore_semantics(path: str, glob: str, expected: bool) -> None:
    assert gitops.matches_any(path, [glob]) is expected


def test_matches_any_over_several_globs() -> None:
    assert gitops.matches_any("src/x.py", ["*.md", "src/**"])
    assert not gitops.matches_any("src/x.py", [])


def _registered_worktrees(repo_path: Path) -> list[str]:
    lines = git(repo_path, "worktree", "list", "--porcelain").splitlines()
    return [line.split(" ", 1)[1] for line in lines if line.startswith("worktree ")][1:]


def test_temp_worktree_checks_out_rev_and_is_always_removed(repo_path: Path) -> None:
    repo = gitops.open_repo(repo_path)
    base = gitops.head_sha(repo)
    (repo_path / "a.txt").write_text("later\n")
    git(repo_path, "commit", "-qam", "later")
    with gitops.temp_worktree(repo, base) as wt:
        assert (wt / "a.txt").read_text() == "a\n"
        assert git(wt, "rev-parse", "HEAD").strip() == base
        assert len(_registered_worktrees(repo_path)) == 1
    assert not wt.exists() and _registered_worktrees(repo_path) == []
    with pytest.raises(RuntimeError, match="boom"), gitops.temp_worktree(repo, "HEAD") as wt2:
        raise RuntimeError("boom")
    assert not wt2.exists() and _registered_worktrees(repo_path) == []


def test_worktree_of_a_killed_process_is_pruned(repo_path: Path) -> None:
    script = textwrap.dedent(
        f"""
        import sys, time
        from harness import gitops
        repo = gitops.open_repo({str(repo_path)!r})
        with gitops.temp_worktree(repo, "HEAD") as wt:
            print(wt, flush=True)
            time.sleep(60)
        """
    )
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    try:
        wt = Path(proc.stdout.readline().strip())  # type: ignore[union-attr]
        assert wt.is_dir()
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        proc.stdout.close()  # type: ignore[union-attr]
    assert _registered_worktrees(repo_path) == [str(wt)]
    removed = gitops.prune_stale_worktrees(gitops.open_repo(repo_path))
    assert removed == [wt]
    assert _registered_worktrees(repo_path) == [] and not wt.parent.exists()


def _tree_files(root: Path) -> dict[str, bytes]:
    return {
        p.relative_to(root).as_posix(): p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file() and ".git" not in p.relative_to(root).parts
    }


def test_copy_working_files_makes_worktree_match(repo_path: Path) -> None:
    repo = gitops.open_repo(repo_path)
    _dirty(repo_path)
    git(repo_path, "rm", "-q", "sub/deep/d.txt")
    (repo_path / "run.sh").write_text("#!/bin/sh\n")
    (repo_path / "run.sh").chmod(0o755)
    os.symlink("a.txt", repo_path / "link")
    changes = gitops.working_changes(repo)
    with gitops.temp_worktree(repo, "HEAD") as wt:
        gitops.copy_working_files(repo_path, wt, changes)
        expected = {k: v for k, v in _tree_files(repo_path).items() if k != "debug.log"}
        assert _tree_files(wt) == expected
        assert os.access(wt / "run.sh", os.X_OK) and os.readlink(wt / "link") == "a.txt"
        assert not (wt / "sub" / "deep").exists()  # emptied by the deletion, as a checkout would be


def test_folder_replaced_by_file_of_same_name_round_trips(repo_path: Path) -> None:
    repo = gitops.open_repo(repo_path)
    git(repo_path, "rm", "-rq", "sub")
    (repo_path / "sub").write_text("now a file\n")
    changes = gitops.working_changes(repo)
    assert [(c.path, c.kind) for c in changes] == [
        ("sub", "added"), ("sub/c.txt", "deleted"), ("sub/deep/d.txt", "deleted")
    ]
    with gitops.temp_worktree(repo, "HEAD") as wt:
        gitops.copy_working_files(repo_path, wt, changes)
        assert (wt / "sub").read_text() == "now a file\n"
    gitops.discard_changes(repo, changes)
    assert gitops.is_clean(repo) and (repo_path / "sub" / "deep" / "d.txt").read_text() == "d\n"


def test_write_files_at_rev_reproduces_the_commit(repo_path: Path) -> None:
    repo = gitops.open_repo(repo_path)
    base = gitops.head_sha(repo)
    _dirty(repo_path)
    (repo_path / "run.sh").write_text("#!/bin/sh\n")
    (repo_path / "run.sh").chmod(0o755)
    git(repo_path, "add", "-A")
    git(repo_path, "commit", "-q", "-m", "work")
    head = gitops.head_sha(repo)
    (repo_path / "a.txt").write_text("uncommitted edit must not leak\n")
    changes = gitops.changes_between(repo, base, head)
    with gitops.temp_worktree(repo, base) as wt, gitops.temp_worktree(repo, head) as expected:
        gitops.write_files_at_rev(repo, head, changes, wt)
        assert _tree_files(wt) == _tree_files(expected)
        assert os.access(wt / "run.sh", os.X_OK)
    with pytest.raises(GitError, match="does not exist at"):
        gitops.write_files_at_rev(repo, base, [Change("new.txt", "added", 1)], repo_path)


def _state(repo_path: Path) -> tuple[bytes, str, str, str]:
    return (
        (repo_path / ".git" / "index").read_bytes(),
        git(repo_path, "rev-parse", "HEAD"),
        git(repo_path, "symbolic-ref", "HEAD"),
        hashlib.sha256(repr(sorted(_tree_files(repo_path).items())).encode()).hexdigest(),
    )


def test_snapshot_to_ref_records_tree_without_touching_anything(repo_path: Path) -> None:
    repo = gitops.open_repo(repo_path)
    _dirty(repo_path)
    before = _state(repo_path)
    status_before = git(repo_path, "status", "--porcelain")
    head = gitops.head_sha(repo)
    sha = gitops.snapshot_to_ref(repo, "refs/harness/failed/ITEM-1/2", "attempt 2", identity=IDENTITY)
    assert _state(repo_path) == before
    assert git(repo_path, "status", "--porcelain") == status_before
    assert git(repo_path, "rev-parse", "refs/harness/failed/ITEM-1/2").strip() == sha
    assert git(repo_path, "rev-parse", f"{sha}^").strip() == head
    files = set(git(repo_path, "ls-tree", "-r", "--name-only", sha).split())
    assert files == {
        ".gitignore", "README.md", "a.txt", "new.txt", "staged.txt", "sub/c2.txt", "sub/deep/d.txt"
    }
    assert git(repo_path, "show", f"{sha}:a.txt") == "a changed\n"
    assert git(repo_path, "log", "-1", "--format=%an <%ae>|%s", sha).strip() == (
        "Harness Bot <bot@example.invalid>|attempt 2"
    )
    with pytest.raises(GitError, match="not a valid full ref name"):
        gitops.snapshot_to_ref(repo, "refs/bad..name", "x", identity=IDENTITY)


def test_discard_changes_restores_head(repo_path: Path) -> None:
    repo = gitops.open_repo(repo_path)
    _dirty(repo_path)
    (repo_path / "newdir" / "inner").mkdir(parents=True)
    (repo_path / "newdir" / "inner" / "f.txt").write_text("x\n")
    gitops.discard_changes(repo, gitops.working_changes(repo))
    assert gitops.is_clean(repo)
    assert not (repo_path / "newdir").exists() and (repo_path / "debug.log").exists()
    assert (repo_path / "a.txt").read_text() == "a\n" and (repo_path / "sub" / "c.txt").read_text() == "c\n"


def test_discard_changes_only_touches_given_paths(repo_path: Path) -> None:
    repo = gitops.open_repo(repo_path)
    _dirty(repo_path)
    gitops.discard_changes(repo, [Change("a.txt", "modified", 0), Change("new.txt", "added", 0)])
    assert gitops.is_clean(repo, ["a.txt", "new.txt"])
    assert set(_changes(repo_path)) == {"b.txt", "staged.txt", "sub/c.txt", "sub/c2.txt"}


def test_commit_paths_commits_exactly_those_paths(repo_path: Path) -> None:
    repo = gitops.open_repo(repo_path)
    (repo_path / "README.md").write_text("staged but not ours\n")
    git(repo_path, "add", "README.md")
    (repo_path / "sub" / "c.txt").write_text("modified, not ours\n")
    (repo_path / "a.txt").write_text("ours\n")
    (repo_path / "b.txt").unlink()
    (repo_path / "new.txt").write_text("ours too\n")
    (repo_path / "debug.log").write_text("ignored but named explicitly\n")
    head = gitops.head_sha(repo)
    sha = gitops.commit_paths(
        repo, ["a.txt", "b.txt", "new.txt", "debug.log"], "Fix ITEM-1\n\nBody text.",
        identity=IDENTITY, trailers=[("Harness-Item", "ITEM-1"), ("Harness-Attempt", "1")],
    )
    assert gitops.head_sha(repo) == sha and git(repo_path, "rev-parse", "main").strip() == sha
    assert git(repo_path, "symbolic-ref", "HEAD").strip() == "refs/heads/main"
    assert git(repo_path, "diff-tree", "-r", "--no-renames", "--name-status", head, sha).split() == [
        "M", "a.txt", "D", "b.txt", "A", "debug.log", "A", "new.txt"
    ]
    assert git(repo_path, "log", "-1", "--format=%an <%ae>|%cn", sha).strip() == (
        "Harness Bot <bot@example.invalid>|Harness Bot"
    )
    assert git(repo_path, "log", "-1", "--format=%B", sha) == (
        "Fix ITEM-1\n\nBody text.\n\nHarness-Item: ITEM-1\nHarness-Attempt: 1\n\n"
    )
    # The unrelated staged change is still staged, the unrelated edit still unstaged; ours are clean.
    assert git(repo_path, "diff", "--cached", "--name-only").split() == ["README.md"]
    assert git(repo_path, "diff", "--name-only").split() == ["sub/c.txt"]
    assert gitops.is_clean(repo, ["a.txt", "b.txt", "new.txt"])
    assert gitops.trailers_of(repo, sha) == {"Harness-Item": ["ITEM-1"], "Harness-Attempt": ["1"]}


def test_commit_paths_works_on_detached_head(repo_path: Path) -> None:
    repo = gitops.open_repo(repo_path)
    git(repo_path, "checkout", "-q", "--detach")
    (repo_path / "a.txt").write_text("detached\n")
    sha = gitops.commit_paths(repo, ["a.txt"], "on detached head", identity=IDENTITY)
    assert gitops.head_sha(repo) == sha
    assert git(repo_path, "rev-parse", "main").strip() != sha


@pytest.mark.parametrize(
    ("paths", "trailers", "match"),
    [
        (["sub"], [], "takes file paths, got folders: sub"),
        (["ghost.txt"], [], "not in the working tree and not in HEAD"),
        (["a.txt"], [], "nothing to commit"),
        (["a.txt"], [("Bad Key", "v")], "trailer key"),
        (["a.txt"], [("Key", "two\nlines")], "single-line"),
        (["../x"], [], "not a repo-relative file path"),
        ([], [], "at least one path"),
    ],
)
def test_commit_paths_rejects_bad_requests(
    repo_path: Path, paths: list[str], trailers: list[tuple[str, str]], match: str
) -> None:
    repo = gitops.open_repo(repo_path)
    if trailers:
        (repo_path / "a.txt").write_text("changed\n")
    head = gitops.head_sha(repo)
    with pytest.raises(GitError, match=match):
        gitops.commit_paths(repo, paths, "msg", identity=IDENTITY, trailers=trailers)
    assert gitops.head_sha(repo) == head


def test_find_commits_with_trailer_is_exact_and_newest_first(repo_path: Path) -> None:
    repo = gitops.open_repo(repo_path)
    shas = []
    for i, item in enumerate(["ITEM-1", "ITEM-10", "ITEM-1"]):
        (repo_path / "a.txt").write_text(f"{i}\n")
        shas.append(gitops.commit_paths(repo, ["a.txt"], f"c{i}", identity=IDENTITY,
                                        trailers=[("Harness-Item", item)]))
    (repo_path / "a.txt").write_text("mention\n")
    gitops.commit_paths(repo, ["a.txt"], "subject says Harness-Item: ITEM-1, no trailer", identity=IDENTITY)
    assert gitops.find_commits_with_trailer(repo, "Harness-Item", "ITEM-1") == [shas[2], shas[0]]
    assert gitops.find_commits_with_trailer(repo, "harness-item", "ITEM-10") == [shas[1]]
    assert gitops.find_commits_with_trailer(repo, "Harness-Item", "ITEM-2") == []


def test_find_commits_with_trailer_is_fast_on_thousands_of_commits(repo_path: Path) -> None:
    n = 3000
    stream = []
    for i in range(n):
        msg = f"commit {i}\n\nHarness-Item: ITEM-{i % 100}\nHarness-Attempt: {i}\n".encode()
        stream.append(b"commit refs/heads/main\n")
        stream.append(f"committer T <t@example.invalid> {1_700_000_000 + i} +0000\n".encode())
        stream.append(b"data %d\n%s\n" % (len(msg), msg))
        if i == 0:
            stream.append(b"from refs/heads/main^0\n")
        stream.append(f"M 100644 inline f.txt\ndata {len(str(i))}\n{i}\n".encode())
    subprocess.run(["git", "fast-import", "--quiet"], cwd=repo_path, input=b"".join(stream), check=True)
    git(repo_path, "reset", "-q", "--hard")
    repo = gitops.open_repo(repo_path)
    start = time.perf_counter()
    found = gitops.find_commits_with_trailer(repo, "Harness-Item", "ITEM-42")
    elapsed = time.perf_counter() - start
    assert len(found) == n // 100
    newest = {"Harness-Item": ["ITEM-42"], "Harness-Attempt": [str(n - 58)]}
    assert gitops.trailers_of(repo, found[0]) == newest
    assert elapsed < 2.0, f"trailer search took {elapsed:.2f}s over {n} commits"


def test_numstat_counts_working_tree_against_base(repo_path: Path) -> None:
    repo = gitops.open_repo(repo_path)
    (repo_path / "a.txt").write_text("a\nmore\nlines\n")
    (repo_path / "b.txt").unlink()
    (repo_path / "new.txt").write_text("1\n2\n")
    (repo_path / "blob.bin").write_bytes(b"\0\1\2")
    assert gitops.numstat(repo, "HEAD") == (4, 4, 1)
    assert gitops.numstat(repo, "HEAD", ["a.txt"]) == (1, 2, 0)


def test_git_failures_carry_command_stderr_and_advice(repo_path: Path) -> None:
    repo = gitops.open_repo(repo_path)
    (repo_path / "a.txt").write_text("changed\n")
    (repo_path / ".git" / "index.lock").write_text("")
    with pytest.raises(GitError) as info:
        gitops.discard_changes(repo, [Change("a.txt", "modified", 8)])
    message = str(info.value)
    assert "`git checkout HEAD -- a.txt` failed" in message
    assert "index.lock" in message and "Another git process" in message
