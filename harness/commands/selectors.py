"""`harness selectors list | index [--check] | run | collect | history SELECTOR`."""
from __future__ import annotations

import difflib
import json
import shutil
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path, PurePosixPath
from typing import Any

from harness.atomic import atomic_write_json, atomic_write_text, to_jsonable
from harness.clock import iso, stamp, utc_now
from harness.commands._console import print_table
from harness.durability.evidence import (
    compress_large_files,
    machine_prefixes,
    redact_machine_paths,
    render_template,
    write_sha256sums,
)
from harness.errors import EvidenceError, SelectorError
from harness.gitops import head_sha, short, working_changes
from harness.pytest_run.runner import PytestSettings
from harness.selectors.history import History, append_history, compare, history_line, load_history
from harness.selectors.registry import INDEX_PATH, Registry, RegistryEntry, build_registry, render_index
from harness.selectors.runs import SelectorResult, Status, run_batched
from harness.workspace import Workspace, open_workspace

ACTIONS = ("list", "index", "run", "collect", "history")
FORMAT = 1


def selectors(*, repo: Path, action: str, group: str | None = None, item: str | None = None, jobs: int = 1,
              as_json: bool = False, check: bool = False, selector: str | None = None) -> int:
    ws = open_workspace(repo)
    if action == "list":
        return _list(ws, group, item, as_json)
    if action == "index":
        return _index(ws, check)
    if action == "run":
        return _run(ws, group, item, jobs, as_json)
    if action == "collect":
        return _collect(ws, group, item, as_json)
    if action == "history":
        if not selector:
            raise SelectorError("`harness selectors history` needs a SELECTOR, "
                                "as `harness selectors list` shows it")
        return _history(ws, selector, as_json)
    raise SelectorError(f"unknown selectors action {action!r}; use one of {', '.join(ACTIONS)}")


def _history_of(ws: Workspace) -> History:
    history = load_history(ws.root / ws.config.selectors.history)
    for problem in history.problems:
        print(f"harness: warning: {problem}", file=sys.stderr)
    return history


def _named_by(entry: RegistryEntry) -> str:
    return ", ".join(m.describe() for m in entry.memberships)


# --- list and index ----------------------------------------------------------------------------------


def _list(ws: Workspace, group: str | None, item: str | None, as_json: bool) -> int:
    registry = build_registry(ws.load_ledger(), ws.config.selectors.extra)
    history = _history_of(ws)
    rows = []
    for entry in registry.select(group=group, item=item):
        points = history.timeline(entry.raw)
        last = points[-1] if points else None
        rows.append({"selector": entry.raw, "named_by": _named_by(entry), "items": list(entry.item_ids),
                     "groups": list(entry.groups), "last_status": last.status if last else None,
                     "last_run": last.started if last else None,
                     "last_commit": last.commit if last else None})
    if as_json:
        print(json.dumps(rows, indent=2))
        return 0
    if not rows:
        print("no selectors: the ledger names no RED/Regression selector and harness.yaml "
              "lists no extra ones")
        return 0
    cells = [(r["selector"], r["named_by"], ",".join(r["groups"]), r["last_status"] or "never run",
              f"{r['last_run']} {short(r['last_commit'])}" if r["last_run"] else "-") for r in rows]
    print_table(("selector", "named by", "groups", "last result", "when"), cells)
    return 0


def _index(ws: Workspace, check: bool) -> int:
    text = render_index(build_registry(ws.load_ledger(), ws.config.selectors.extra), ledger_path=ws.config.ledger)
    path = ws.root / INDEX_PATH
    try:
        current = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        current = None
    except (OSError, UnicodeDecodeError) as exc:
        raise EvidenceError(f"cannot read {path}: {exc}; fix or delete it and run "
                            "`harness selectors index`") from None
    if check:
        if current == text:
            print(f"{INDEX_PATH} is up to date")
            return 0
        if current is None:
            print(f"{INDEX_PATH} does not exist; run `harness selectors index` and commit it",
                  file=sys.stderr)
            return 1
        diff = list(difflib.unified_diff(current.splitlines(), text.splitlines(), f"{INDEX_PATH} (on disk)",
                                         f"{INDEX_PATH} (from the registry)", lineterm="", n=1))
        print(f"{INDEX_PATH} is out of date; run `harness selectors index` and commit it. Difference:",
              file=sys.stderr)
        print("\n".join(diff[:60]) + ("\n..." if len(diff) > 60 else ""), file=sys.stderr)
        return 1
    if current == text:
        print(f"{INDEX_PATH} is already up to date")
    else:
        atomic_write_text(path, text)
        print(f"wrote {INDEX_PATH}")
    return 0


# --- run and collect ---------------------------------------------------------------------------------


def _selected(ws: Workspace, group: str | None,
              item: str | None) -> tuple[Registry, tuple[RegistryEntry, ...]]:
    registry = build_registry(ws.load_ledger(), ws.config.selectors.extra)
    return registry, registry.select(group=group, item=item)


def _dirty(ws: Workspace) -> bool:
    """Uncommitted changes other than the harness's own files (they do not change test outcomes)."""
    cfg = ws.config
    own = (str(PurePosixPath(cfg.selectors.history).parent), cfg.evidence_root)
    return any(c.path != cfg.ledger and c.path != INDEX_PATH
               and not any(o not in ("", ".") and (c.path == o or c.path.startswith(o + "/")) for o in own)
               for c in working_changes(ws.repo))


def _fresh_dir(parent: Path, name: str) -> Path:
    for n in range(1, 10_000):
        folder = parent / (name if n == 1 else f"{name}-{n}")
        folder.parent.mkdir(parents=True, exist_ok=True)
        try:
            folder.mkdir()
        except FileExistsError:
            continue
        return folder
    raise EvidenceError(f"{parent / name}: too many runs with this stamp; clean up old runs")


def _result_row(result: SelectorResult, entry: RegistryEntry, kind: str | None) -> dict[str, Any]:
    row = to_jsonable(result)
    row.update(named_by=_named_by(entry), groups=list(entry.groups), comparison=kind)
    return row


def _status_counts(results: Sequence[SelectorResult]) -> dict[str, int]:
    counts = {s.value: 0 for s in Status if s != Status.COLLECTED}
    for r in results:
        counts[r.status.value] = counts.get(r.status.value, 0) + 1
    return {k: n for k, n in counts.items() if n}


def _run(ws: Workspace, group: str | None, item: str | None, jobs: int, as_json: bool) -> int:
    registry, entries = _selected(ws, group, item)
    if not entries:
        print("no selectors to run (`harness selectors list` shows the registry)")
        return 0
    history = _history_of(ws)
    cfg = ws.config
    commit, dirty, started = head_sha(ws.repo), _dirty(ws), utc_now()
    runs_root = ws.root / PurePosixPath(cfg.selectors.history).parent / "runs"
    run_dir = _fresh_dir(runs_root, stamp(started))
    run = run_batched([e.selector for e in entries], cwd=ws.root, out_dir=run_dir / "pytest",
                        options=PytestSettings.from_config(cfg), jobs=jobs)
    comparison = compare(history, run.results, registry.raws())
    exit_code = 1 if run.bad() else 0
    rel_dir = run_dir.relative_to(ws.root).as_posix()
    doc = {
        "format": FORMAT, "run": run_dir.name, "started": iso(started), "finished": iso(utc_now()),
        "commit": commit, "dirty": dirty, "filter": {"group": group, "item": item}, "jobs": jobs,
        "run_dir": rel_dir, "exit_code": exit_code, "counts": _status_counts(run.results),
        "results": [_result_row(r, e, comparison.kind_of(r.selector)) for r, e in zip(run.results, entries)],
        "batches": to_jsonable(run.batches), "comparison": to_jsonable(comparison),
        "history_problems": list(history.problems),
    }
    atomic_write_json(run_dir / "results.json", doc)
    atomic_write_text(run_dir / "summary.md", render_template("selectors_summary.md.j2", d=doc))
    redact_machine_paths(run_dir, machine_prefixes(ws.root))  # no path of this machine is committed
    compress_large_files(run_dir, cfg.caps.evidence_file_bytes)
    write_sha256sums(run_dir)
    append_history(ws.root / cfg.selectors.history,
                   history_line(run=run_dir.name, started=doc["started"], commit=commit, dirty=dirty,
                                run_dir=rel_dir, filter=doc["filter"], results=run.results))
    if as_json:
        print(json.dumps(doc, indent=2))
    else:
        _print_run(doc)
    return exit_code


def _at(point: dict | None) -> str:
    return f"{short(point['commit'])} ({point['run']})" if point else "this run"


def _print_run(d: dict) -> None:
    counts = " · ".join(f"{n} {k.replace('_', ' ')}" for k, n in d["counts"].items())
    dirty = " (uncommitted changes)" if d["dirty"] else ""
    print(f"selectors run {d['run']} on {short(d['commit'])}{dirty}: {len(d['results'])} selector(s), "
          f"{len(d['batches'])} pytest process(es): {counts}")
    c = d["comparison"]
    for f in c["regressions"]:
        print(f"  REGRESSION     {f['selector']}: {f['status']}; last passed at {_at(f['last_pass'])}, "
              f"failing since {_at(f['since'])}\n                 {f['detail']}")
    for f in c["still_failing"]:
        print(f"  STILL FAILING  {f['selector']}: {f['status']} since {_at(f['since'])}\n"
              f"                 {f['detail']}")
    for f in c["new_failures"]:
        print(f"  NEW FAILURE    {f['selector']}: {f['status']}\n                 {f['detail']}")
    for f in c["no_tests"]:
        print(f"  NO TESTS       {f['selector']}: collects nothing (since {_at(f['since'])})\n"
              f"                 {f['detail']}")
    for f in c["fixed"]:
        print(f"  FIXED          {f['selector']}: passes again (not passing since {_at(f['since'])})")
    if c["new_selectors"] and c["previous_run"]:
        print(f"  new selectors: {', '.join(c['new_selectors'])}")
    if c["removed_selectors"]:
        print(f"  removed selectors: {', '.join(c['removed_selectors'])}")
    print(f"  evidence: {d['run_dir']}/summary.md")


def _collect(ws: Workspace, group: str | None, item: str | None, as_json: bool) -> int:
    _, entries = _selected(ws, group, item)
    tmp = Path(tempfile.mkdtemp(prefix="harness-collect-"))
    try:
        run = run_batched([e.selector for e in entries], cwd=ws.root, out_dir=tmp,
                            options=PytestSettings.from_config(ws.config), collect_only=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    bad = run.bad()
    if as_json:
        print(json.dumps({"ok": not bad, "processes": len(run.batches),
                          "results": [to_jsonable(r) for r in run.results]}, indent=2))
    else:
        for r in run.results:
            if r.status.bad:
                print(f"  {r.status.value.replace('_', ' ').upper():9}  {r.selector}: {r.detail}")
        print(f"{len(entries) - len(bad)} of {len(entries)} selector(s) collect tests "
              f"({len(run.batches)} pytest process(es))")
    return 1 if bad else 0


def _history(ws: Workspace, selector: str, as_json: bool) -> int:
    history = _history_of(ws)
    points = history.timeline(selector)
    if as_json:
        print(json.dumps({"selector": selector, "runs": to_jsonable(points)}, indent=2))
        return 0 if points else 1
    if not points:
        known = sorted({s for r in history.records for s in r.results})
        close = difflib.get_close_matches(selector, known, n=3, cutoff=0.6)
        hint = f"; did you mean {', '.join(close)}?" if close else ""
        print(f"no recorded run of {selector!r} in {ws.config.selectors.history}{hint}", file=sys.stderr)
        return 1
    cells = [(p.started, short(p.commit) + ("*" if p.dirty else ""), p.status,
              ", ".join(f"{n} {k}" for k, n in p.counts.items()) or "-", str(len(p.failing)), p.run)
             for p in points]
    print_table(("started", "commit", "status", "counts", "failing", "run"), cells)
    if any(p.dirty for p in points):
        print("(* the working tree had uncommitted changes)")
    return 0
