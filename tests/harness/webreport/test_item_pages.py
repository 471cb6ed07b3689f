"""Item pages in worker processes: the same site byte for byte, the cache handed back, errors raised in the
parent with the old site kept, and the pool used only where forking is safe."""
from __future__ import annotations

import datetime as dt
import os
import threading
from pathlib import Path

import pytest

from harness.errors import HarnessError
from harness.webreport import item_pages
from harness.webreport.build import build_site
from harness.webreport.gather import ReportCache
from harness.webreport.item_pages import (
    MAX_WORKERS,
    PARALLEL_MIN_ITEMS,
    chunk_bounds,
    fork_is_safe,
    worker_count,
)
from harness.webreport.publish import ReportError
from harness.workspace import open_workspace
from tests.harness.webreport.conftest import Reviewed

NOW = dt.datetime(2026, 1, 2, 3, 4, 5, tzinfo=dt.UTC)
needs_fork = pytest.mark.skipif(not fork_is_safe(), reason="item workers are forked only on Linux, one thread")


def _files(site: Path) -> dict[str, bytes]:
    return {p.relative_to(site).as_posix(): p.read_bytes() for p in sorted(site.rglob("*")) if p.is_file()}


@needs_fork
def test_workers_build_the_same_site_byte_for_byte(reviewed: Reviewed) -> None:
    ws = open_workspace(reviewed.repo)
    alone = build_site(ws, reviewed.repo / "plans/alone", now=NOW, workers=1)
    spread = build_site(ws, reviewed.repo / "plans/spread", now=NOW, workers=2)
    assert len(chunk_bounds(spread.items, 2)) == 3  # one item per chunk: every page made in a worker
    assert _files(alone.out) == _files(spread.out)
    assert (alone.pages, alone.attempts, alone.index_bytes, alone.total_bytes, alone.linked) == (
        spread.pages, spread.attempts, spread.index_bytes, spread.total_bytes, spread.linked)
    assert any(rel.endswith("/attempt.json") for rel in spread.linked)  # links made in the workers count


@needs_fork
def test_workers_hand_their_cache_entries_back(reviewed: Reviewed, monkeypatch: pytest.MonkeyPatch) -> None:
    ws = open_workspace(reviewed.repo)
    cache = ReportCache()
    build_site(ws, reviewed.site, cache=cache, workers=2)
    assert len(cache.verify.entries) == 2  # the GREEN and the failed attempt's folders (the third is outside)
    assert len(cache.commits) == 1  # the GREEN attempt's recording commit

    def hashed_again(*args: object) -> None:
        raise AssertionError(f"an unchanged folder was hashed again: {args}")

    monkeypatch.setattr("harness.webreport.evidence_files._matches_exactly", hashed_again)  # forked: inherited
    result = build_site(ws, reviewed.site, cache=cache, workers=2)
    assert result.pages == 5


@needs_fork
def test_an_error_in_a_worker_reaches_the_caller_and_the_old_site_stays(reviewed: Reviewed,
                                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    before = _files(reviewed.site)
    real = item_pages.item_model

    def failing(item, *args, **kwargs):
        if item.id == "CALC-002":
            raise HarnessError("CALC-002 cannot be shown")
        return real(item, *args, **kwargs)

    monkeypatch.setattr(item_pages, "item_model", failing)
    with pytest.raises(HarnessError, match="CALC-002 cannot be shown"):
        build_site(open_workspace(reviewed.repo), reviewed.site, workers=2)
    assert _files(reviewed.site) == before
    assert [p.name for p in reviewed.site.parent.iterdir() if p.name.startswith(".report.")] == []


@pytest.mark.parametrize(("items", "workers"), [(0, 1), (1, 1), (3, 2), (5000, 1), (5000, 2), (7, 8), (401, 3)])
def test_chunks_cover_every_item_once_in_order(items: int, workers: int) -> None:
    bounds = chunk_bounds(items, workers)
    assert [i for start, stop in bounds for i in range(start, stop)] == list(range(items))
    assert len(bounds) == (1 if workers == 1 else min(items, workers * item_pages.CHUNKS_PER_WORKER))


def test_one_process_for_a_small_ledger_or_where_fork_is_unsafe(monkeypatch: pytest.MonkeyPatch) -> None:
    assert worker_count(PARALLEL_MIN_ITEMS - 1) == 1
    assert 1 <= worker_count(PARALLEL_MIN_ITEMS) <= MAX_WORKERS
    stop = threading.Event()
    server = threading.Thread(target=stop.wait, daemon=True)  # as `--serve`'s threads are while it rebuilds
    server.start()
    try:
        assert not fork_is_safe() and worker_count(10 * PARALLEL_MIN_ITEMS) == 1
    finally:
        stop.set()
        server.join()
    monkeypatch.setattr(item_pages.sys, "platform", "darwin")
    assert worker_count(10 * PARALLEL_MIN_ITEMS) == 1


@pytest.mark.skipif(not fork_is_safe(), reason="needs Linux and a single thread")
def test_a_large_ledger_uses_every_core_it_may(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(item_pages.os, "sched_getaffinity", lambda pid: {0, 1})
    assert worker_count(PARALLEL_MIN_ITEMS) == 2
    monkeypatch.setattr(item_pages.os, "sched_getaffinity", lambda pid: set(range(64)))
    assert worker_count(PARALLEL_MIN_ITEMS) == MAX_WORKERS


@needs_fork
def test_a_worker_that_dies_fails_the_build_and_the_old_site_stays(reviewed: Reviewed,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    before = _files(reviewed.site)
    real = item_pages.item_model

    def killed(item, *args, **kwargs):
        if item.id == "CALC-002":
            os._exit(137)  # as the kernel's OOM killer ends a process: no exception, no result
        return real(item, *args, **kwargs)

    monkeypatch.setattr(item_pages, "item_model", killed)
    with pytest.raises(ReportError, match="a worker process building the item pages stopped before it finished"):
        build_site(open_workspace(reviewed.repo), reviewed.site, workers=2)
    assert _files(reviewed.site) == before
    assert [p.name for p in reviewed.site.parent.iterdir() if p.name.startswith(".report.")] == []
