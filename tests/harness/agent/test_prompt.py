"""The agent's prompt: its context (item, spec section, findings, selectors, previous attempt) and templates."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from harness.agent.prompt import (
    AgentError,
    build_prompt_context,
    render_prompt,
)
from harness.config import parse_config
from harness.ledger import Item, parse_ledger

LEDGER = """\
# Fix Plan

## [DATA-1] Bridge accepts the diffraction key
- Status: in_progress
- Initiative: STUDY-7
- Spec: docs/specs/data.md#keys-and-shapes
- RED: tests/test_bridge.py::test_accepts_diffraction
- Regression: tests/test_bridge.py -k memmap
- Exit-Criteria: both keys load

The bridge must accept `diffraction` as well as `diff3d`.
{attempts}"""

SPEC = """\
# Data spec

## Keys and shapes
`diffraction` is (N, H, W) float32 amplitudes.

### Legacy keys
`diff3d` is accepted too.

## Units
NOT IN THE EXCERPT.
"""

FINDINGS = """\
# Findings

## FIND-001 npz memmap pitfall (DATA-1)
`np.load` with mmap_mode on an npz reads everything.

### FIND-001 details
Use the zip offset.

## FIND-002 unrelated
Mentions DATA-10, DATA-1b, DATA-1.2, OLD-DATA-1 and XDATA-1 only.

## Table of small findings
| ID | Finding |
|---|---|
| FIND-003 | STUDY-7 doses must be log-spaced |
| FIND-004 | nothing relevant |

## Notes
- FIND-005: the spec data.md has a typo in the units
- FIND-006: another thing
"""


def make_item(tmp_path: Path, attempts: str = "") -> tuple[Item, str]:
    text = LEDGER.format(attempts=attempts)
    (tmp_path / "docs" / "specs").mkdir(parents=True, exist_ok=True)
    (tmp_path / "docs" / "fix_plan.md").write_text(text)
    return parse_ledger(text).get("DATA-1"), text


def write(tmp_path: Path, files: dict[str, str]) -> None:
    for rel, text in files.items():
        path = tmp_path / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)


def test_prompt_has_item_spec_section_findings_selectors_and_rules(tmp_path: Path) -> None:
    item, text = make_item(tmp_path)
    write(tmp_path, {"docs/specs/data.md": SPEC, "docs/findings.md": FINDINGS})
    context = build_prompt_context(repo_root=tmp_path, item=item, ledger_text=text)
    prompt = render_prompt(context)
    assert "## Item [DATA-1] Bridge accepts the diffraction key" in prompt
    assert "The bridge must accept `diffraction` as well as `diff3d`." in prompt
    assert "- Exit-Criteria: both keys load" in prompt
    # The spec section, its subsection included, and nothing after it.
    assert "`diffraction` is (N, H, W) float32 amplitudes." in prompt
    assert "`diff3d` is accepted too." in prompt
    assert "NOT IN THE EXCERPT" not in prompt
    # Findings: by id (heading, with its subsection), by initiative (a table row), by spec file (a list item).
    assert "FIND-001 npz memmap pitfall" in prompt and "Use the zip offset." in prompt
    assert "| FIND-003 | STUDY-7 doses must be log-spaced |" in prompt and "| ID | Finding |" in prompt
    assert "FIND-005: the spec data.md has a typo" in prompt
    for unrelated in ("FIND-002", "FIND-004", "FIND-006"):
        assert unrelated not in prompt
    assert "- RED: `tests/test_bridge.py::test_accepts_diffraction`" in prompt
    assert "- Regression: `tests/test_bridge.py -k memmap`" in prompt
    assert "Write the failing test first" in prompt
    assert "Do not edit the ledger (docs/fix_plan.md)" in prompt and "plans/active" in prompt
    assert "Do not commit" in prompt and "the harness runs the tests itself" in prompt
    assert "first attempt" in prompt
    assert context["item_text"].startswith("## [DATA-1]") and "diff3d" in context["item_text"]


def test_prompt_gives_the_previous_attempts_reason_and_summary(tmp_path: Path) -> None:
    evidence = "plans/active/STUDY-7/reports/2025-11-06T084500Z/bridge/analysis/summary.md"
    item, _ = make_item(tmp_path, attempts=(
        "\n### Attempts History\n"
        "- 2025-11-06T08:45:00Z · #1 · FAILED at red · 3f2a1bc · " + evidence + "\n"))
    folder = tmp_path / "plans/active/STUDY-7/reports/2025-11-06T084500Z/bridge"
    write(tmp_path, {evidence: "# [DATA-1] summary\nRED at base: test_accepts_diffraction PASSED\n"})
    (folder / "attempt.json").write_text(json.dumps({
        "failed_stage": "red", "reason": "RED not proven: tests/test_bridge.py passes without the change"}))
    prompt = render_prompt(build_prompt_context(repo_root=tmp_path, item=item))
    assert "Attempt #1" in prompt and "FAILED at red" in prompt
    assert "RED not proven: tests/test_bridge.py passes without the change" in prompt
    assert "RED at base: test_accepts_diffraction PASSED" in prompt
    assert "first attempt" not in prompt
    # A summary handed in by the caller replaces the file; None leaves the previous attempt out.
    given = render_prompt(build_prompt_context(repo_root=tmp_path, item=item, previous_summary="IN MEMORY"))
    assert "IN MEMORY" in given and "RED at base" not in given
    none = render_prompt(build_prompt_context(repo_root=tmp_path, item=item, previous_summary=None))
    assert "first attempt" in none


def test_previous_attempt_with_missing_evidence_is_said_not_crashed(tmp_path: Path) -> None:
    item, _ = make_item(tmp_path, attempts=(
        "\n### Attempts History\n"
        "- 2025-11-06T08:45:00Z · #1 · FAILED at green · 3f2a1bc · plans/gone/summary.md\n"))
    prompt = render_prompt(build_prompt_context(repo_root=tmp_path, item=item))
    assert "FAILED at green" in prompt and "plans/gone/summary.md is not in the working tree" in prompt


def test_missing_spec_file_and_missing_anchor_are_said(tmp_path: Path) -> None:
    item, _ = make_item(tmp_path)
    prompt = render_prompt(build_prompt_context(repo_root=tmp_path, item=item))
    assert "the spec file docs/specs/data.md does not exist" in prompt
    assert "no docs/findings.md in this repository" in prompt
    write(tmp_path, {"docs/specs/data.md": "# Data\n\n## Other\ntext\n"})
    prompt = render_prompt(build_prompt_context(repo_root=tmp_path, item=item))
    assert "has no heading with anchor #keys-and-shapes" in prompt and "#other" in prompt


def test_spec_without_anchor_is_the_whole_file_truncated(tmp_path: Path) -> None:
    text = LEDGER.format(attempts="").replace("docs/specs/data.md#keys-and-shapes", "docs/specs/big.md")
    item = parse_ledger(text).get("DATA-1")
    write(tmp_path, {"docs/specs/big.md": "# Big\n" + "".join(f"line {n}\n" for n in range(5000))})
    prompt = render_prompt(build_prompt_context(repo_root=tmp_path, item=item))
    assert "line 0\n" in prompt and "line 4999" not in prompt
    assert "more characters not shown: read docs/specs/big.md itself" in prompt
    assert len(prompt) < 20_000


def test_phases_and_chore_mode_change_the_instructions(tmp_path: Path) -> None:
    item, _ = make_item(tmp_path)
    red = render_prompt(build_prompt_context(repo_root=tmp_path, item=item, phase="red"))
    green = render_prompt(build_prompt_context(repo_root=tmp_path, item=item, phase="green"))
    plain = render_prompt(build_prompt_context(repo_root=tmp_path, item=item))
    assert "RED phase: write the failing test(s) only" in red and "GREEN phase" not in red
    assert "proven that the RED test(s) fail" in green and "Do not weaken the tests" in green
    assert "RED phase" not in plain and "GREEN phase" not in plain
    chore = render_prompt(build_prompt_context(repo_root=tmp_path, item=item), mode="chore")
    assert "no failing test is required" in chore and "Write the failing test first" not in chore
    assert "Do not commit" in chore
    with pytest.raises(AgentError, match="phase 'blue'"):
        build_prompt_context(repo_root=tmp_path, item=item, phase="blue")


def test_custom_template_path_is_used_and_errors_are_clear(tmp_path: Path) -> None:
    item, _ = make_item(tmp_path)
    write(tmp_path, {"prompts/mine.md.j2": "CUSTOM {{ item.id }} {{ selectors.red | join(',') }} "
                                           "{{ 'first' if previous is none else 'again' }}\n"})
    context = build_prompt_context(repo_root=tmp_path, item=item)
    assert render_prompt(context, template_path="prompts/mine.md.j2") == (
        "CUSTOM DATA-1 tests/test_bridge.py::test_accepts_diffraction first\n")
    with pytest.raises(AgentError, match="agent.prompt_template"):
        render_prompt(context, template_path="prompts/absent.md.j2")
    write(tmp_path, {"prompts/bad.md.j2": "{{ no_such_key }}\n"})
    with pytest.raises(AgentError, match="no_such_key.*the prompt context has: .*selectors"):
        render_prompt(context, template_path="prompts/bad.md.j2")


def test_the_findings_file_is_a_setting_and_null_leaves_findings_out(tmp_path: Path) -> None:
    item, _ = make_item(tmp_path)
    write(tmp_path, {"docs/specs/data.md": SPEC, "notes/lessons.md": FINDINGS})
    prompt = render_prompt(build_prompt_context(repo_root=tmp_path, item=item, findings_path="notes/lessons.md"))
    assert "## Findings that concern this item (notes/lessons.md)" in prompt and "Use the zip offset." in prompt
    prompt = render_prompt(build_prompt_context(repo_root=tmp_path, item=item, findings_path=None))
    assert "Findings" not in prompt and "FIND-001" not in prompt
    assert parse_config("agent:\n  findings: notes/lessons.md\n").agent.findings == "notes/lessons.md"
    assert parse_config("agent:\n  findings: null\n").agent.findings is None
    assert parse_config("").agent.findings == "docs/findings.md"
