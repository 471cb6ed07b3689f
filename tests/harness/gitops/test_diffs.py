from __future__ import annotations

from pathlib import Path

import pytest

from harness import gitops
from harness.errors import GitError
from tests.conftest import git, write_files


def commit(repo: Path, files: dict[str, str], message: str) -> str:
    write_files(repo, files)
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", message)
    return git(repo, "rev-parse", "HEAD").strip()


def test_patches_of_many_commits_in_one_answer_with_paths_left_out(repo_path: Path) -> None:
    repo = gitops.open_repo(repo_path)
    base = gitops.head_sha(repo)
    change = commit(repo_path, {"a.txt": "a\nmore\n", "plans/active/X/log.txt": "evidence\n",
                                "docs/fix_plan.md": "ledger\n", "sp ace.txt": "s\n"}, "change")
    only_owned = commit(repo_path, {"plans/active/X/log2.txt": "more evidence\n"}, "evidence only")
    found = gitops.patches(repo, [change, only_owned[:12], "no-such-rev", "-rf", "a..b", "HEAD"],
                           exclude=["plans/active", "docs/fix_plan.md"])
    assert set(found) == {change, only_owned[:12], "HEAD"}
    patch = found[change]
    assert patch.commit == change and patch.files == 2 and not patch.cut
    assert "+more" in patch.text and "sp ace.txt" in patch.text
    assert "evidence" not in patch.text and "ledger" not in patch.text
    assert found[only_owned[:12]].text == "" and found["HEAD"].commit == only_owned
    assert git(repo_path, "rev-parse", "HEAD").strip() == only_owned and base != change


def test_long_patches_are_cut_at_a_line_end(repo_path: Path) -> None:
    repo = gitops.open_repo(repo_path)
    sha = commit(repo_path, {"big.txt": "".join(f"line {i}\n" for i in range(2000))}, "big")
    patch = gitops.patches(repo, [sha], max_chars=500)[sha]
    assert patch.cut and len(patch.text) <= 500 and patch.text.endswith("\n")


def test_range_patch_is_the_change_between_two_commits(repo_path: Path) -> None:
    repo = gitops.open_repo(repo_path)
    base = gitops.head_sha(repo)
    commit(repo_path, {"a.txt": "a1\n"}, "one")
    head = commit(repo_path, {"b.txt": "b2\n", "plans/active/e.txt": "e\n"}, "two")
    patch = gitops.range_patch(repo, base, head, exclude=["plans/active"])
    assert patch is not None and patch.commit == head and patch.files == 2
    assert "+a1" in patch.text and "+b2" in patch.text and "plans/active" not in patch.text
    assert gitops.range_patch(repo, "0" * 40, head) is None


def test_a_path_that_cannot_be_left_out_is_refused(repo_path: Path) -> None:
    with pytest.raises(GitError, match="cannot leave '/' out of a patch"):
        gitops.patches(gitops.open_repo(repo_path), ["HEAD"], exclude=["/"])
