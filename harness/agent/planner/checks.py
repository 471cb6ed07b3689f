"""The lint a proposal must pass before anything enters the ledger; every problem is reported, each with
the proposal's line and the item's id.

A proposal is refused when: it breaks the grammar (`parse-error`, `duplicate-id`: ids in a proposal are
unique); it touches an item that is not `pending` or `blocked` (`not-editable`: done items and their
records are the harness's); it holds attempt lines (`attempt-lines`); it sets a Status other than pending
or blocked (`status`); a Depends-On names an id that neither the ledger nor the proposal has
(`missing-dependency`) or closes a cycle through a proposed item (`dependency-cycle`); a `tdd` item names
no RED selector (`no-red`) or a RED selector does not name a test file, existing or to be created: a `.py`
path inside the repository that `test_globs` calls a test (`red-not-a-test-file`); a RED, Regression or
Acceptance selector does not parse (`selector`); `planner.require_acceptance` is set and an item names no
Acceptance selector (`missing-acceptance`); or `harness ledger lint` would report the proposed item
(`unknown-field`, `unknown-status`, `unknown-mode`, `stray-field`, `bad-path-name`, `unknown-allow`,
`unknown-mutation`). harness.agent.planner.step adds what it sees of the planner's run (`tree-changed`,
`head-moved`).
"""
from __future__ import annotations

import difflib
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from harness.agent.planner.proposal import Proposal, ProposedItem
from harness.errors import SelectorError
from harness.globs import matches_any
from harness.graphs import cyclic_components
from harness.ledger import Item, Ledger, lint_text
from harness.pytest_run.runner import parse_selector

EDITABLE_STATUSES = ("pending", "blocked")
SELECTOR_FIELDS = ("RED", "Regression", "Acceptance")
# `harness ledger lint` codes that concern one item alone; the others need the whole ledger (dependencies,
# cycles) or concern attempt lines, which a proposal never holds.
ITEM_LINT_CODES = ("unknown-field", "unknown-status", "unknown-mode", "stray-field", "bad-path-name",
                   "unknown-allow", "unknown-mutation")

PLAN_CODES = {
    "parse-error": "the proposal breaks the ledger grammar (docs/specs/ledger.md)",
    "duplicate-id": "the proposal gives one id to two items",
    "not-editable": "the proposal touches an item that is not pending or blocked (done items are the harness's)",
    "attempt-lines": "the proposal holds an Attempts History: attempt lines are the harness's",
    "status": "the proposal sets a Status other than pending or blocked",
    "missing-dependency": "Depends-On names an id that neither the ledger nor the proposal has",
    "dependency-cycle": "Depends-On closes a cycle through a proposed item",
    "no-red": "a tdd item names no RED selector",
    "red-not-a-test-file": "a RED selector does not name a test file (existing or to be created)",
    "selector": "a RED, Regression or Acceptance selector does not parse",
    "missing-acceptance": "planner.require_acceptance is set and the item names no Acceptance selector",
    **{code: f"`harness ledger lint` would report it ({code})" for code in ITEM_LINT_CODES},
    "tree-changed": "the planner changed the working tree (it may write only its proposal file)",
    "head-moved": "the planner moved HEAD (it made a commit or checked out another revision)",
}


@dataclass(frozen=True)
class PlanProblem:
    """Why a proposal is refused: `code` a key of PLAN_CODES, `line` the proposal's (None: not a line)."""

    code: str
    item_id: str | None
    line: int | None
    message: str

    def render(self, source: str) -> str:
        where = f"{source}:{self.line}: " if self.line is not None else ""
        return f"{where}{f'[{self.item_id}] ' if self.item_id else ''}{self.code}: {self.message}"


def check_proposal(proposal: Proposal, proposal_text: str, merged: Ledger, *, test_globs: Iterable[str],
                   repo_root: Path, require_acceptance: bool) -> list[PlanProblem]:
    """Every problem of `proposal` (read from `proposal_text`), given `merged`, the ledger it would make.
    An empty list means it may be applied."""
    globs = tuple(test_globs)
    problems: list[PlanProblem] = []
    for proposed in proposal.items:
        problems += _item_problems(proposed, globs, Path(repo_root), require_acceptance)
    touched = {p.item.id for p in proposal.items}
    problems += [PlanProblem(f.code, f.item_id, f.line, f.message) for f in lint_text(proposal_text, "proposal")
                 if f.code in ITEM_LINT_CODES and f.item_id in touched]
    problems += _dependency_problems(proposal, merged)
    return sorted(problems, key=lambda p: (p.line or 0, p.code))


def _item_problems(proposed: ProposedItem, globs: tuple[str, ...], root: Path,
                   require_acceptance: bool) -> list[PlanProblem]:
    item, existing = proposed.item, proposed.existing
    out: list[PlanProblem] = []

    def add(code: str, line: int | None, message: str) -> None:
        out.append(PlanProblem(code, item.id, line, message))

    if existing is not None and existing.status not in EDITABLE_STATUSES:
        add("not-editable", item.line, f"[{item.id}] is {existing.status!r} in the ledger (line {existing.line}): "
            "a plan adds items and edits pending or blocked ones only; what the harness recorded stays as it is")
    if item.attempts_line is not None:
        add("attempt-lines", item.attempts_line, "the item holds an `### Attempts History` section: attempt "
            "lines are written by the harness alone; leave the section out (an edited item keeps its history)")
    if "Status" in item.fields and item.status_known and item.status not in EDITABLE_STATUSES:
        add("status", item.status_line, f"Status {item.status!r}: a plan sets pending or blocked only "
            "(in_progress and done are the harness's, from its own proof)")
    for name in SELECTOR_FIELDS:
        for raw, line in zip(item.fields.get(name, ()), item.field_lines.get(name, ()), strict=False):
            if not raw:
                continue
            try:
                parse_selector(raw)
            except SelectorError as exc:
                add("selector", line, f"`- {name}:` {exc}")
                continue
            if name == "RED" and (why := _not_a_test_file(raw, globs, root)):
                add("red-not-a-test-file", line, why)
    if item.mode == "tdd" and not item.red:
        add("no-red", item.line, "a tdd item needs a `- RED:` selector naming the test that fails before the "
            "change (tests/test_x.py::test_y); or give it `- Mode: chore` or `docs`")
    if require_acceptance and not item.acceptance:
        add("missing-acceptance", item.line, "planner.require_acceptance is set: name the held-out tests that "
            "judge the item with `- Acceptance: <selector>`")
    return out


def _not_a_test_file(raw: str, globs: tuple[str, ...], root: Path) -> str | None:
    """Why the RED selector `raw` does not name a test file (one path inside the repository, a `.py` file
    that `test_globs` calls a test, existing or to be created), or None."""
    args = parse_selector(raw).args
    if args[0].startswith("-"):
        return f"RED {raw!r} starts with an option; start it with the test file (tests/test_x.py::test_y)"
    for index, arg in enumerate(args):
        if index and (arg.startswith("-") or not ("::" in arg or arg.endswith(".py"))):
            continue  # an option, or an option's value (`-k memmap`)
        path = arg.split("::", 1)[0]
        pure = PurePosixPath(path)
        if not path or pure.is_absolute() or ".." in pure.parts or "\\" in path:
            return f"RED {raw!r}: {path!r} is not a path inside the repository, relative to its root"
        if (root / path).is_dir():
            return f"RED {raw!r} names the folder {path}: name the test file (and test) it adds"
        if not path.endswith(".py"):
            return f"RED {raw!r}: {path!r} is not a Python test file"
        if not matches_any(path, globs):
            return (f"RED {raw!r}: {path} is not a test file: it matches none of test_globs "
                    f"({', '.join(globs)}), so the RED proof would not carry it to the base commit")
    return None


def _dependency_problems(proposal: Proposal, merged: Ledger) -> list[PlanProblem]:
    ids = set(merged.ids())
    by_id: dict[str, Item] = {p.item.id: p.item for p in proposal.items}
    out: list[PlanProblem] = []
    for item in by_id.values():
        for dep in item.depends_on:
            if dep not in ids:
                close = difflib.get_close_matches(dep, sorted(ids - {item.id}), n=3)
                out.append(PlanProblem("missing-dependency", item.id, item.field_lines["Depends-On"][0],
                                       f"depends on [{dep}], which neither the ledger nor the proposal has"
                                       + (f" (did you mean {', '.join(close)}?)" if close else "")))
    graph = {item.id: list(item.depends_on) for item in merged.items}
    for component in cyclic_components(graph):
        mine = [item_id for item_id in by_id if item_id in component]  # in proposal order
        if not mine:
            continue  # a cycle the ledger had already: not the plan's doing (`harness ledger lint` reports it)
        first = by_id[mine[0]]
        line = first.field_lines["Depends-On"][0] if "Depends-On" in first.field_lines else first.line
        out.append(PlanProblem("dependency-cycle", first.id, line,
                               f"dependency cycle among {', '.join(sorted(component))}: each waits on another, "
                               "so none of them can run; remove one Depends-On"))
    return out
