from __future__ import annotations

import re

import pytest

from harness.commands._console import print_table, say


def test_print_table_pads_columns_and_trims_line_ends(capsys: pytest.CaptureFixture[str]) -> None:
    print_table(("id", "status", "note"), [("A-1", "done", "-"), ("LONGER-2", "todo", "")])
    assert capsys.readouterr().out.splitlines() == [
        "id        status  note",
        "A-1       done    -",
        "LONGER-2  todo",
    ]


def test_say_stamps_the_time(capsys: pytest.CaptureFixture[str]) -> None:
    say("iteration 1: selecting ...")
    say("indented", indent="  ")
    first, second = capsys.readouterr().out.splitlines()
    assert re.fullmatch(r"\[\d\d:\d\d:\d\d\] iteration 1: selecting \.\.\.", first)
    assert re.fullmatch(r"  \[\d\d:\d\d:\d\d\] indented", second)
