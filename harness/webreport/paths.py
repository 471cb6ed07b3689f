"""Where the site's files live, and how a page links to a file of the repository without leaving it.

Layout of the output folder (all links between pages are relative, so the site works from file:// and
from any static server):

    index.html            every item, filters, counts, the attempts timeline
    items/<ID>.html       one page per item (ids match [A-Z0-9][A-Z0-9._-]*: safe file names)
    selectors.html        every registered selector's results across runs
    assets/               the stylesheet and the filter script
    .harness-report       marker: this folder was written by `harness report` and may be replaced whole

Evidence is linked where it lies in the repository, by a relative path from the page, percent-encoded.
A path read from the ledger or from attempt.json is untrusted text: it is linked only when it is relative,
stays inside the repository after `..` is resolved, avoids `.git`, and (for folders) does not reach
outside through a symlink. Anything else is shown as plain text.
"""
from __future__ import annotations

import os
import posixpath
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from urllib.parse import quote, unquote

INDEX_PAGE = "index.html"
SELECTORS_PAGE = "selectors.html"
ITEMS_DIR = "items"
ASSETS_DIR = "assets"
MARKER = ".harness-report"
DEFAULT_OUT = "plans/report"
_REFUSED = re.compile(r"[\x00-\x1f\\]")  # control characters and backslashes


def item_page(item_id: str) -> str:
    """The site-relative path of an item's page."""
    return f"{ITEMS_DIR}/{item_id}.html"


def clean_relative(text: str, base: str = "") -> str | None:
    """`text` as a normalised repo-relative posix path (read relative to the repo-relative folder `base`),
    or None when it is absolute, empty, holds control characters or backslashes, climbs out of the
    repository, or touches `.git`. Purely lexical: see `inside` for symlinks."""
    if not text or _REFUSED.search(text) or text.startswith("/"):
        return None
    if len(text) > 1 and text[1] == ":":  # a drive letter
        return None
    joined = posixpath.normpath(posixpath.join(base, text)) if base else posixpath.normpath(text)
    if joined in (".", "..") or joined.startswith(("../", "/")):
        return None
    if ".git" in joined.split("/"):
        return None
    return joined


def inside(root: Path, rel: str) -> bool:
    """Whether `root/rel`, symlinks resolved, is inside `root` (it need not exist)."""
    real_root = _real_dir(str(root))
    real = _real(os.path.join(real_root, rel))
    return real == real_root or real.startswith(real_root + os.sep)


@lru_cache(maxsize=65536)
def _real_dir(path: str) -> str:
    return _real(path)


@lru_cache(maxsize=4096)
def _quoted(name: str) -> str:
    """quote(name), remembered: every evidence folder holds the same few file names."""
    return quote(name)


def forget_resolved() -> None:
    """Forget the remembered folders: a build starts from what the file system says now."""
    _real_dir.cache_clear()


def _real(path: str) -> str:
    """os.path.realpath, one path component at a time with every folder's answer remembered: evidence
    folders share their parents, and realpath costs one lstat per component of the whole path."""
    parent, name = os.path.split(os.path.normpath(path))
    if not name or not parent or parent == path:
        return os.path.realpath(path)
    joined = os.path.join(_real_dir(parent), name)
    return os.path.realpath(joined) if os.path.islink(joined) else joined


@dataclass(frozen=True)
class Linker:
    """Relative hrefs from a page of the site (written to `out`) to other pages and to repository files."""

    root: Path
    out: Path
    site_to_repo: str = field(init=False)
    linked: set[str] = field(default_factory=set, compare=False)  # every repository file linked so far
    _prefixes: dict[tuple[int, str], str] = field(default_factory=dict, compare=False, repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "site_to_repo", Path(os.path.relpath(self.root, self.out)).as_posix())

    def page(self, from_page: str, to_page: str, fragment: str = "") -> str:
        """Href from the site page `from_page` to the site page `to_page` (both site-relative; pages lie at
        the top of the site or one folder down)."""
        if posixpath.dirname(from_page) == posixpath.dirname(to_page):
            rel = posixpath.basename(to_page)
        else:
            rel = "../" * from_page.count("/") + to_page
        return quote(rel) + (f"#{quote(fragment)}" if fragment else "")

    def repo_file(self, from_page: str, rel: str) -> str:
        """Href from the site page `from_page` to the repo-relative path `rel` (checked by the caller)."""
        self.linked.add(rel)
        up = "../" * from_page.count("/")
        return quote(up + posixpath.normpath(posixpath.join(self.site_to_repo, rel)))

    def folder_file(self, from_page: str, folder: str, name: str) -> str:
        """`repo_file` of `folder/name`, the folder's href worked out once per page depth: a report of
        20,000 attempts links 200,000 evidence files."""
        self.linked.add(f"{folder}/{name}")
        key = (from_page.count("/"), folder)
        prefix = self._prefixes.get(key)
        if prefix is None:
            prefix = self._prefixes[key] = quote("../" * key[0] + posixpath.normpath(
                posixpath.join(self.site_to_repo, folder)))
        return f"{prefix}/{_quoted(name)}"

    def resolver(self, from_page: str, base: str) -> Callable[[str], str | None]:
        """Resolves a link target written in a file of the repo-relative folder `base` (Markdown prose:
        the ledger's folder; a Spec field: the root) to an href from `from_page`, or None when the target
        is not an existing file or folder inside the repository. `#fragment` alone stays as it is."""
        def resolve(href: str) -> str | None:
            if href.startswith("#"):
                return href
            path, _, fragment = href.partition("#")
            rel = clean_relative(unquote(path.partition("?")[0]), base)
            if rel is None or not (self.root / rel).exists() or not inside(self.root, rel):
                return None
            return self.repo_file(from_page, rel) + (f"#{quote(fragment)}" if fragment else "")

        return resolve
