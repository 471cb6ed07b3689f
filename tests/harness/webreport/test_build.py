"""The whole build over a real repository: every item, the failed attempt's reason, diffs, checksums,
escaping, links that resolve, and nothing that leaves the site."""
from __future__ import annotations

import html
import re
from pathlib import Path

from harness.webreport.build import build_site
from harness.webreport.paths import MARKER
from harness.workspace import open_workspace
from tests.harness.webreport.conftest import XSS_TITLE, Reviewed
from tests.harness.webreport.links import broken_links, external_refs, page_refs


def _text(page: Path) -> str:
    """The page's text as a reader sees it (tags dropped, entities decoded)."""
    return html.unescape(re.sub(r"<[^>]+>", " ", page.read_text(encoding="utf-8")))


def test_every_item_has_a_row_and_a_page(reviewed: Reviewed) -> None:
    index = (reviewed.site / "index.html").read_text()
    for item_id in ("CALC-001", "CALC-002", "XSS-001"):
        assert f'href="items/{item_id}.html"' in index
        assert (reviewed.site / "items" / f"{item_id}.html").is_file()
    assert (reviewed.site / MARKER).is_file()
    text = _text(reviewed.site / "index.html")
    assert "3 items, 3 attempts" in text
    assert "done 1" in " ".join(text.split()) and "in_progress 1" in " ".join(text.split())


def test_the_failed_attempt_shows_its_stage_and_reason(reviewed: Reviewed) -> None:
    text = " ".join(_text(reviewed.site / "items/CALC-002.html").split())
    assert "FAILED at red" in text
    assert "Failed at red: RED not proven: tests/test_sub.py is skipped without the change" in text
    assert "Change saved on refs/harness/failed/CALC-002/1 (not committed)" in text
    assert "+def sub(a, b):" in text and "@pytest.mark.skip('later')" in text
    assert "RED 1 skipped GREEN 1 skipped" in text  # GREEN ran beside RED in its own tree (concurrent stages)


def test_the_green_attempt_shows_counts_commits_checksums_and_its_diff(reviewed: Reviewed) -> None:
    page = reviewed.site / "items/CALC-001.html"
    text = " ".join(_text(page).split())
    assert "RED 1 error" in text and "GREEN 1 passed" in text  # test_mul cannot import mul at base
    assert "\u2713 matches its SHA256SUMS" in text
    assert "Change in recording commit" in text and "+def mul(a, b):" in text
    assert "fix_plan.md" not in _text(page).split("Change in recording commit")[1]  # the ledger is left out
    hrefs = [ref for tag, ref in page_refs(page).refs if tag == "a"]
    for name in ("analysis/summary.md", "attempt.json", "SHA256SUMS", "red/red.log", "green/green.junit.xml"):
        assert any(h.startswith("../../../plans/active/CALC-INIT/reports/") and h.endswith(name) for h in hrefs), name


def test_untrusted_text_is_escaped_and_inert(reviewed: Reviewed) -> None:
    for page in ("index.html", "items/XSS-001.html"):
        raw = (reviewed.site / page).read_text()
        assert "<script>alert" not in raw and "<img src=x" not in raw and "<b>raw" not in raw
        assert XSS_TITLE in _text(reviewed.site / page)  # shown as text
    page = reviewed.site / "items/XSS-001.html"
    assert all(tag != "img" for tag in page_refs(page).tags)
    assert not any(ref.startswith("javascript:") for _, ref in page_refs(page).refs)
    assert [tag for tag in page_refs(page).tags if tag == "script"] == []  # item pages run no script at all


def test_evidence_outside_the_repository_is_neither_read_nor_linked(reviewed: Reviewed) -> None:
    page = reviewed.site / "items/XSS-001.html"
    text = " ".join(_text(page).split())
    assert "outside the repository (not read)" in text
    assert "0123456789 not in this repository" in text
    refs = [ref for _, ref in page_refs(page).refs]
    assert not any("outside" in ref or "etc/passwd" in ref for ref in refs)
    assert any(ref.endswith("tests/test_calc.py") for ref in refs)  # the prose link inside the repository


def test_every_relative_link_resolves_and_none_leaves_the_site(reviewed: Reviewed) -> None:
    assert broken_links(reviewed.site) == []
    # The only absolute URL is the one an agent wrote in prose; it is a link, never loaded.
    assert external_refs(reviewed.site) == ["items/XSS-001.html: http://example.invalid/x.png"]
    for page in reviewed.site.rglob("*.html"):
        assert "Content-Security-Policy" in page.read_text()


def test_the_selectors_page_marks_the_regression(reviewed: Reviewed) -> None:
    text = " ".join(_text(reviewed.site / "selectors.html").split())
    assert "1 regression(s)" in text
    assert "tests/test_calc.py regression since 2025-01-04T000000Z" in text
    assert "[CALC-002] calc gains sub: FAILED at red" in text  # the run's commit, by its subject


def test_an_edited_evidence_file_shows_as_a_mismatch(reviewed: Reviewed) -> None:
    folder = next((reviewed.repo / "plans/active/CALC-INIT/reports").glob("*/*"))
    (folder / "red" / "red.log").write_text("rewritten after the fact\n")
    ws = open_workspace(reviewed.repo)
    build_site(ws, reviewed.site)
    text = " ".join(_text(reviewed.site / "items/CALC-001.html").split())
    assert "\u2717 does not match its SHA256SUMS" in text
    assert "checksum mismatch: red/red.log was changed after SHA256SUMS was written" in text


def test_a_rebuild_replaces_the_site_whole(reviewed: Reviewed) -> None:
    stale = reviewed.site / "items" / "GONE-001.html"
    stale.write_text("an item that left the ledger")
    result = build_site(open_workspace(reviewed.repo), reviewed.site)
    assert not stale.exists() and result.items == 3 and result.pages == 5
    leftovers = [p.name for p in reviewed.site.parent.iterdir() if p.name.startswith(".report.")]
    assert leftovers == []  # no staging or old folder left beside the site
