"""Prose and diffs become HTML through libraries that escape; nothing in them can run or load."""
from __future__ import annotations

from harness.webreport.text import diff_css, diff_html, markdown_html


def _resolve(href: str) -> str | None:
    return {"specs/ledger.md": "../../../docs/specs/ledger.md"}.get(href)


def test_raw_html_is_shown_as_text() -> None:
    html = markdown_html("<script>alert(1)</script> and <b onclick='x'>bold</b>\n\n<div>block</div>", _resolve)
    assert "<script" not in html and "<b " not in html and "<div>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html and "&lt;div&gt;block&lt;/div&gt;" in html


def test_markdown_still_renders() -> None:
    html = markdown_html("A **bold** `code` word.\n\n- one\n- two\n\n```py\nx < 1\n```", _resolve)
    assert "<strong>bold</strong>" in html and "<code>code</code>" in html and "<li>one</li>" in html
    assert "x &lt; 1" in html


def test_images_never_load() -> None:
    html = markdown_html("![tracker](http://example.invalid/pixel.png)", _resolve)
    assert "<img" not in html
    assert '<a href="http://example.invalid/pixel.png" rel="noopener noreferrer nofollow">tracker</a>' in html


def test_links_go_through_the_resolver() -> None:
    html = markdown_html("[spec](specs/ledger.md) [gone](../../etc/passwd) [js](javascript:alert(1))", _resolve)
    assert '<a href="../../../docs/specs/ledger.md">spec</a>' in html
    assert '<a class="unlinked" title="not linked: ../../etc/passwd is not a file of this repository">gone</a>' \
        in html
    assert "javascript:" not in html.replace("[js](javascript:alert(1))", "")  # left as plain text
    assert "[js](javascript:alert(1))" in html


def test_diffs_are_escaped_and_coloured() -> None:
    html = diff_html("diff --git a/x b/x\n--- a/x\n+++ b/x\n@@ -1 +1 @@\n-<script>alert(1)</script>\n+ok\n")
    assert "<script" not in html and "&lt;script&gt;" in html
    assert 'class="diff"' in html and 'class="gi"' in html and 'class="gd"' in html
    assert ".diff .gi" in diff_css()
