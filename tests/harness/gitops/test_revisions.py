from __future__ import annotations

import subprocess
import time
from pathlib import Path

import pytest

from harness import gitops
from harness.errors import GitError
from tests.conftest import git
from tests.harness.gitops.helpers import IDENTITY


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


def test_ancestry_ranges_log_and_messages(repo_path: Path) -> None:
    repo = gitops.open_repo(repo_path)
    base = gitops.head_sha(repo)
    shas = []
    for i in range(2):
        (repo_path / "a.txt").write_text(f"{i}\n")
        shas.append(gitops.commit_paths(repo, ["a.txt"], f"step {i}\n\nbody {i}", identity=IDENTITY,
                                        trailers=[("Harness-Item", f"ITEM-{i}")]))
    assert gitops.is_ancestor(repo, base, "HEAD") and gitops.is_ancestor(repo, "HEAD", "HEAD")
    assert not gitops.is_ancestor(repo, "HEAD", base)
    with pytest.raises(GitError, match="does not name a commit"):
        gitops.is_ancestor(repo, "no-such-rev", "HEAD")
    assert gitops.commits_between(repo, base, "HEAD") == shas[::-1]
    assert gitops.commits_between(repo, "HEAD", "HEAD") == []
    assert gitops.log_lines(repo) == [f"{shas[1][:7]} step 1", f"{shas[0][:7]} step 0", f"{base[:7]} initial"]
    assert gitops.commit_message(repo, shas[1]) == "step 1\n\nbody 1\n\nHarness-Item: ITEM-1"


def test_opening_a_repository_without_git_on_path_is_a_git_error_with_advice(make_repo, tmp_path,
                                                                             monkeypatch) -> None:
    repo = make_repo({"README.md": "x\n"})
    monkeypatch.setenv("PATH", str(tmp_path / "no-bin"))
    with pytest.raises(GitError, match="install git and make sure it is on PATH"):
        gitops.open_repo(repo)
