"""`harness.ledger.importing.formats`: which format a file is in, the entry point, reading the file."""
from __future__ import annotations

from pathlib import Path

import pytest

from harness.errors import LedgerError
from harness.ledger import parse_ledger
from harness.ledger.importing import LedgerFormat, detect_format, import_ledger, read_source
from tests.harness.ledger.helpers import EXAMPLE

FIXTURES = Path(__file__).parent / "fixtures"
OURS = "# Fix Plan\n\n## [A-1] a\n- Status: pending\n- Priority: 1\n"
NOTES = "# Notes\n\nNothing here.\n"


@pytest.mark.parametrize("name", ["ptychopinn_fix_plan.md", "ptychopinn_archive.md"])
def test_the_ptychopinn_fixtures_are_detected(name: str) -> None:
    assert detect_format((FIXTURES / name).read_text(encoding="utf-8")).format is LedgerFormat.PTYCHOPINN


def test_this_harness_s_own_ledgers_are_detected_as_such() -> None:
    assert detect_format(OURS).format is LedgerFormat.HARNESS
    assert detect_format(EXAMPLE).format is LedgerFormat.HARNESS  # Depends-On, Exit-Criteria, attempt lines
    # a stray PtychoPINN-style line does not turn a ledger with attempt lines into one to convert
    assert detect_format(EXAMPLE.replace("- Mode: tdd\n", "- Mode: tdd\n- Owner/Date: x\n")).format is \
        LedgerFormat.HARNESS
    with pytest.raises(LedgerError, match=r"ours.md: is already in this harness's ledger format"):
        import_ledger(OURS, source="ours.md")


def test_a_file_of_neither_format_is_refused_with_what_to_do() -> None:
    assert detect_format(NOTES).format is None
    assert detect_format("## [a-1] lower case\n- Status: pending\n").format is None  # marks of neither
    assert detect_format("```\n### [A-1] in a fence\n```\n").format is None
    with pytest.raises(LedgerError, match=r"notes.md: cannot tell its format.*--format ptychopinn"):
        import_ledger(NOTES, source="notes.md")


def test_a_named_format_is_used_as_asked() -> None:
    forced = import_ledger(OURS, fmt="ptychopinn", source="ours.md")
    assert forced.format is LedgerFormat.PTYCHOPINN and parse_ledger(forced.text).get("A-1").priority == 1
    with pytest.raises(LedgerError, match=r"cannot import the format 'harness'; known: auto, ptychopinn"):
        import_ledger(OURS, fmt="harness", source="ours.md")


def test_read_source_names_the_file_and_the_problem(tmp_path: Path) -> None:
    with pytest.raises(LedgerError, match=r"missing.md: no such file"):
        read_source(tmp_path / "missing.md")
    with pytest.raises(LedgerError, match=r": cannot read it"):
        read_source(tmp_path)
    bad = tmp_path / "bad.md"
    bad.write_bytes(b"ok\nline two \xff\n")
    with pytest.raises(LedgerError, match=r"bad.md: is not UTF-8 \(line 2, byte 12\)"):
        read_source(bad)
