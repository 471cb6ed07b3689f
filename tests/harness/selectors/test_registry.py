"""The selector registry: ledger + extra selectors, merged, grouped, selected, and the generated index."""
from __future__ import annotations

import pytest

from harness.config import ExtraSelector, parse_config
from harness.errors import SelectorError
from harness.ledger import parse_ledger
from harness.selectors.registry import build_registry, render_index

LEDGER = """\
# Plan

## [CALC-1] Addition works
- Initiative: CALC
- RED: tests/test_calc.py::test_add
- Regression: tests/test_calc.py
- Regression: tests/test_calc.py -k "add or zero"

## [CALC-2] Subtraction | too
- Initiative: CALC
- RED: tests/test_calc.py
- Regression: tests/test_sub.py

## [DOCS-1] A docs item names nothing
- Mode: docs
"""

EXTRA = (
    ExtraSelector("tests/test_smoke.py", "smoke", ("smoke", "fast")),
    ExtraSelector("tests/test_calc.py::test_add"),
)


def test_registry_merges_identical_selectors_and_keeps_every_membership() -> None:
    registry = build_registry(parse_ledger(LEDGER), EXTRA)

    assert registry.raws() == (
        "tests/test_calc.py::test_add", "tests/test_calc.py", 'tests/test_calc.py -k "add or zero"',
        "tests/test_sub.py", "tests/test_smoke.py",
    )
    add = registry.entries[0]
    assert [(m.kind, m.item_id) for m in add.memberships] == [("red", "CALC-1"), ("extra", None)]
    assert add.groups == ("CALC", "extra", "red")
    whole = registry.entries[1]
    assert [m.describe() for m in whole.memberships] == ["Regression CALC-1", "RED CALC-2"]
    assert whole.item_ids == ("CALC-1", "CALC-2")
    assert whole.kinds == ("red", "regression")
    assert registry.entries[2].selector.args == ("tests/test_calc.py", "-k", "add or zero")
    assert not registry.entries[2].selector.is_plain
    assert registry.entries[4].names == ("smoke",)
    assert registry.entries[4].groups == ("extra", "fast", "smoke")


def test_select_by_group_and_item_and_unknown_names_are_actionable_errors() -> None:
    registry = build_registry(parse_ledger(LEDGER), EXTRA)

    assert [e.raw for e in registry.select(group="smoke")] == ["tests/test_smoke.py"]
    assert [e.raw for e in registry.select(group="regression", item="CALC-2")] == ["tests/test_sub.py"]
    assert len(registry.select(group="CALC")) == 4
    assert registry.select() == registry.entries
    with pytest.raises(SelectorError, match=r"no selector is in group 'nope'; groups: CALC, extra, fast"):
        registry.select(group="nope")
    with pytest.raises(SelectorError, match=r"no selector belongs to item 'DOCS-1'; items .*CALC-1, CALC-2"):
        registry.select(item="DOCS-1")


def test_a_malformed_selector_names_the_ledger_line_and_the_item() -> None:
    ledger = parse_ledger("## [X-1] Quotes\n- RED: tests/test_a.py\n- Regression: tests/a.py -k 'open\n",
                          "docs/fix_plan.md")
    with pytest.raises(SelectorError, match=r"fix_plan.md:3: Regression of item X-1: .*balance its quotes"):
        build_registry(ledger)
    config = parse_config("selectors:\n  extra:\n    - {selector: \"a.py -k 'x\"}\n")
    with pytest.raises(SelectorError, match=r"harness.yaml: selectors.extra\[0\]"):
        build_registry(None, config.selectors.extra)


def test_index_is_deterministic_and_lists_items_groups_and_extras() -> None:
    registry = build_registry(parse_ledger(LEDGER), EXTRA)
    text = render_index(registry, ledger_path="docs/fix_plan.md")

    assert text == render_index(build_registry(parse_ledger(LEDGER), EXTRA), ledger_path="docs/fix_plan.md")
    assert "Do not edit by hand" in text and "5 selector(s)." in text
    assert "### CALC\n\n- **[CALC-1]** Addition works\n  - RED: `tests/test_calc.py::test_add`\n" in text
    assert "- **[CALC-2]** Subtraction | too\n  - RED: `tests/test_calc.py`\n" in text
    assert "| `tests/test_smoke.py` | smoke | extra, fast, smoke |" in text
    assert "- `smoke` (1): `tests/test_smoke.py`" in text
    # A `|` in a table cell would split the row.
    assert "| `tests/test_calc.py` | Regression CALC-1, RED CALC-2 | CALC, red, regression |" in text
    assert text.endswith("\n") and "\n\n\n" not in text


def test_empty_registry_renders_an_index_that_says_so() -> None:
    text = render_index(build_registry(parse_ledger("# Plan\n")), ledger_path="docs/fix_plan.md")
    assert "0 selector(s)." in text and "No ledger item names a RED or Regression selector." in text
