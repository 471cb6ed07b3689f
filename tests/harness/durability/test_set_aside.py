"""Files set aside while the stages run are put back exactly as they were, however the block ends, and by
`put_back` from the journal alone after a crash; the ledger's uncommitted attempt line is taken out by
`put_back_ledger` and nothing else."""
from __future__ import annotations

import os
from pathlib import Path

import git as gitpython
import pytest

from harness.durability.journal import Journal
from harness.durability.set_aside import keep_ledger, put_back, put_back_ledger, setting_aside
from harness.gitops import Change, working_changes
from tests.conftest import git
from tests.harness.project import make_project

BIG = bytes(range(256)) * 20
PERSON_ITEM = "\n## [CALC-009] calc gains pow\n- Status: pending\n- RED: tests/test_pow.py\n"


def _tree(make_repo) -> tuple[Path, gitpython.Repo, Journal, list[Change]]:
    """A repository with a new executable file in a new folder, a new symlink, an edited tracked file and a
    deleted tracked file, all uncommitted."""
    root = make_repo({"notes/kept.txt": "committed\n", "notes/gone.txt": "old\n", "README.md": "x\n"})
    (root / "data/deep").mkdir(parents=True)
    (root / "data/deep/big.bin").write_bytes(BIG)
    (root / "data/deep/big.bin").chmod(0o755)
    os.symlink("deep/big.bin", root / "data/link")
    (root / "notes/kept.txt").write_text("edited\n")
    (root / "notes/gone.txt").unlink()
    repo = gitpython.Repo(root)
    journal = Journal(root / ".git")
    journal.begin(item="X-1", attempt=1)
    return root, repo, journal, working_changes(repo)


def _assert_as_the_person_left_it(root: Path) -> None:
    assert (root / "data/deep/big.bin").read_bytes() == BIG
    assert (root / "data/deep/big.bin").stat().st_mode & 0o777 == 0o755
    assert os.readlink(root / "data/link") == "deep/big.bin"
    assert (root / "notes/kept.txt").read_text() == "edited\n"
    assert not (root / "notes/gone.txt").exists()
    assert git(root, "status", "--porcelain", "--untracked-files=all") == \
        " D notes/gone.txt\n M notes/kept.txt\n?? data/deep/big.bin\n?? data/link\n"


def test_within_the_block_the_tree_is_the_base_and_after_it_everything_is_back(make_repo) -> None:
    root, repo, journal, changes = _tree(make_repo)
    with setting_aside(repo, root, "HEAD", changes, journal):
        assert not (root / "data").exists()  # new files gone, with the folders they made
        assert (root / "notes/kept.txt").read_text() == "committed\n"
        assert (root / "notes/gone.txt").read_text() == "old\n"
        assert git(root, "status", "--porcelain", "--untracked-files=all") == ""
        assert [e["path"] for e in journal.load()["set_aside"]["files"]] == [c.path for c in changes]
    _assert_as_the_person_left_it(root)
    assert journal.load()["set_aside"] is None
    assert not (journal.keep_dir / "set-aside").exists()


def test_an_error_inside_the_block_still_puts_everything_back(make_repo) -> None:
    root, repo, journal, changes = _tree(make_repo)
    with pytest.raises(RuntimeError, match="a stage broke"), setting_aside(repo, root, "HEAD", changes, journal):
        (root / "data").mkdir()
        (root / "data/link").write_text("a stage wrote here\n")  # overwritten by what was set aside
        raise RuntimeError("a stage broke")
    _assert_as_the_person_left_it(root)


def test_after_a_crash_inside_the_block_the_journal_alone_puts_everything_back(make_repo) -> None:
    root, repo, journal, changes = _tree(make_repo)
    block = setting_aside(repo, root, "HEAD", changes, journal)
    block.__enter__()  # the process dies here: the block never ends
    assert not (root / "data").exists()
    assert put_back(Journal(root / ".git")) == tuple(c.path for c in changes)
    _assert_as_the_person_left_it(root)
    assert put_back(Journal(root / ".git")) == ()  # once only


def test_a_crash_halfway_through_moving_out_loses_nothing(make_repo) -> None:
    root, _repo, journal, changes = _tree(make_repo)
    journal.update(set_aside={"root": str(root), "files": [  # named in the journal, moved out only partly
        {"path": c.path, "had": "nothing" if c.kind == "deleted" else "file", "copy": str(n)}
        for n, c in enumerate(changes)]})
    (journal.keep_dir / "set-aside").mkdir(parents=True)
    os.replace(root / "data/deep/big.bin", journal.keep_dir / "set-aside" / "0")
    put_back(journal)
    _assert_as_the_person_left_it(root)


def _ledger_repo(make_repo) -> tuple[gitpython.Repo, Path, Journal]:
    repo = make_project(make_repo)
    journal = Journal(repo / ".git")
    journal.begin(item="CALC-001", attempt=1)
    return gitpython.Repo(repo), repo / "docs/fix_plan.md", journal


HARNESS_LINE = "\n### Attempts History\n- 2025-01-01T00:00:00Z · #1 · GREEN · 0123456789 · x/analysis/summary.md\n"


def test_a_ledger_edit_made_after_the_harness_wrote_its_line_is_kept_and_only_that_line_taken_out(
        make_repo) -> None:
    repo, ledger, journal = _ledger_repo(make_repo)
    before = ledger.read_bytes()
    written = before.replace(b"Prose about the item.\n", b"Prose about the item.\n" + HARNESS_LINE.encode())
    keep_ledger(journal, before, written)
    ledger.write_bytes(written + PERSON_ITEM.encode())  # the person added an item after the harness wrote
    assert put_back_ledger(repo, journal, ledger) is None
    assert ledger.read_bytes() == before + PERSON_ITEM.encode()
    assert journal.load()["ledger_kept"] is None
    assert put_back_ledger(repo, journal, ledger) is None  # done once: a second recovery changes nothing
    assert ledger.read_bytes() == before + PERSON_ITEM.encode()


def test_a_ledger_edit_that_conflicts_with_the_harness_line_is_left_as_it_is_and_named(make_repo) -> None:
    repo, ledger, journal = _ledger_repo(make_repo)
    before = ledger.read_bytes()
    written = before.replace(b"Prose about the item.\n", b"Prose about the item.\n" + HARNESS_LINE.encode())
    keep_ledger(journal, before, written)
    edited = written.replace(b"GREEN", b"GREEN (a person's comment)")
    ledger.write_bytes(edited)
    note = put_back_ledger(repo, journal, ledger)
    assert note is not None and "remove the interrupted attempt's line by hand" in note
    assert ledger.read_bytes() == edited


def test_without_a_harness_write_the_ledger_is_left_exactly_as_the_person_has_it(make_repo) -> None:
    repo, ledger, journal = _ledger_repo(make_repo)
    edited = ledger.read_text() + PERSON_ITEM
    ledger.write_text(edited)
    assert put_back_ledger(repo, journal, ledger) is None
    assert ledger.read_text() == edited
