"""The output folder is replaced whole, so only a folder of the report's own may be; a failed build
leaves the old site as it was."""
from __future__ import annotations

from pathlib import Path

import pytest

from harness.webreport.paths import MARKER
from harness.webreport.publish import ReportError, Staging, check_out_dir


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    root = tmp_path / "repo"
    (root / ".git").mkdir(parents=True)
    (root / "docs").mkdir()
    (root / "docs/keep.md").write_text("precious")
    return root


@pytest.mark.parametrize(("out", "message"), [
    (".", "is the repository or holds it"),
    ("..", "is the repository or holds it"),
    (".git/report", "inside the repository's .git folder"),
    ("docs", "already holds files that `harness report` did not write (no .harness-report marker)"),
    ("docs/keep.md", "is a file"),
])
def test_folders_that_are_not_the_report_s_own_are_refused(repo: Path, out: str, message: str) -> None:
    with pytest.raises(ReportError, match=message.replace("(", r"\(").replace(")", r"\)")):
        check_out_dir(repo / out, repo)
    assert (repo / "docs/keep.md").read_text() == "precious"


def test_new_empty_and_marked_folders_are_accepted(repo: Path) -> None:
    assert check_out_dir(repo / "plans/report", repo) == repo / "plans/report"
    (repo / "empty").mkdir()
    assert check_out_dir(repo / "empty", repo) == repo / "empty"
    (repo / "old").mkdir()
    (repo / "old" / MARKER).write_text("x")
    (repo / "old" / "index.html").write_text("old")
    assert check_out_dir(repo / "old", repo) == repo / "old"


def test_publish_replaces_the_site_and_leaves_nothing_beside_it(tmp_path: Path) -> None:
    out = tmp_path / "site"
    for version in ("one", "two"):
        staging = Staging(out)
        staging.write("index.html", version)
        staging.write(f"items/{version}.html", version)
        staging.publish()
    assert (out / "index.html").read_text() == "two" and (out / MARKER).is_file()
    assert sorted(p.name for p in (out / "items").iterdir()) == ["two.html"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["site"]
    assert oct(out.stat().st_mode & 0o777) == "0o755"


def test_a_discarded_build_leaves_the_old_site(tmp_path: Path) -> None:
    out = tmp_path / "site"
    staging = Staging(out)
    staging.write("index.html", "old")
    staging.publish()
    staging = Staging(out)
    staging.write("index.html", "half")
    staging.discard()
    assert (out / "index.html").read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["site"]
