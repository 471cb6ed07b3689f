"""The selector history: appends that survive crashes and concurrency, and the comparison of a run with it."""
from __future__ import annotations

import json
import threading
from pathlib import Path
from types import MappingProxyType

from harness.selectors.history import append_history, compare, history_line, load_history
from harness.selectors.runs import SelectorResult, Status


def res(selector: str, status: Status, failing: tuple[str, ...] = ()) -> SelectorResult:
    counts = {"passed": 1} if status == Status.PASSED else ({"failed": 1} if failing else {})
    return SelectorResult(selector, status, MappingProxyType(counts), 0.5, failing, (), "001-batch",
                          status.value)


def record(path: Path, run: str, commit: str, results: list[SelectorResult], dirty: bool = False) -> None:
    append_history(path, history_line(run=run, started=f"{run}-iso", commit=commit, dirty=dirty,
                                      run_dir=f"plans/selectors/runs/{run}",
                                      filter={"group": None, "item": None}, results=results))


def test_append_and_load_round_trip(tmp_path: Path) -> None:
    path = tmp_path / "plans" / "selectors" / "history.jsonl"
    assert load_history(path).records == ()
    record(path, "r1", "c1", [res("a", Status.PASSED), res("b", Status.FAILED, ("b::t",))])
    record(path, "r2", "c2", [res("a", Status.FAILED, ("a::t",))], dirty=True)

    history = load_history(path)
    assert [(r.run, r.commit, r.dirty) for r in history.records] == [("r1", "c1", False), ("r2", "c2", True)]
    assert history.problems == ()
    points = history.timeline("a")
    assert [(p.commit, p.status, p.failing) for p in points] == [
        ("c1", "passed", ()), ("c2", "failed", ("a::t",))]
    assert history.last_pass("a").commit == "c1"
    assert history.last_pass("b") is None
    assert history.timeline("never") == []
    lines = path.read_text().splitlines()
    assert len(lines) == 2 and json.loads(lines[0])["results"]["b"]["failing"] == ["b::t"]


def test_a_torn_last_line_is_skipped_and_the_next_append_starts_a_new_line(tmp_path: Path) -> None:
    path = tmp_path / "history.jsonl"
    record(path, "r1", "c1", [res("a", Status.PASSED)])
    with open(path, "a") as fh:
        fh.write('{"format": 1, "run": "r2", "comm')  # a crash mid-write
    history = load_history(path)
    assert [r.run for r in history.records] == ["r1"]
    assert len(history.problems) == 1
    assert f"{path}:2: skipped an unreadable history line" in history.problems[0]

    record(path, "r3", "c3", [res("a", Status.FAILED, ("a::t",))])
    history = load_history(path)
    assert [r.run for r in history.records] == ["r1", "r3"]
    assert len(history.problems) == 1


def test_lines_of_another_format_or_shape_are_reported_not_fatal(tmp_path: Path) -> None:
    path = tmp_path / "history.jsonl"
    path.write_text('{"format": 99, "run": "x", "commit": "c", "results": {}}\n[1, 2]\n\n')
    record(path, "r1", "c1", [res("a", Status.PASSED)])
    history = load_history(path)
    assert [r.run for r in history.records] == ["r1"]
    assert [p.split(": skipped")[0] for p in history.problems] == [f"{path}:1", f"{path}:2"]
    assert "format 99, expected 1" in history.problems[0]


def test_concurrent_appends_never_interleave(tmp_path: Path) -> None:
    path = tmp_path / "history.jsonl"
    big = [res(f"tests/test_{i:04d}.py::test_something_long", Status.PASSED) for i in range(60)]

    def writer(n: int) -> None:
        for k in range(10):
            record(path, f"w{n}-{k}", "c", big)

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    history = load_history(path)
    assert history.problems == ()
    assert sorted(r.run for r in history.records) == sorted(f"w{n}-{k}" for n in range(4) for k in range(10))


def test_compare_classes_regressions_until_they_pass_again(tmp_path: Path) -> None:
    path = tmp_path / "history.jsonl"
    registry = ["a", "b", "c", "d", "e", "f"]
    record(path, "r1", "c1", [res("a", Status.PASSED), res("b", Status.FAILED, ("b::t",)),
                              res("c", Status.NO_TESTS), res("d", Status.PASSED), res("f", Status.SKIPPED)])

    now = [res("a", Status.FAILED, ("a::t",)), res("b", Status.ERROR, ("b::t",)), res("c", Status.NO_TESTS),
           res("d", Status.PASSED), res("e", Status.FAILED, ("e::t",)), res("f", Status.FAILED, ("f::t",))]
    first = compare(load_history(path), now, registry)
    assert [(f.selector, f.last_pass.commit, f.since) for f in first.regressions] == [("a", "c1", None)]
    assert [(f.selector, f.status, f.since.commit) for f in first.still_failing] == [("b", "error", "c1")]
    assert [f.selector for f in first.new_failures] == ["e", "f"]  # f was only ever skipped before
    assert [(f.selector, f.since.commit) for f in first.no_tests] == [("c", "c1")]
    assert first.fixed == () and first.removed_selectors == ()
    assert first.new_selectors == ("e",) and first.previous_run == "r1"
    assert first.kind_of("a") == "regressions" and first.kind_of("d") is None
    record(path, "r2", "c2", now)

    later = [res("a", Status.FAILED, ("a::t",)), res("b", Status.PASSED), res("c", Status.PASSED),
             res("e", Status.FAILED, ("e::t",))]
    second = compare(load_history(path), later, ["a", "b", "c", "e"])
    # Still a regression, now failing since c2, and still naming the last pass.
    regressions = [(f.selector, f.last_pass.commit, f.since.commit) for f in second.regressions]
    assert regressions == [("a", "c1", "c2")]
    assert [(f.selector, f.since.commit) for f in second.fixed] == [("b", "c1"), ("c", "c1")]
    assert [(f.selector, f.since.commit) for f in second.still_failing] == [("e", "c2")]
    assert second.new_failures == () and second.new_selectors == ()
    assert second.removed_selectors == ("d", "f")
    record(path, "r3", "c3", later)

    third = compare(load_history(path), [res("a", Status.PASSED)], ["a"])
    assert [(f.selector, f.since.commit, f.last_pass.commit) for f in third.fixed] == [("a", "c2", "c1")]
    assert third.regressions == () and third.removed_selectors == ("b", "c", "e")


def test_a_pass_then_skips_then_a_failure_is_still_a_regression(tmp_path: Path) -> None:
    path = tmp_path / "history.jsonl"
    record(path, "r1", "c1", [res("a", Status.PASSED)])
    record(path, "r2", "c2", [res("a", Status.SKIPPED)])
    found = compare(load_history(path), [res("a", Status.FAILED, ("a::t",))], ["a"])
    assert [(f.last_pass.commit, f.since) for f in found.regressions] == [("c1", None)]
