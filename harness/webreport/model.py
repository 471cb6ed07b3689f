"""The page model: what the index and each item page show, as frozen records. Pure: no file or git access.

Inputs are the parsed ledger and, per attempt, the `AttemptFacts` that gather.py read (evidence folder,
base commit known, recording commits, the change's patch). Every value that reaches a page is plain text
(the templates escape it) except prose and diffs, which text.py turns into escaped HTML. attempt.json is
read as untrusted data: a field of the wrong type is treated as absent, never as an error.

Outcome kinds: `green` (GREEN), `failed` (FAILED at <stage>), `aborted` (ABORTED at <stage>).
"""
from __future__ import annotations

import math
import posixpath
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from markupsafe import Markup, escape

from harness.ledger import STATUSES, Attempt, Item, Ledger
from harness.webreport.charts import Chart, timeline
from harness.webreport.evidence_files import RECORD_NAME, Evidence
from harness.webreport.paths import INDEX_PAGE, Linker, item_page
from harness.webreport.text import diff_html, markdown_html

STAGE_LABELS = {"collect": "collect", "red": "RED", "green": "GREEN", "regression": "regression gate",
                "full_suite": "full-suite gate", "lint": "lint gate"}


@lru_cache(maxsize=8192)
def escaped(text: str) -> str:
    """markupsafe's escape of `text`, remembered: a stage table's names, results, times, counts and file
    names repeat in every attempt (a 20,000-attempt ledger has 100,000 rows)."""
    return str(escape(text))


@dataclass(frozen=True)
class Link:
    """Rendered by the templates through `__html__`: every part escaped by markupsafe's (C) escape."""

    text: str
    href: str | None  # None: shown as plain text
    note: str = ""  # shown on hover

    def __html__(self) -> str:
        title = f' title="{escaped(self.note)}"' if self.note else ""
        if self.href is not None:
            return f'<a href="{escape(self.href)}"{title}>{escaped(self.text)}</a>'
        if self.note:
            return f'<span class="unlinked"{title}>{escaped(self.text)}</span>'
        return escaped(self.text)


@dataclass(frozen=True)
class PatchText:
    """A change as gather.py found it: what it is (`caption`), the unified diff and whether it was cut."""

    caption: str
    diff: str
    files: int
    cut: bool


@dataclass(frozen=True)
class AttemptFacts:
    evidence: Evidence
    base_known: bool
    recorded_in: tuple[str, ...]  # commits carrying `Harness-Evidence: <folder>`, newest first
    patch: PatchText | None
    patch_note: str  # why there is no patch, when there is none


@dataclass(frozen=True)
class Row:
    id: str
    title: str
    href: str
    status: str
    status_known: bool
    status_reason: str | None
    priority: int
    initiative: str
    depends: tuple[Link, ...]
    attempts: int
    last_outcome: str | None
    last_kind: str  # an outcome kind, or "none"
    last_when: str | None
    holder: str | None = None  # who holds the item's lease (harness leases), while one does


@dataclass(frozen=True)
class StageRow:
    """One row of an attempt's stage table. A ledger of 20,000 attempts has 100,000 of them, so the row
    renders itself (`__html__`, every value through markupsafe's escape) instead of costing the template
    a dozen expressions each."""

    name: str
    result: str  # passed, failed, skipped, not run
    duration: str
    counts: str
    reason: str
    links: tuple[Link, ...]

    def __html__(self) -> str:
        links = " ".join(link.__html__() for link in self.links)
        return (f'<tr class="r-{escaped(self.result.replace(" ", "-"))}"><td>{escaped(self.name)}</td>'
                f'<td>{escaped(self.result)}</td><td class="num">{escaped(self.duration)}</td>'
                f'<td>{escaped(self.counts)}</td><td class="reason">{escaped(self.reason)}</td><td>{links}</td></tr>')


@dataclass(frozen=True)
class AttemptView:
    number: int
    anchor: str
    timestamp: str
    outcome: str
    kind: str
    failed_stage: str | None
    reason: str
    duration: str
    base_commit: str
    base_known: bool
    recorded_in: tuple[str, ...]
    evidence_state: str
    evidence_problems: tuple[str, ...]
    folder: Link
    files: tuple[Link, ...]
    stages: tuple[StageRow, ...]
    red_counts: str
    green_counts: str
    change_caption: str
    change_html: Markup | None
    change_note: str

    @property
    def stage_rows(self) -> Markup:
        """The stage table's rows, one a line: one value for the template instead of one per row."""
        return Markup("\n".join(row.__html__() for row in self.stages))


@dataclass(frozen=True)
class ItemModel:
    row: Row
    page: str  # site-relative path of this page
    fields: tuple[tuple[str, tuple[Link, ...]], ...]
    prose: Markup
    attempts: tuple[AttemptView, ...]


@dataclass(frozen=True)
class IndexModel:
    rows: tuple[Row, ...]
    counts: tuple[tuple[str, int], ...]  # known statuses first, then any unknown ones as written
    initiatives: tuple[str, ...]
    chart: Chart
    attempts: int


def kind_of(outcome: str) -> str:
    return "green" if outcome == "GREEN" else ("aborted" if outcome.startswith("ABORTED") else "failed")


def _row(item: Item, known_ids: frozenset[str], linker: Linker, page: str, holder: str | None = None) -> Row:
    last: Attempt | None = item.attempts[-1] if item.attempts else None
    depends = tuple(Link(d, linker.page(page, item_page(d))) if d in known_ids
                    else Link(d, None, f"{d} is not an item of the ledger") for d in item.depends_on)
    return Row(item.id, item.title, linker.page(page, item_page(item.id)), item.status, item.status_known,
               item.status_reason, item.priority, item.initiative, depends, len(item.attempts),
               last.outcome if last else None, kind_of(last.outcome) if last else "none",
               last.timestamp if last else None, holder)


def index_model(ledger: Ledger, linker: Linker, holders: Mapping[str, str] | None = None) -> IndexModel:
    """The index page; `holders`: item -> who holds its lease, shown beside the status."""
    known = frozenset(ledger.ids())
    rows = tuple(_row(item, known, linker, INDEX_PAGE, (holders or {}).get(item.id)) for item in ledger.items)
    counted = Counter(item.status for item in ledger.items)
    counts = tuple((s, counted[s]) for s in STATUSES) + tuple(
        (s, n) for s, n in sorted(counted.items()) if s not in STATUSES)
    chart = timeline((a.timestamp, kind_of(a.outcome)) for item in ledger.items for a in item.attempts)
    return IndexModel(rows, counts, tuple(sorted({item.initiative for item in ledger.items})), chart,
                      sum(len(item.attempts) for item in ledger.items))


# --- attempt.json, read defensively -----------------------------------------------------------------


def _s(value: Any) -> str:
    return value if isinstance(value, str) else ""


def _seq(value: Any) -> Sequence[Any]:
    return value if isinstance(value, list) else ()


def _map(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, dict) else {}


def _dicts(value: Any) -> list[Mapping[str, Any]]:
    return [v for v in _seq(value) if isinstance(v, dict)]


def counts_text(counts: Any) -> str:
    pairs = sorted((k, v) for k, v in _map(counts).items() if isinstance(v, int) and not isinstance(v, bool))
    return ", ".join(f"{v} {k}" for k, v in pairs)


def seconds_text(value: Any) -> str:
    if not isinstance(value, int | float) or isinstance(value, bool) or not math.isfinite(value):
        return ""
    return f"{value:.1f} s" if value < 600 else f"{value / 60:.1f} min"


def _evidence_link(evidence: Evidence, rel: str, linker: Linker, page: str, text: str | None = None) -> Link:
    """A file of the folder, linked when the folder holds it (or its gzipped form) as a regular file."""
    if evidence.folder is not None:
        for name in (rel, rel + ".gz"):
            if name in evidence.files:  # names from the folder's own scan: clean, inside it
                return Link(text or name, linker.folder_file(page, evidence.folder, name))
    clean = posixpath.normpath(rel) if rel else ""
    if evidence.folder is None or not clean or clean.startswith(("../", "/")) or clean == "..":
        return Link(text or rel, None, "not linked: the path leaves the evidence folder")
    for name in (clean, clean + ".gz"):
        if evidence.has(name):
            return Link(text or name, linker.repo_file(page, f"{evidence.folder}/{name}"))
    return Link(text or rel, None, "not in the evidence folder")


def _stages(record: Mapping[str, Any], stages: list[Mapping[str, Any]], evidence: Evidence, linker: Linker,
            page: str) -> tuple[StageRow, ...]:
    rows = []
    for stage in stages:
        name = _s(stage.get("name")) or "?"
        result = "skipped" if stage.get("skipped") is True else ("passed" if stage.get("ok") is True else "failed")
        links = []
        for selector in _dicts(stage.get("selectors")):
            for key in ("log", "junit"):
                if _s(selector.get(key)):
                    links.append(_evidence_link(evidence, _s(selector[key]), linker, page))
        rows.append(StageRow(STAGE_LABELS.get(name, name), result, seconds_text(stage.get("duration_s")),
                             counts_text(stage.get("counts")), _s(stage.get("reason")), tuple(links)))
    for turn in _dicts(record.get("agent")):
        links = tuple(_evidence_link(evidence, _s(turn.get(k)), linker, page) for k in ("log", "prompt")
                      if _s(turn.get(k)))
        if links:
            rows.append(StageRow(f"agent files ({_s(turn.get('stage'))})", "", seconds_text(turn.get("duration_s")),
                                 "", "", links))
    rows += [StageRow(STAGE_LABELS.get(n, n), "not run", "", "", "", ()) for n in _seq(record.get("not_run"))
             if isinstance(n, str)]
    return tuple(rows)


def _stage_counts(stages: list[Mapping[str, Any]], name: str) -> str:
    stage = next((s for s in stages if s.get("name") == name), None)
    if stage is None:
        return "not run"
    return "skipped" if stage.get("skipped") is True else (counts_text(stage.get("counts")) or "nothing ran")


def attempt_view(attempt: Attempt, facts: AttemptFacts, linker: Linker, page: str) -> AttemptView:
    ev = facts.evidence
    record = ev.record or {}
    kind = kind_of(attempt.outcome)
    if ev.record is not None:
        reason = _s(record.get("reason")) or "attempt.json gives no reason"
    else:
        reason = f"unknown: {ev.record_problem or (ev.problems[0] if ev.problems else 'no attempt.json')}"
    folder = (Link(ev.written, None, "not linked: the path leaves the repository") if ev.folder is None
              else Link(ev.folder, None))
    files: list[Link] = []
    if ev.named_file and ev.folder and ev.named_file.startswith(ev.folder + "/"):
        files.append(_evidence_link(ev, ev.named_file[len(ev.folder) + 1:], linker, page))
    for name in (RECORD_NAME, "SHA256SUMS"):
        if ev.has(name):
            files.append(_evidence_link(ev, name, linker, page))
    change_html = diff_html(facts.patch.diff) if facts.patch and facts.patch.diff else None
    stages = _dicts(record.get("stages"))
    return AttemptView(
        attempt.number, f"attempt-{attempt.number}", attempt.timestamp, attempt.outcome, kind, attempt.stage,
        reason,
        seconds_text(record.get("duration_s")), attempt.base_commit, facts.base_known, facts.recorded_in,
        ev.state.value, ev.problems, folder, tuple(files), _stages(record, stages, ev, linker, page),
        _stage_counts(stages, "red"), _stage_counts(stages, "green"),
        facts.patch.caption if facts.patch else "", change_html,
        facts.patch_note if facts.patch is None else (
            "the change touched no file besides the ledger and the evidence" if not facts.patch.diff else
            ("cut: the diff is longer than the report shows" if facts.patch.cut else "")))


def _field_links(item: Item, name: str, values: tuple[str, ...], known: frozenset[str], linker: Linker,
                 page: str) -> tuple[Link, ...]:
    if name == "Depends-On":
        return tuple(Link(d, linker.page(page, item_page(d))) if d in known else
                     Link(d, None, f"{d} is not an item of the ledger") for d in item.depends_on)
    if name == "Spec" and item.spec:
        href = linker.resolver(page, "")(item.spec)
        return (Link(item.spec, href, "" if href else "not a file of this repository"),)
    return tuple(Link(v, None) for v in values if v)


def item_model(item: Item, known: frozenset[str], facts: Mapping[int, AttemptFacts], linker: Linker,
               ledger_dir: str) -> ItemModel:
    """`known`: the ledger's ids; `facts` by attempt line; `ledger_dir`: where prose links start from."""
    page = item_page(item.id)
    fields = tuple((name, _field_links(item, name, values, known, linker, page))
                   for name, values in item.fields.items() if name != "Status")
    attempts = tuple(attempt_view(a, facts[a.line], linker, page) for a in reversed(item.attempts))
    prose = markdown_html(item.prose, linker.resolver(page, ledger_dir))
    return ItemModel(_row(item, known, linker, page), page, fields, prose, attempts)
