"""Which change an attempt shows, from what attempt.json and the commits say."""
from __future__ import annotations

import pytest

from harness.webreport.gather import _change_source

SHA = "a" * 40


@pytest.mark.parametrize(("record", "outcome", "recorded", "expected"), [
    ({"head": SHA}, "GREEN", ("c" * 40,), ("range", SHA, "")),  # `harness verify`: base..head
    ({"head": "working tree"}, "GREEN", ("c" * 40, "d" * 40), ("commit", "c" * 40, "")),
    ({"head": "working tree"}, "GREEN", (), (
        "none", None, "no diff: the commit that recorded this attempt was not found")),
    ({"saved_ref": "refs/harness/failed/CALC-002/1"}, "FAILED at red", (), (
        "saved", "refs/harness/failed/CALC-002/1", "")),
    ({"saved_ref": "refs/harness/aborted/X/2"}, "ABORTED at agent", (), ("saved", "refs/harness/aborted/X/2", "")),
    ({"saved_ref": "refs/heads/main"}, "FAILED at red", (), (
        "none", None, "no diff: the attempt's work was not saved on a ref")),
    ({"saved_ref": "refs/harness/failed/../../x"}, "FAILED at red", (), (
        "none", None, "no diff: the attempt's work was not saved on a ref")),
    ({"head": "--output=/tmp/x"}, "FAILED at red", (), (
        "none", None, "no diff: the attempt's work was not saved on a ref")),
    (None, "FAILED at red", (), ("none", None, "no diff: the attempt's work was not saved on a ref")),
])
def test_change_source(record, outcome, recorded, expected) -> None:
    assert _change_source(record, outcome, recorded) == expected
