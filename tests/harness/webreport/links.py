"""Reading a built site without a browser: the links, sources and ids of its pages."""
from __future__ import annotations

from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urlsplit


class _Refs(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.refs: list[tuple[str, str]] = []
        self.ids: set[str] = set()
        self.tags: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        for name, value in attrs:
            if name in ("href", "src") and value is not None:
                self.refs.append((tag, value))
            if name == "id" and value:
                self.ids.add(value)


def page_refs(page: Path) -> _Refs:
    parser = _Refs()
    parser.feed(page.read_text(encoding="utf-8"))
    return parser


def broken_links(site: Path) -> list[str]:
    """Every relative href/src of every page that names no existing file (or no id on the target page)."""
    broken = []
    for page in sorted(site.rglob("*.html")):
        for tag, ref in page_refs(page).refs:
            parts = urlsplit(ref)
            if parts.scheme or parts.netloc:
                continue
            target = (page.parent / unquote(parts.path)).resolve() if parts.path else page
            if not target.exists():
                broken.append(f"{page.relative_to(site)}: <{tag}> {ref} -> {target} does not exist")
            elif parts.fragment and target.suffix == ".html" and unquote(parts.fragment) not in page_refs(
                    target).ids:
                broken.append(f"{page.relative_to(site)}: {ref}: no id {parts.fragment!r} on the target page")
    return broken


def external_refs(site: Path) -> list[str]:
    """Every href/src with a scheme or a host: what a page could load or open outside the site."""
    return [f"{page.relative_to(site)}: {ref}" for page in sorted(site.rglob("*.html"))
            for _, ref in page_refs(page).refs if urlsplit(ref).scheme or urlsplit(ref).netloc]
