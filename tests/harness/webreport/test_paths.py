"""Paths from the ledger and attempt.json are linked only while they stay inside the repository."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

from harness.webreport.paths import Linker, clean_relative, forget_resolved, inside, item_page


@pytest.mark.parametrize(("text", "base", "expected"), [
    ("plans/active/X/reports/s/slug", "", "plans/active/X/reports/s/slug"),
    ("./a//b/../c.md", "", "a/c.md"),
    ("specs/ledger.md", "docs", "docs/specs/ledger.md"),
    ("../README.md", "docs", "README.md"),
    ("../../etc/passwd", "docs", None),
    ("../outside/x", "", None),
    ("/etc/passwd", "", None),
    ("C:/x", "", None),
    ("a\\..\\..\\b", "", None),
    ("a\nb", "", None),
    (".git/config", "", None),
    ("sub/.git/HEAD", "", None),
    ("..", "", None),
    ("", "", None),
])
def test_clean_relative(text: str, base: str, expected: str | None) -> None:
    assert clean_relative(text, base) == expected


def test_inside_follows_symlinks(tmp_path: Path) -> None:
    root, outside = tmp_path / "repo", tmp_path / "outside"
    (root / "plans/active").mkdir(parents=True)
    outside.mkdir()
    os.symlink(outside, root / "plans/active/escape")
    os.symlink(root / "plans", root / "alias")
    forget_resolved()
    assert inside(root, "plans/active/real-or-not")
    assert inside(root, "alias/active")
    assert not inside(root, "plans/active/escape")
    assert not inside(root, "plans/active/escape/deeper/still")


def test_inside_sees_a_folder_replaced_by_a_symlink_after_forgetting(tmp_path: Path) -> None:
    root, outside = tmp_path / "repo", tmp_path / "outside"
    (root / "plans/reports").mkdir(parents=True)
    outside.mkdir()
    forget_resolved()
    assert inside(root, "plans/reports/x")
    (root / "plans/reports").rmdir()
    os.symlink(outside, root / "plans/reports")
    forget_resolved()
    assert not inside(root, "plans/reports/x")


def test_linker_hrefs_are_relative_and_percent_encoded(tmp_path: Path) -> None:
    linker = Linker(tmp_path / "repo", tmp_path / "repo" / "plans" / "report")
    assert linker.page("index.html", item_page("A-1")) == "items/A-1.html"
    assert linker.page(item_page("A-1"), item_page("B-2")) == "B-2.html"
    assert linker.page(item_page("A-1"), "index.html") == "../index.html"
    assert linker.page("selectors.html", "selectors.html", "run-3") == "selectors.html#run-3"
    assert linker.repo_file("index.html", "plans/active/a b#c?.md") == "../../plans/active/a%20b%23c%3F.md"
    assert linker.repo_file(item_page("A-1"), "docs/x.md") == "../../../docs/x.md"
    assert linker.linked == {"plans/active/a b#c?.md", "docs/x.md"}


def test_a_site_outside_the_repository_links_back_into_it(tmp_path: Path) -> None:
    linker = Linker(tmp_path / "repo", tmp_path / "site")
    assert linker.repo_file(item_page("A-1"), "docs/x.md") == "../../repo/docs/x.md"


def test_resolver_links_existing_files_inside_only(tmp_path: Path) -> None:
    root = tmp_path / "repo"
    (root / "docs/specs").mkdir(parents=True)
    (root / "docs/specs/ledger.md").write_text("x")
    (root / "README.md").write_text("x")
    linker = Linker(root, root / "plans/report")
    resolve = linker.resolver(item_page("A-1"), "docs")
    assert resolve("specs/ledger.md#lines") == "../../../docs/specs/ledger.md#lines"
    assert resolve("../README.md") == "../../../README.md"
    assert resolve("#here") == "#here"
    assert resolve("specs/missing.md") is None
    assert resolve("../../../etc/passwd") is None
    assert resolve("/etc/passwd") is None
