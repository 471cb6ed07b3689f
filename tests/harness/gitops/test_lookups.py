from __future__ import annotations

from pathlib import Path

from harness import gitops
from tests.conftest import git
from tests.harness.gitops.helpers import IDENTITY


def test_trailer_index_answers_every_value_in_one_walk(repo_path: Path) -> None:
    repo = gitops.open_repo(repo_path)
    (repo_path / "a.txt").write_text("1\n")
    first = gitops.commit_paths(repo, ["a.txt"], "one", identity=IDENTITY,
                                trailers=[("Harness-Evidence", "plans/x/1"), ("Harness-Item", "A")])
    (repo_path / "a.txt").write_text("2\n")
    second = gitops.commit_paths(repo, ["a.txt"], "two", identity=IDENTITY,
                                 trailers=[("Harness-Evidence", "plans/x/2")])
    (repo_path / "a.txt").write_text("3\n")
    third = gitops.commit_paths(repo, ["a.txt"], "again\n\nharness-evidence: plans/x/1", identity=IDENTITY)
    index = gitops.trailer_index(repo, "Harness-Evidence")
    assert index == {"plans/x/1": (third, first), "plans/x/2": (second,)}
    for value, shas in index.items():
        assert list(shas) == gitops.find_commits_with_trailer(repo, "Harness-Evidence", value)
    assert gitops.trailer_index(repo, "Harness-Saved-Ref") == {}


def test_existing_commits_and_summaries(repo_path: Path) -> None:
    repo = gitops.open_repo(repo_path)
    head = gitops.head_sha(repo)
    blob = git(repo_path, "rev-parse", "HEAD:a.txt").strip()
    names = [head, head[:10], blob, "0" * 40, "xyz", "abc"]
    assert gitops.existing_commits(repo, names) == {head, head[:10]}
    summaries = gitops.commit_summaries(repo, [head[:10], blob, "0" * 40])
    assert list(summaries) == [head[:10]]
    assert summaries[head[:10]].sha == head and summaries[head[:10]].subject == "initial"
    assert summaries[head[:10]].date.startswith("2025-01-01T12:00:00")
