"""The item pages, the bulk of a build: for each item, its evidence folders read and checked against their
SHA256SUMS, its changes fetched, its page modelled, rendered and written into the staging folder.

The items are cut into contiguous chunks. A small ledger is done in this process as one chunk. A large one
(`PARALLEL_MIN_ITEMS` items or more) is spread over a pool of worker processes, one per core this process
may use: hashing, Markdown and templates are Python work, so threads would only take turns on the GIL
(tried: no faster, more CPU). A chunk's pages depend only on its items and the job, so the site is the
same, byte for byte, however it was cut.

How the workers start: a `concurrent.futures.ProcessPoolExecutor` whose processes `multiprocessing` starts
with the `fork` method. Each worker inherits the job (the parsed ledger, the git lookups, the compiled
template, the `--serve` cache) without pickling it, and hands back only the sizes of the pages it wrote,
the repository files they link and the cache entries it added. A worker's error is raised here; a worker
that dies (killed for memory) fails the build with a ReportError, and the old site stays.
A forked child keeps every lock that another thread held at the fork, so the pool is used only in a
process that runs one thread, on Linux, where fork is the ordinary start method (`harness report`, and
the first build of `--serve`, made before its server threads start); `--serve`'s rebuilds run in its own
process. Each chunk in a worker asks git through a repository object of its own, never through the
parent's persistent `git cat-file`. Workers ignore Ctrl-C: the interrupted parent lets the chunks that
run finish, starts no other, and discards the staging folder.
"""
from __future__ import annotations

import gc
import multiprocessing
import os
import signal
import sys
import threading
from collections.abc import Callable, Mapping
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import git
import jinja2

from harness.gitops import open_repo
from harness.webreport.gather import ReportCache, Sources, attempt_facts
from harness.webreport.model import item_model
from harness.webreport.paths import Linker
from harness.webreport.publish import FolderWriter, ReportError

PARALLEL_MIN_ITEMS = 400  # below this, starting workers costs more than it saves
CHUNKS_PER_WORKER = 4  # items differ in size: smaller chunks keep every worker busy to the end
MAX_WORKERS = 8


@dataclass(frozen=True)
class ItemJob:
    """What every item page needs besides its item."""

    sources: Sources
    cache: ReportCache | None
    template: jinja2.Template
    context: Mapping[str, Any]  # the template's values other than `item`
    out: Path  # where the site will be published (links are relative to it)
    folder: Path  # where it is written: the staging folder
    ledger_dir: str  # where links in prose start from
    known: frozenset[str] = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "known", frozenset(self.sources.ledger.ids()))


@dataclass(frozen=True)
class CacheEntries:
    """The `ReportCache` entries a worker added, for the parent's cache."""

    verify: dict[str, Any]
    commits: dict[str, Any]
    ranges: dict[tuple[str, str], Any]


@dataclass(frozen=True)
class ItemPages:
    """What a chunk of items, or all of them, produced."""

    bytes_written: dict[str, int]  # site-relative page -> bytes
    linked: frozenset[str]  # repository files the pages link to
    added: CacheEntries | None = None  # from a worker: its new cache entries


def worker_count(items: int) -> int:
    """How many processes to spread `items` item pages over: one per usable core for a large ledger in a
    single-threaded process on Linux, else 1 (this process)."""
    if items < PARALLEL_MIN_ITEMS or not fork_is_safe():
        return 1
    return max(1, min(len(os.sched_getaffinity(0)), MAX_WORKERS))


def fork_is_safe() -> bool:
    """Whether this process may fork workers: on Linux, with no other thread whose locks a child would keep."""
    return sys.platform.startswith("linux") and threading.active_count() == 1


def chunk_bounds(items: int, workers: int) -> list[tuple[int, int]]:
    """Contiguous (start, stop) slices of the items: one for a single process, else a few per worker."""
    count = 1 if workers <= 1 else max(1, min(items, workers * CHUNKS_PER_WORKER))
    return [(items * i // count, items * (i + 1) // count) for i in range(count)]


def render_chunk(job: ItemJob, bounds: tuple[int, int], repo: git.Repo, writer: FolderWriter) -> ItemPages:
    """Read, model, render and write the pages of the items `bounds` selects."""
    items = job.sources.ledger.items[bounds[0]:bounds[1]]
    facts = attempt_facts(repo, job.sources, items, job.cache)
    linker = Linker(job.sources.root, job.out)
    for item in items:
        model = item_model(item, job.known, facts[item.id], linker, job.ledger_dir)
        writer.write(model.page, job.template.render(item=model, **job.context))
    return ItemPages(writer.bytes_written, frozenset(linker.linked))


def render_item_pages(job: ItemJob, repo: git.Repo, writer: FolderWriter, workers: int,
                      meanwhile: Callable[[], None]) -> ItemPages:
    """Every item's page, written through `writer` (whose sizes then include them). `meanwhile` runs in this
    process while the workers run (before the items when there are none)."""
    can_fork = "fork" in multiprocessing.get_all_start_methods()
    bounds = chunk_bounds(len(job.sources.ledger.items), workers if can_fork else 1)
    if len(bounds) == 1:
        meanwhile()
        return render_chunk(job, bounds[0], repo, writer)
    (job.folder / "items").mkdir(exist_ok=True)
    # Not multiprocessing.Pool: a worker that dies takes its chunk with it, and Pool waits for it forever.
    executor = ProcessPoolExecutor(min(workers, len(bounds)), mp_context=multiprocessing.get_context("fork"),
                                   initializer=_adopt, initargs=(job,))
    try:
        # The workers are forked at the first submit. Frozen, this process's objects are never traversed by
        # a worker's garbage collector, which would write to them and so copy the inherited heap's pages.
        gc.freeze()
        try:
            futures = [executor.submit(_work, chunk) for chunk in bounds]
        finally:
            gc.unfreeze()
        meanwhile()
        parts = [future.result() for future in futures]
    except BrokenProcessPool as exc:
        raise ReportError(f"a worker process building the item pages stopped before it finished ({exc}); "
                          "the old site is unchanged. If it was killed for lack of memory, free some and run "
                          "`harness report` again") from exc
    finally:
        executor.shutdown(wait=True, cancel_futures=True)  # on an error, chunks not started are not run
    linked: set[str] = set()
    for part in parts:
        writer.bytes_written.update(part.bytes_written)
        linked |= part.linked
        if job.cache is not None and part.added is not None:
            _merge(job.cache, part.added)
    return ItemPages(writer.bytes_written, frozenset(linked))


_inherited: dict[str, ItemJob] = {}  # in a worker: the job it was forked with


def _adopt(job: ItemJob) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _inherited["job"] = job


def _work(bounds: tuple[int, int]) -> ItemPages:
    job = _inherited["job"]
    before = _entries(job.cache)
    pages = render_chunk(job, bounds, open_repo(job.sources.root), FolderWriter(job.folder))
    after = _entries(job.cache)
    if before is None or after is None:
        return pages
    added = CacheEntries(*({key: value for key, value in now.items() if then.get(key) is not value}
                           for then, now in zip(before, after, strict=True)))
    return replace(pages, added=added)


def _entries(cache: ReportCache | None) -> tuple[dict, dict, dict] | None:
    if cache is None:
        return None
    with cache.lock, cache.verify.lock:
        return dict(cache.verify.entries), dict(cache.commits), dict(cache.ranges)


def _merge(cache: ReportCache, added: CacheEntries) -> None:
    with cache.lock, cache.verify.lock:
        cache.verify.entries.update(added.verify)
        cache.commits.update(added.commits)
        cache.ranges.update(added.ranges)
