"""The built site in a real browser (Debian's chromium, driven by playwright; no browser is downloaded):
every item visible, the failed attempt's reason visible, every link resolves, no console error, no request
beyond the site's own files, and a script in a title stays text."""
from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import unquote, urlsplit

import pytest

from tests.harness.webreport.conftest import XSS_TITLE, Reviewed

pytestmark = pytest.mark.slow

# What this machine's closed network and a fresh profile need (playwright adds --headless and a new
# --user-data-dir itself): no background requests, no component updates, no GPU.
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run"]


def chromium_path() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    sync_api = pytest.importorskip("playwright.sync_api",
                                   reason="playwright is not installed (pip install -e '.[test]')")
    path = chromium_path()
    if path is None:
        pytest.skip("Debian's chromium is not installed (`apt-get install chromium`; .ci/run does it as root)")
    with sync_api.sync_playwright() as p:
        launched = p.chromium.launch(executable_path=path, args=CHROMIUM_ARGS)
        yield launched
        launched.close()


class Visit:
    """One page load, with everything the page did: console messages, errors, requests, dialogs."""

    def __init__(self, browser, url: str) -> None:
        self.page = browser.new_page()
        self.console: list[str] = []
        self.requests: list[str] = []
        self.dialogs: list[str] = []
        self.page.on("console", lambda m: self.console.append(f"{m.type}: {m.text}"))
        self.page.on("pageerror", lambda e: self.console.append(f"pageerror: {e}"))
        self.page.on("request", lambda r: self.requests.append(r.url))
        self.page.on("dialog", lambda d: (self.dialogs.append(d.message), d.dismiss()))
        self.page.goto(url, wait_until="load")

    def refs(self) -> list[str]:
        return self.page.eval_on_selector_all("[href], [src]", "els => els.map(e => e.href || e.src)")


def _pages(site: Path) -> list[Path]:
    return [site / "index.html", site / "selectors.html", *sorted((site / "items").glob("*.html"))]


def test_the_site_in_a_browser(browser, reviewed: Reviewed) -> None:
    problems: list[str] = []
    for path in _pages(reviewed.site):
        visit = Visit(browser, path.as_uri())
        name = path.relative_to(reviewed.site).as_posix()
        problems += [f"{name}: console {m}" for m in visit.console if m.startswith(("error", "pageerror"))]
        problems += [f"{name}: request {u}" for u in visit.requests if not u.startswith("file://")]
        problems += [f"{name}: dialog {d!r}" for d in visit.dialogs]
        for ref in visit.refs():
            parts = urlsplit(ref)
            if parts.scheme == "file" and not Path(unquote(parts.path)).exists():
                problems.append(f"{name}: link {ref} does not resolve")
            elif parts.scheme not in ("file", "http", "https"):
                problems.append(f"{name}: link {ref} has scheme {parts.scheme}")
        visit.page.close()
    assert problems == []


def test_every_item_is_visible_and_the_filters_work(browser, reviewed: Reviewed) -> None:
    visit = Visit(browser, (reviewed.site / "index.html").as_uri())
    page = visit.page
    rows = page.locator("#items tbody tr")
    assert rows.count() == 3
    for item_id in ("CALC-001", "CALC-002", "XSS-001"):
        assert page.locator("#items tbody td:first-child").get_by_role("link", name=item_id,
                                                                       exact=True).is_visible()
    assert page.get_by_text(XSS_TITLE, exact=True).is_visible()  # the title is text, not a script
    page.fill("input[name=q]", "sub")
    assert [i for i, r in enumerate(rows.all()) if r.is_visible()] == [1]
    assert page.inner_text("#shown") == "1 shown"
    page.fill("input[name=q]", "")
    page.uncheck("input[name=status][value=done]")
    assert page.inner_text("#shown") == "2 shown" and not rows.nth(0).is_visible()
    page.select_option("select[name=initiative]", "XSS-001")
    assert page.inner_text("#shown") == "1 shown" and rows.nth(2).is_visible()
    assert visit.dialogs == [] and [m for m in visit.console if m.startswith("error")] == []
    assert page.locator("svg.timeline rect.bar").count() >= 2  # GREEN and FAILED days


def test_the_failed_attempt_reason_is_visible(browser, reviewed: Reviewed) -> None:
    page = Visit(browser, (reviewed.site / "items/CALC-002.html").as_uri()).page
    reason = page.locator("#attempt-1 .why")
    assert reason.is_visible()
    assert "RED not proven: tests/test_sub.py is skipped without the change" in reason.inner_text()


def test_a_script_in_a_title_stays_text(browser, reviewed: Reviewed) -> None:
    visit = Visit(browser, (reviewed.site / "items/XSS-001.html").as_uri())
    assert visit.page.title().startswith(f"[XSS-001] {XSS_TITLE}")
    assert XSS_TITLE in visit.page.inner_text("h1")
    assert visit.page.evaluate("document.scripts.length") == 0
    assert visit.dialogs == []
