"""Contents at a revision and the lines a change added or modified."""
from __future__ import annotations

from pathlib import Path

from harness import gitops
from tests.conftest import git


def test_blob_text_and_missing_paths(make_repo) -> None:
    repo = make_repo({"a.py": "one\ntwo\n", "d/b.txt": "b\n"})
    r = gitops.open_repo(repo)
    assert gitops.blob_text(r, "HEAD", "a.py") == "one\ntwo\n"
    assert gitops.blob_text(r, "HEAD", "nope.py") is None
    assert gitops.blob_text(r, "HEAD", "d") is None  # a folder is not a file
    assert gitops.blob_bytes(r, "HEAD", "d/b.txt") == b"b\n"


def test_changed_lines_of_the_working_tree_and_of_commits(make_repo) -> None:
    repo = make_repo({"a.py": "1\n2\n3\n4\n", "gone.py": "x\n"})
    r = gitops.open_repo(repo)
    base = gitops.head_sha(r)
    (repo / "a.py").write_text("1\nTWO\n3\n4\nfive\nsix\n")
    (repo / "new.py").write_text("n1\nn2\n")
    (repo / "gone.py").unlink()
    lines = gitops.changed_lines(r, base, None, ["a.py", "new.py", "gone.py"])
    assert lines == {"a.py": frozenset({2, 5, 6}), "new.py": frozenset({1, 2}), "gone.py": frozenset()}
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "change")
    assert gitops.changed_lines(r, base, "HEAD", ["a.py", "new.py"]) == {
        "a.py": frozenset({2, 5, 6}), "new.py": frozenset({1, 2})}
    assert gitops.changed_lines(r, base, "HEAD", []) == {}


def test_changed_lines_leaves_the_index_alone(make_repo) -> None:
    repo: Path = make_repo({"a.py": "1\n"})
    r = gitops.open_repo(repo)
    (repo / "b.py").write_text("b\n")
    before = git(repo, "status", "--porcelain")
    gitops.changed_lines(r, "HEAD", None, ["b.py"])
    assert git(repo, "status", "--porcelain") == before == "?? b.py\n"


def test_reads_from_several_threads_at_once_stay_whole(make_repo, tmp_path: Path) -> None:
    """Overlapping stages read blobs (integrity, mutation) while RED writes files at a revision; gitpython's
    one cat-file process per Repo garbled such reads ("Non-hexadecimal digit found") or hung them."""
    import threading

    files = {f"pkg/m{i}.py": f"value = {i}\n" * 50 for i in range(20)}
    repo = make_repo(files)
    r = gitops.open_repo(repo)
    changes = [gitops.Change(path, "modified", 1) for path in files]
    errors: list[BaseException] = []

    def reader() -> None:
        try:
            for _ in range(10):
                for path, text in files.items():
                    assert gitops.blob_text(r, "HEAD", path) == text
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    def writer(n: int) -> None:
        try:
            for _ in range(10):
                gitops.write_files_at_rev(r, "HEAD", changes, tmp_path / f"out{n}")
                assert gitops.changes_between(r, "HEAD", "HEAD") == []
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=reader, daemon=True) for _ in range(2)] + [
        threading.Thread(target=writer, args=(n,), daemon=True) for n in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert not any(t.is_alive() for t in threads), "the readers deadlocked"
    assert errors == []
    assert (tmp_path / "out0" / "pkg" / "m3.py").read_text() == files["pkg/m3.py"]
