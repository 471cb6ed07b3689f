"""Ledgers for the ledger tests: the documented example, attempt lines, and random ledgers (hypothesis)."""
from __future__ import annotations

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

from harness.ledger import (
    STATUSES,
    Ledger,
)

EXAMPLE = """\
# Fix Plan

## [DATA-001-MEMMAP] MemmapDatasetBridge accepts the canonical diffraction key
- Status: pending
- Priority: 1
- Depends-On: FOUNDATION-001
- Initiative: STUDY-SYNTH-FLY64-DOSE-OVERLAP-001
- Slug: phase_e_memmap_diffraction_fallback
- Spec: docs/specs/data_contracts.md#keys
- Mode: tdd
- RED: tests/torch/test_data_pipeline.py::TestMemmapBridgeParity::test_memmap_bridge_accepts_diffraction_legacy
- Regression: tests/torch/test_data_pipeline.py -k memmap
- Exit-Criteria: the bridge loads NPZs with either key; dtype and shape preserved

Free prose: context, notes, anything.

### Attempts History
- 2025-11-06T08:45:00Z · #1 · GREEN · 3f2a1bc · plans/active/STUDY-SYNTH-FLY64-DOSE-OVERLAP-001/reports/2025-11-06T084500Z/phase_e_memmap_diffraction_fallback/analysis/summary.md
"""


ATTEMPT = "- 2025-11-06T08:45:00Z · #{n} · {outcome} · 3f2a1bc · plans/x/{n}/summary.md"


def attempt_line(n: int, outcome: str = "FAILED at red") -> str:
    return ATTEMPT.format(n=n, outcome=outcome)


def lines_of(text: str) -> list[str]:
    """Line bodies without endings, split on LF only (never on unicode line separators)."""
    pieces = text.split("\n")
    if pieces[-1] == "":
        pieces.pop()
    return [p.removesuffix("\r") for p in pieces]


# Built from characters rather than `st.from_regex` (the same strings: [A-Z0-9][A-Z0-9._-]{0,8}), which cost
# most of these tests' time drawing them.
_UPPER_DIGITS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
ID = st.builds(str.__add__, st.sampled_from(_UPPER_DIGITS), st.text(st.sampled_from(_UPPER_DIGITS + "._-"), max_size=8))
LOWER_WORD = st.text(st.sampled_from("abcdefghijklmnopqrstuvwxyz"), min_size=1, max_size=6)  # [a-z]{1,6}


SAFE_TEXT = st.text(st.sampled_from("abcXYZ019 ._-:,()[]é€→\u2028\u00b7\t"), max_size=20)


TRICKY_PROSE = [
    ["```", "## [FAKE-1] in a fence", "- Status: done", "### Attempts History", "- not an attempt", "```"],
    ["~~~~python", "```", "## nope", "~~~~"],
    ["### Notes", "text under notes"],
    ["#### a deep heading"],
    ["- a prose bullet", "* another bullet"],
    ["  indented text  "],
    ["- Status: done"],
    [""],
]


@st.composite
def prose_lines(draw: st.DrawFn) -> list[str]:
    lines: list[str] = []
    for _ in range(draw(st.integers(0, 3))):
        if draw(st.booleans()):
            lines += draw(st.sampled_from(TRICKY_PROSE))
        else:
            lines.append("p" + draw(SAFE_TEXT) + draw(st.sampled_from(["", " ", "  \t"])))
    return lines


@st.composite
def ledgers(draw: st.DrawFn) -> tuple[str, list[dict]]:
    """A random ledger text and the model it was rendered from."""
    ids = draw(st.lists(ID, unique=True, max_size=5))
    lines = draw(st.sampled_from([[], ["# Fix Plan"], ["# Fix Plan", "", "Intro - with: colons", ""]]))
    model = []
    for item_id in ids:
        title = "T" + draw(SAFE_TEXT).replace("\t", " ").strip()
        lines.append(f"## [{item_id}] {title}" + draw(st.sampled_from(["", " "])))
        lines += [""] * draw(st.integers(0, 1))
        spec: dict = {"id": item_id, "title": title, "status": "pending", "priority": 100, "red": [],
                      "attempts": []}
        if draw(st.booleans()):
            status = draw(st.sampled_from([*STATUSES, "wip"]))
            reason = draw(st.sampled_from(["", " (needs (nested) parens)"])) if status == "blocked" else ""
            lines.append(f"- Status: {status}{reason}")
            spec["status"] = status
        if draw(st.booleans()):
            spec["priority"] = draw(st.integers(-50, 200))
            lines.append(f"- Priority: {spec['priority']}")
        for _ in range(draw(st.integers(0, 2))):
            selector = "tests/test_" + draw(LOWER_WORD) + ".py"
            spec["red"].append(selector)
            lines.append(f"- RED: {selector}")
        if draw(st.booleans()):
            lines.append("- Owner: " + draw(SAFE_TEXT).strip())
        prose = draw(prose_lines())
        if prose:  # a plain line first: after blank lines alone, a field line would open the field block
            lines += ["", "Prose."] + prose
        if draw(st.booleans()):
            lines += [""] * draw(st.integers(0, 1)) + ["### Attempts History"]
            for number in range(1, draw(st.integers(0, 3)) + 1):
                outcome = draw(st.sampled_from(["GREEN", "FAILED at red", "ABORTED at agent"]))
                lines.append(attempt_line(number, outcome) + draw(st.sampled_from(["", "  "])))
                spec["attempts"].append((number, outcome))
                if draw(st.integers(0, 4)) == 0:
                    lines.append("  continued")
            lines += draw(st.sampled_from([[], ["", "after the attempts"], ["", "### Later", "later prose"]]))
        lines += [""] * draw(st.integers(0, 2))
        model.append(spec)
    newline = draw(st.sampled_from(["\n", "\r\n"]))
    text = newline.join(lines) + (newline if lines and draw(st.booleans()) else "")
    return text, model


def assert_matches_model(ledger: Ledger, model: list[dict]) -> None:
    assert ledger.ids() == tuple(spec["id"] for spec in model)
    for item, spec in zip(ledger.items, model, strict=True):
        assert (item.title, item.status, item.priority) == (spec["title"], spec["status"], spec["priority"])
        assert item.red == tuple(spec["red"])
        assert [(a.number, a.outcome) for a in item.attempts] == spec["attempts"]


def same_newlines(old: str, new: str) -> None:
    if "\r\n" in old:
        assert new.count("\r\n") == new.count("\n")
    else:
        assert "\r" not in new
    assert new.endswith("\n") == old.endswith("\n")


PROPERTY = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
