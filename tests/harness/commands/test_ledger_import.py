"""`harness ledger import FILE`: a PtychoPINN-style ledger becomes this repository's ledger, and the harness
can work from it at once (lint, next, report)."""
from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest

from harness.commands.init import LEDGER_SKELETON
from harness.errors import ExitCode
from harness.ledger import load_ledger
from harness.main import main
from tests.harness.project import HARNESS_YAML

FIXTURE = Path(__file__).parents[1] / "ledger" / "importing" / "fixtures" / "ptychopinn_fix_plan.md"
CLEAN = """\
# Plan

## Active / Pending Initiatives

### [A-001] First thing
- Depends on: None
- Priority: **High** (why it matters)
- Status: done — shipped.

### [B-002] Second thing
- Depends on: A-001 ✅
- Priority: Low
- Status: pending
"""


@pytest.fixture
def project(make_repo) -> Path:
    """A repository with a harness.yaml and no ledger yet, plus the source file outside it."""
    repo = make_repo({"harness.yaml": HARNESS_YAML, "README.md": "project\n"})
    shutil.copy(FIXTURE, repo.parent / "old_fix_plan.md")
    return repo


def test_import_then_lint_next_and_report_work_on_the_result(project: Path, capsys) -> None:
    source = project.parent / "old_fix_plan.md"
    assert main(["ledger", "-C", str(project), "import", str(source)]) == ExitCode.OK
    out = capsys.readouterr().out
    assert "read as the ptychopinn format (detected)" in out
    assert re.search(r"PROBE-SWEEP-002\s+Probe sweep rerun.*Phase 3 in progress -> in_progress\s+Critical -> 10\s+"
                     r"SIM-CORE-001", out)
    assert "line 185: Priority 'TBD' is not a priority this import knows" in out
    assert "FINDING-PINN-013" in out
    assert f"wrote {project / 'docs/fix_plan.md'}: 20 item(s)" in out
    ledger = load_ledger(project / "docs/fix_plan.md")
    assert len(ledger.items) == 20

    assert main(["ledger", "-C", str(project), "lint"]) == ExitCode.OK
    assert "ledger lint: no findings" in capsys.readouterr().out

    assert main(["next", "-C", str(project), "--json"]) == ExitCode.OK
    assert json.loads(capsys.readouterr().out)["id"] == "PROBE-SWEEP-002"

    assert main(["report", "-C", str(project)]) == ExitCode.OK
    assert "for 20 item(s)" in capsys.readouterr().out
    for item in ledger.items:
        page = project / "plans/report/items" / f"{item.id}.html"
        assert item.title.replace("&", "&amp;") in page.read_text(encoding="utf-8")


def test_every_source_line_is_in_the_ledger_or_in_the_printed_report(project: Path, capsys) -> None:
    source = project.parent / "old_fix_plan.md"
    assert main(["ledger", "-C", str(project), "import", str(source)]) == ExitCode.OK
    printed = capsys.readouterr().out
    written = (project / "docs/fix_plan.md").read_text(encoding="utf-8")
    lost = []
    for number, line in enumerate(source.read_text(encoding="utf-8").splitlines(), 1):
        text = line.strip()
        if not text:
            continue
        text = re.sub(r"^(?:-(?=#|\s{2,}[-*]))?\s*(?:#{1,6}\s+|[-*>]\s+)?", "", line).strip()
        if text not in written and f"line {number}: " not in printed:
            lost.append((number, line))
    assert lost == []


def test_check_writes_nothing_and_exits_1_when_lines_could_not_be_mapped(project: Path, capsys) -> None:
    source = project.parent / "old_fix_plan.md"
    assert main(["ledger", "-C", str(project), "import", str(source), "--check"]) == ExitCode.REFUSED
    out = capsys.readouterr().out
    assert "could not map" in out and "--check: nothing written" in out
    assert not (project / "docs/fix_plan.md").exists()
    clean = project.parent / "clean.md"
    clean.write_text(CLEAN, encoding="utf-8")
    assert main(["ledger", "-C", str(project), "import", str(clean), "--check"]) == ExitCode.OK
    assert not (project / "docs/fix_plan.md").exists()


def test_json_output(project: Path, capsys) -> None:
    clean = project.parent / "clean.md"
    clean.write_text(CLEAN, encoding="utf-8")
    out_path = project / "ledger.md"
    assert main(["ledger", "-C", str(project), "import", str(clean), "--out", str(out_path), "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["format"] == "ptychopinn" and data["written"] == str(out_path) and data["lint"] == []
    assert [(i["id"], i["status"], i["priority"], i["depends_on"]) for i in data["items"]] == [
        ("A-001", "done", 20, []), ("B-002", "pending", 40, ["A-001"])]
    assert load_ledger(out_path).get("B-002").depends_on == ("A-001",)


def test_an_existing_ledger_is_kept_unless_force(project: Path, capsys) -> None:
    source = project.parent / "old_fix_plan.md"
    ledger_path = project / "docs/fix_plan.md"
    ledger_path.parent.mkdir()
    ledger_path.write_text(LEDGER_SKELETON, encoding="utf-8")  # what `harness init` writes: replaced freely
    assert main(["ledger", "-C", str(project), "import", str(source)]) == ExitCode.OK
    imported = ledger_path.read_text(encoding="utf-8")
    capsys.readouterr()

    ledger_path.write_text(imported + "\nnotes of mine\n", encoding="utf-8")
    assert main(["ledger", "-C", str(project), "import", str(source)]) == ExitCode.ERROR
    err = capsys.readouterr().err
    assert f"{ledger_path} already holds a ledger" in err and "--force" in err
    assert ledger_path.read_text(encoding="utf-8").endswith("notes of mine\n")

    assert main(["ledger", "-C", str(project), "import", str(source), "--force"]) == ExitCode.OK
    assert ledger_path.read_text(encoding="utf-8") == imported


def test_a_ledger_converted_in_place_needs_force(project: Path, capsys) -> None:
    ledger_path = project / "docs/fix_plan.md"
    ledger_path.parent.mkdir()
    shutil.copy(FIXTURE, ledger_path)
    assert main(["ledger", "-C", str(project), "import", str(ledger_path)]) == ExitCode.ERROR
    assert "is the file being imported: pass --force to convert it in place" in capsys.readouterr().err
    assert ledger_path.read_text(encoding="utf-8") == FIXTURE.read_text(encoding="utf-8")
    assert main(["ledger", "-C", str(project), "import", str(ledger_path), "--force"]) == ExitCode.OK
    assert len(load_ledger(ledger_path).items) == 20


@pytest.mark.parametrize(("content", "message"), [
    (None, "no such file"),
    (b"### [A-1] caf\xe9\n", "is not UTF-8 (line 1"),
    (b"# Notes\n\nnothing here\n", "cannot tell its format"),
    (b"# Fix Plan\n\n## [A-1] a\n- Status: pending\n", "already in this harness's ledger format"),
], ids=["missing", "not-utf8", "unknown-format", "already-ours"])
def test_bad_input_is_a_clear_error_and_writes_nothing(project: Path, capsys, content, message) -> None:
    source = project.parent / "input.md"
    if content is not None:
        source.write_bytes(content)
    assert main(["ledger", "-C", str(project), "import", str(source)]) == ExitCode.ERROR
    err = capsys.readouterr().err
    assert str(source) in err and message in err
    assert not (project / "docs/fix_plan.md").exists()


def test_usage_errors(project: Path, capsys) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["ledger", "-C", str(project), "import"])
    assert exc.value.code == ExitCode.USAGE
    assert "`harness ledger import` needs FILE" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exc:
        main(["ledger", "-C", str(project), "lint", "--check"])
    assert exc.value.code == ExitCode.USAGE
    assert "--check only goes with `import`" in capsys.readouterr().err
