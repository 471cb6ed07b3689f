"""One build of the site: gather what the repository holds, render every page into a staging folder
(the item pages through harness.webreport.item_pages, the index and selectors pages meanwhile), publish
it (harness.webreport.publish).

Every page carries a Content-Security-Policy that allows only the site's own stylesheet and script and no
connection, frame, form or image from anywhere: even a page whose escaping had failed could neither run
an injected script nor make a request.
"""
from __future__ import annotations

import posixpath
import time
from dataclasses import dataclass
from datetime import datetime
from importlib import resources
from pathlib import Path

from harness import __version__
from harness.clock import iso, utc_now
from harness.ledger import STATUSES
from harness.parallel.remote.lease import known_holders
from harness.templating import TEMPLATES_DIR, environment
from harness.webreport.evidence_files import State
from harness.webreport.gather import ReportCache, gather, gather_selectors
from harness.webreport.item_pages import ItemJob, render_item_pages, worker_count
from harness.webreport.model import index_model
from harness.webreport.paths import ASSETS_DIR, INDEX_PAGE, SELECTORS_PAGE, Linker, clean_relative, inside
from harness.webreport.publish import Staging, check_out_dir
from harness.webreport.selector_model import selectors_model
from harness.webreport.text import diff_css
from harness.workspace import Workspace

CSP = ("default-src 'none'; style-src 'self'; script-src 'self'; img-src 'self'; base-uri 'none'; "
       "form-action 'none'; frame-src 'none'")
EVIDENCE_WORDS = {
    State.VERIFIED.value: "\u2713 matches its SHA256SUMS",
    State.MISMATCH.value: "\u2717 does not match its SHA256SUMS",
    State.MISSING.value: "\u2717 missing",
    State.OUTSIDE.value: "\u2717 outside the repository (not read)",
}


@dataclass(frozen=True)
class SiteInfo:
    """What every page's header says."""

    ledger_path: str
    head: str
    generated: str
    version: str
    csp: str


@dataclass(frozen=True)
class BuildResult:
    out: Path
    items: int
    attempts: int
    pages: int
    index_bytes: int
    total_bytes: int
    seconds: float
    linked: frozenset[str]  # repository files the pages link to: all that `--serve` shows besides the site


def _asset(name: str) -> str:
    return resources.files("harness.webreport").joinpath("static", name).read_text(encoding="utf-8")


def build_site(ws: Workspace, out: Path, *, cache: ReportCache | None = None,
               now: datetime | None = None, workers: int | None = None) -> BuildResult:
    """Build the report of the repository `ws` into the folder `out` (replaced whole). `workers`: how many
    processes write the item pages (harness.webreport.item_pages); by default, as many as suit the ledger."""
    started = time.perf_counter()
    out = check_out_dir(out, ws.root)
    sources = gather(ws)
    linker = Linker(ws.root, out)
    env = environment(str(TEMPLATES_DIR))
    site = SiteInfo(sources.ledger_rel, sources.head, iso(now or utc_now()), __version__, CSP)
    common = {"site": site, "known_statuses": STATUSES, "evidence_words": EVIDENCE_WORDS}
    staging = Staging(out)

    def site_pages() -> None:
        staging.write(f"{ASSETS_DIR}/report.css", _asset("report.css") + "\n" + diff_css())
        staging.write(f"{ASSETS_DIR}/report.js", _asset("report.js"))
        index = index_model(sources.ledger, linker, known_holders(ws.repo, ws.config.push.remote if ws.config.push else None))
        staging.write(INDEX_PAGE, env.get_template("report/index.html.j2").render(root="", index=index, **common))
        selectors = gather_selectors(ws, sources.ledger)

        def file_href(page: str, rel: str) -> str | None:
            clean = clean_relative(rel)
            if clean is None or not (ws.root / clean).is_file() or not inside(ws.root, clean):
                return None
            return linker.repo_file(page, clean)

        sel = selectors_model(selectors.registry, selectors.history, selectors.run_commits, linker, file_href,
                              selectors.history_rel, selectors.problems)
        staging.write(SELECTORS_PAGE, env.get_template("report/selectors.html.j2").render(root="", sel=sel,
                                                                                           **common))

    try:
        job = ItemJob(sources, cache, env.get_template("report/item.html.j2"), {"root": "../", **common}, out,
                      staging.folder, posixpath.dirname(sources.ledger_rel))
        count = worker_count(len(sources.ledger.items)) if workers is None else workers
        pages = render_item_pages(job, ws.repo, staging, count, site_pages)
        staging.publish()
    except BaseException:
        staging.discard()
        raise
    sizes = staging.bytes_written
    attempts = sum(len(item.attempts) for item in sources.ledger.items)
    return BuildResult(out, len(sources.ledger.items), attempts, sum(r.endswith(".html") for r in sizes),
                       sizes[INDEX_PAGE], sum(sizes.values()), time.perf_counter() - started,
                       frozenset(linker.linked | pages.linked))
