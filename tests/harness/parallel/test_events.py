"""Worker event lines, JSON lines and the summary table."""
from __future__ import annotations

import json

from harness.parallel.events import Console, SummaryRow, stage_times, table
from harness.proof.stage_records import AgentTurnDetail, StageResult

ROW = SummaryRow("CALC-001", "w2", 1, 10.25, 3.5, 1.0, "GREEN", "all stages passed")


def test_stage_times_split_agent_proof_and_merge() -> None:
    agent = StageResult("agent", True, "ok", duration_s=10.0,
                        detail=AgentTurnDetail("single", ("a",), 0, False, ()))
    stages = [agent, StageResult("red", True, "ok", duration_s=2.0), StageResult("green", True, "ok", duration_s=1.0),
              StageResult("merge", True, "ok", duration_s=0.5), StageResult("merged-gates", True, "ok", duration_s=3.0)]
    assert stage_times(stages) == (10.0, 3.0, 3.5)


def test_lines_for_people_and_json_lines_for_machines(capsys) -> None:
    Console(as_json=False).event("merged", "w2", "CALC-001", "GREEN as abc")
    Console(as_json=False).summary([ROW])
    out = capsys.readouterr().out
    assert "] w2 [CALC-001] merged: GREEN as abc" in out
    assert "CALC-001" in out.splitlines()[-1] and "10.2s" in out and out.splitlines()[-1].endswith("GREEN")
    assert table([ROW]).splitlines()[0].split() == ["item", "worker", "#", "agent", "proof", "merge", "outcome"]
    console = Console(as_json=True)
    console.event("started", "w1", "CALC-001", "attempt #1", attempt=1)
    console.summary([ROW])
    console.stopped("done", 0)
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [line["event"] for line in lines] == ["started", "summary", "stopped"]
    assert lines[0]["item"] == "CALC-001" and lines[0]["worker"] == "w1" and lines[0]["attempt"] == 1
    assert lines[1]["rows"][0]["agent_s"] == 10.25 and lines[2]["exit_code"] == 0
