"""Untrusted text to safe HTML: item prose as Markdown, a change's diff with syntax colours.

Agents write titles, prose and logs, so every piece of text reaches a page escaped by a library that
escapes, never by hand: markdown-it-py with raw HTML disabled (`<script>` in prose is shown as text),
and pygments for diffs. Images are disabled (a Markdown image would make the page load a URL: no request
may leave the site); their source is shown as a link instead. Every link target goes through the
caller's `resolve`, which returns the href to use or None; a link without an href is inert text. Links
with a scheme other than http, https and mailto never reach `resolve` (markdown-it refuses `javascript:`
and friends).
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from functools import lru_cache

from markdown_it import MarkdownIt
from markdown_it.token import Token
from markupsafe import Markup
from pygments import highlight
from pygments.formatters import HtmlFormatter
from pygments.lexers import DiffLexer

DIFF_CSS_CLASS = "diff"
EXTERNAL_SCHEMES = ("http://", "https://", "mailto:")

LinkResolver = Callable[[str], "str | None"]


@lru_cache(maxsize=1)
def _markdown() -> MarkdownIt:
    md = MarkdownIt("commonmark", {"html": False, "linkify": False, "typographer": False})
    md.disable("image")
    return md


def _fix_links(tokens: Sequence[Token], resolve: LinkResolver) -> None:
    for token in tokens:
        if token.children:
            _fix_links(token.children, resolve)
        if token.type != "link_open":
            continue
        href = str(token.attrGet("href") or "")
        if href.lower().startswith(EXTERNAL_SCHEMES):
            token.attrSet("rel", "noopener noreferrer nofollow")
            continue
        target = resolve(href)
        if target is None:
            token.attrs.pop("href", None)
            token.attrSet("class", "unlinked")
            token.attrSet("title", f"not linked: {href} is not a file of this repository")
        else:
            token.attrSet("href", target)


def markdown_html(text: str, resolve: LinkResolver) -> Markup:
    """CommonMark `text` as HTML (raw HTML shown as text, images as links, links through `resolve`)."""
    md = _markdown()
    tokens = md.parse(text)
    _fix_links(tokens, resolve)
    return Markup(md.renderer.render(tokens, md.options, {}))


@lru_cache(maxsize=1)
def _formatter() -> HtmlFormatter:
    return HtmlFormatter(cssclass=DIFF_CSS_CLASS, nowrap=False)


def diff_html(diff: str) -> Markup:
    """A unified diff as a `<div class="diff"><pre>...` block with pygments' classes (escaped by pygments)."""
    return Markup(highlight(diff, DiffLexer(), _formatter()))


def diff_css() -> str:
    """The stylesheet rules for `diff_html`'s classes."""
    return _formatter().get_style_defs(f".{DIFF_CSS_CLASS}")
