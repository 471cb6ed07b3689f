"""Recovery after kill -9: files the commit leaves out, set aside while the stages ran, are put back."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from harness.errors import ExitCode
from harness.ledger import load_ledger
from harness.main import main
from tests.conftest import git
from tests.harness.project import MUL_IMPL, MUL_TEST, apply_change, make_project, status_porcelain


def _crash(repo: Path, args: list[str], stage: str) -> str:
    proc = subprocess.run([sys.executable, "-m", "harness", *args, "-C", str(repo)], capture_output=True,
                          text=True, env={**os.environ, "HARNESS_CRASH_AT": stage, "PYTHONUNBUFFERED": "1"},
                          timeout=300, check=False)
    assert proc.returncode == -signal.SIGKILL, proc.stdout + proc.stderr
    return proc.stdout



LEFT_OUT_YAML = "caps:\n  changed_file_bytes: 2000\nignore:\n  - 'notes/**'\n"
BIG = b"\x00big data\n" * 400  # 4000 bytes: over the cap


@pytest.mark.slow
def test_kill_9_while_left_out_files_are_set_aside_puts_them_back_at_the_next_start(make_repo) -> None:
    repo = make_project(make_repo, extra={"notes/kept.txt": "committed note\n", "notes/gone.txt": "old\n"})
    (repo / "harness.yaml").write_text((repo / "harness.yaml").read_text() + LEFT_OUT_YAML)
    git(repo, "commit", "-qam", "caps and ignore")
    apply_change(repo, {"tests/test_mul.py": MUL_TEST, "pkg/calc.py": MUL_IMPL,
                        "notes/kept.txt": "a person's edit of a note\n"})
    (repo / "data").mkdir()
    (repo / "data/big.bin").write_bytes(BIG)
    (repo / "data/big.bin").chmod(0o755)
    (repo / "notes/gone.txt").unlink()
    out = _crash(repo, ["run", "--no-agent", "CALC-001"], "green")
    assert "left out of the commit, set aside while the stages run: data/big.bin" in out

    # killed while the stages ran: the tree was the one the commit would hold
    assert not (repo / "data").exists()
    assert (repo / "notes/kept.txt").read_text() == "committed note\n"
    assert (repo / "notes/gone.txt").read_text() == "old\n"

    assert main(["run", "-C", str(repo), "--no-agent", "CALC-001"]) == ExitCode.ERROR  # recovers, then no work
    assert (repo / "data/big.bin").read_bytes() == BIG
    assert (repo / "data/big.bin").stat().st_mode & 0o777 == 0o755
    assert (repo / "notes/kept.txt").read_text() == "a person's edit of a note\n"
    assert not (repo / "notes/gone.txt").exists()
    assert status_porcelain(repo) == " D notes/gone.txt\n M notes/kept.txt\n?? data/big.bin\n"
    item = load_ledger(repo / "docs/fix_plan.md").get("CALC-001")
    assert [a.outcome for a in item.attempts] == ["ABORTED at green"]
    assert git(repo, "show", "refs/harness/aborted/CALC-001/1:tests/test_mul.py") == MUL_TEST
    assert not (repo / ".git/harness/journal.kept").exists()
