"""`harness run --no-agent`: the whole verified iteration on real git repos with real pytest suites."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from harness.errors import ExitCode
from harness.ledger import load_ledger
from harness.main import main
from tests.conftest import git
from tests.harness.project import (
    HARNESS_YAML,
    MUL_IMPL,
    MUL_TEST,
    apply_change,
    head_subject,
    make_project,
    status_porcelain,
    with_gates,
    with_xdist_workers,
)


def run_item(repo: Path, item: str | None = None, *extra: str) -> int:
    return main(["run", "-C", str(repo), "--no-agent", *([item] if item else []), *extra])


def evidence_of(repo: Path) -> Path:
    rel = git(repo, "log", "-1", "--format=%(trailers:key=Harness-Evidence,valueonly)").strip()
    return repo / rel


def test_green_iteration_commits_change_evidence_and_ledger(make_repo, capsys) -> None:
    repo = make_project(make_repo)
    base = git(repo, "rev-parse", "HEAD").strip()
    apply_change(repo, {"tests/test_mul.py": MUL_TEST, "pkg/calc.py": MUL_IMPL})

    assert run_item(repo, "CALC-001") == 0

    assert head_subject(repo) == "[CALC-001] calc gains mul: GREEN"
    assert status_porcelain(repo) == ""  # the change, evidence and ledger are all committed
    committed = set(git(repo, "show", "--name-only", "--format=", "HEAD").split())
    assert {"pkg/calc.py", "tests/test_mul.py", "docs/fix_plan.md"} <= committed
    trailers = git(repo, "log", "-1", "--format=%(trailers)")
    assert "Harness-Item: CALC-001" in trailers and "Harness-Initiative: CALC-INIT" in trailers
    assert "Harness-Red: proven" in trailers and "Harness-Green: passed: 1 passed" in trailers

    evidence = evidence_of(repo)
    assert evidence.relative_to(repo).parts[:3] == ("plans", "active", "CALC-INIT")
    assert evidence.name == "calc_gains_mul"
    for sub in ("collect", "red", "green", "gates"):
        assert any((evidence / sub).iterdir()), sub
    check = subprocess.run(["sha256sum", "-c", "SHA256SUMS"], cwd=evidence, capture_output=True, text=True, check=False)
    assert check.returncode == 0, check.stdout + check.stderr
    record = json.loads((evidence / "attempt.json").read_text())
    assert record["outcome"] == "GREEN" and record["base_commit"] == base
    red = next(s for s in record["stages"] if s["name"] == "red")
    assert red["selectors"][0]["failing"][0]["exc_type"] == "ImportError"
    summary = (evidence / "analysis" / "summary.md").read_text()
    assert "GREEN" in summary and "tests/test_mul.py::test_mul" in summary
    machine = [str(repo), os.path.realpath(repo), sys.prefix, tempfile.gettempdir(), os.path.expanduser("~")]
    for file in evidence.rglob("*"):  # nothing committed names a path of this machine
        if file.is_file() and file.suffix != ".gz":
            text = file.read_text(errors="replace")
            assert not [m for m in machine if m + "/" in text or m + '"' in text], (file, text[:300])
    assert "<repo>/.git" in (evidence / "red" / "red.command.txt").read_text()

    item = load_ledger(repo / "docs/fix_plan.md").get("CALC-001")
    assert item.status == "done"
    assert item.attempts[-1].outcome == "GREEN" and item.attempts[-1].number == 1
    assert item.attempts[-1].base_commit == base[:10]
    assert (repo / item.attempts[-1].evidence).is_file()


def test_red_that_only_skips_is_rejected_and_work_saved_on_a_ref(make_repo) -> None:
    repo = make_project(make_repo)
    skip_test = "import pytest\n\n\n@pytest.mark.skip('later')\ndef test_mul():\n    assert False\n"
    apply_change(repo, {"tests/test_mul.py": skip_test, "pkg/calc.py": MUL_IMPL})

    assert run_item(repo, "CALC-001") == ExitCode.REFUSED

    assert head_subject(repo) == "[CALC-001] calc gains mul: FAILED at red"
    assert status_porcelain(repo) == ""  # the tree is clean again
    committed = git(repo, "show", "--name-only", "--format=", "HEAD").split()
    assert "pkg/calc.py" not in committed and "tests/test_mul.py" not in committed
    saved = git(repo, "show", "refs/harness/failed/CALC-001/1:tests/test_mul.py")
    assert saved == skip_test  # nothing lost
    record = json.loads((evidence_of(repo) / "attempt.json").read_text())
    assert record["failed_stage"] == "red"
    assert "RED not proven: tests/test_mul.py::test_mul is skipped without the change" in record["reason"]
    item = load_ledger(repo / "docs/fix_plan.md").get("CALC-001")
    assert item.status == "in_progress" and item.attempts[-1].outcome == "FAILED at red"


def test_test_that_passes_without_the_change_is_rejected(make_repo) -> None:
    repo = make_project(make_repo)
    apply_change(repo, {"tests/test_mul.py": "def test_mul():\n    assert 2 * 3 == 6\n", "pkg/calc.py": MUL_IMPL})
    assert run_item(repo, "CALC-001") == ExitCode.REFUSED
    record = json.loads((evidence_of(repo) / "attempt.json").read_text())
    assert record["failed_stage"] == "red"
    assert "passes without the change" in record["reason"]


def test_change_without_test_files_cannot_prove_red(make_repo) -> None:
    repo = make_project(make_repo, extra={"tests/test_mul.py": MUL_TEST})
    apply_change(repo, {"pkg/calc.py": MUL_IMPL})
    assert run_item(repo, "CALC-001") == ExitCode.REFUSED
    record = json.loads((evidence_of(repo) / "attempt.json").read_text())
    assert record["failed_stage"] == "red" and "no test-file changes" in record["reason"]


def test_selector_that_collects_nothing_fails_at_collect(make_repo) -> None:
    repo = make_project(make_repo)
    apply_change(repo, {"tests/test_mul.py": "def helper():\n    return 1\n", "pkg/calc.py": MUL_IMPL})
    assert run_item(repo, "CALC-001") == ExitCode.REFUSED
    record = json.loads((evidence_of(repo) / "attempt.json").read_text())
    assert record["failed_stage"] == "collect"
    assert [s["name"] for s in record["stages"]] == ["collect"]


def test_new_full_suite_failure_is_caught_and_known_failure_tolerated(make_repo) -> None:
    """The full suite as it runs by default, in pytest-xdist workers: their results are folded by node id."""
    broken = "def test_broken():\n    assert False\n"
    repo = make_project(make_repo, extra={"tests/test_old_broken.py": broken,
                                          "ci/known_failures.txt": "tests/test_old_broken.py::test_broken\n",
                                          "harness.yaml": with_xdist_workers(HARNESS_YAML)})
    apply_change(repo, {"tests/test_mul.py": MUL_TEST, "pkg/calc.py": MUL_IMPL})
    assert run_item(repo, "CALC-001") == 0  # the known failure is tolerated
    record = json.loads((evidence_of(repo) / "attempt.json").read_text())
    full = next(s for s in record["stages"] if s["name"] == "full_suite")
    assert full["tolerated"] == ["tests/test_old_broken.py::test_broken"]
    assert "(pytest-xdist, -n auto)" in full["reason"]
    assert "[gw" in (evidence_of(repo) / "gates" / "full_suite.log").read_text()  # workers ran the tests

    # CALC-002: the change makes sub work but breaks add elsewhere: a new full-suite failure
    apply_change(repo, {
        "tests/test_sub.py": "from pkg.calc import sub\n\n\ndef test_sub():\n    assert sub(3, 1) == 2\n",
        "pkg/calc.py": MUL_IMPL.replace("a + b", "a - b") + "\n\ndef sub(a, b):\n    return a - b\n",
        "tests/test_unrelated.py": "from pkg.calc import add\n\n\ndef test_add_again():\n    assert add(2, 2) == 4\n",
    })
    git(repo, "add", "tests/test_unrelated.py")
    assert run_item(repo, "CALC-002") == ExitCode.REFUSED
    record = json.loads((evidence_of(repo) / "attempt.json").read_text())
    assert record["failed_stage"] == "full_suite"
    full = next(s for s in record["stages"] if s["name"] == "full_suite")
    assert "tests/test_calc.py::test_add" in full["new_failures"]
    assert status_porcelain(repo) == ""


def test_bad_initiative_is_refused_and_nothing_written(make_repo, capsys) -> None:
    ledger = "# Fix Plan\n\n## [BAD-1] bad names\n- Initiative: ../escape\n- RED: tests/test_mul.py\n"
    repo = make_project(make_repo, ledger=ledger)
    apply_change(repo, {"tests/test_mul.py": MUL_TEST, "pkg/calc.py": MUL_IMPL})
    before = (repo / "docs/fix_plan.md").read_bytes()
    head = git(repo, "rev-parse", "HEAD")
    assert run_item(repo, "BAD-1") == ExitCode.ERROR
    assert "Initiative" in capsys.readouterr().err
    assert (repo / "docs/fix_plan.md").read_bytes() == before
    assert git(repo, "rev-parse", "HEAD") == head
    assert not (repo / "plans").exists()


def test_item_waiting_on_a_dependency_is_refused(make_repo, capsys) -> None:
    repo = make_project(make_repo)
    apply_change(repo, {"tests/test_sub.py": "def test_sub():\n    assert False\n"})
    assert run_item(repo, "CALC-002") == ExitCode.ERROR
    assert "CALC-001" in capsys.readouterr().err


def test_next_item_is_selected_when_none_named(make_repo, capsys) -> None:
    repo = make_project(make_repo)
    apply_change(repo, {"tests/test_mul.py": MUL_TEST, "pkg/calc.py": MUL_IMPL})
    assert run_item(repo) == 0
    assert "selected [CALC-001]" in capsys.readouterr().out


def test_keep_open_leaves_the_item_in_progress(make_repo) -> None:
    repo = make_project(make_repo)
    apply_change(repo, {"tests/test_mul.py": MUL_TEST, "pkg/calc.py": MUL_IMPL})
    assert run_item(repo, "CALC-001", "--keep-open") == 0
    assert load_ledger(repo / "docs/fix_plan.md").get("CALC-001").status == "in_progress"


def test_clean_tree_has_nothing_to_prove(make_repo, capsys) -> None:
    repo = make_project(make_repo)
    assert run_item(repo, "CALC-001") == ExitCode.ERROR
    assert "no change to prove" in capsys.readouterr().err


@pytest.mark.slow
def test_kill_9_during_pytest_leaves_ledger_whole_and_next_start_recovers(make_repo, tmp_path) -> None:
    """A harness killed mid-iteration: the ledger is untouched, the next start records ABORTED, saves the work."""
    import os
    import signal
    import sys
    import time

    slow = "import time\nfrom pkg.calc import add\n\n\ndef test_add():\n    time.sleep(30)\n    assert add(1, 2) == 3\n"
    repo = make_project(make_repo, extra={"tests/test_calc.py": slow})
    ledger_before = (repo / "docs/fix_plan.md").read_bytes()
    apply_change(repo, {"tests/test_mul.py": MUL_TEST, "pkg/calc.py": MUL_IMPL})
    proc = subprocess.Popen([sys.executable, "-m", "harness", "run", "-C", str(repo), "--no-agent", "CALC-001"],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    journal = repo / ".git" / "harness" / "journal.json"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:  # wait until the regression gate (the slow test) is running
        if journal.exists() and '"regression"' in journal.read_text():
            break
        time.sleep(0.1)
    else:
        proc.kill()
        pytest.fail(f"the harness never reached the regression stage: {proc.communicate()[0]}")
    time.sleep(0.5)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert (repo / "docs/fix_plan.md").read_bytes() == ledger_before

    # the next start recovers first; then the tree holds no change to prove
    assert run_item(repo, "CALC-001") == ExitCode.ERROR
    item = load_ledger(repo / "docs/fix_plan.md").get("CALC-001")
    assert item.attempts[-1].outcome == "ABORTED at regression"
    assert git(repo, "show", "refs/harness/aborted/CALC-001/1:tests/test_mul.py") == MUL_TEST
    assert git(repo, "show", "refs/harness/aborted/CALC-001/1:pkg/calc.py") == MUL_IMPL
    assert status_porcelain(repo) == ""
    assert git(repo, "worktree", "list").count("\n") == 1
    assert main(["ledger", "-C", str(repo), "verify"]) == 0


def test_item_is_blocked_after_max_attempts_failures(make_repo, capsys) -> None:
    repo = make_project(make_repo)
    (repo / "harness.yaml").write_text((repo / "harness.yaml").read_text() + "max_attempts: 2\n")
    git(repo, "commit", "-qam", "max_attempts 2")
    for _ in range(2):
        apply_change(repo, {"tests/test_mul.py": "def test_mul():\n    assert True\n"})
        assert run_item(repo) == 1
    apply_change(repo, {"tests/test_mul.py": MUL_TEST, "pkg/calc.py": MUL_IMPL})
    assert run_item(repo) == 3  # CALC-001 is now blocked, and CALC-002 waits on it
    item = load_ledger(repo / "docs/fix_plan.md").get("CALC-001")
    assert item.status == "blocked" and "2 failed attempts" in (item.status_reason or "")
    assert "blocked [CALC-001]" in capsys.readouterr().out
    assert head_subject(repo).startswith("harness: block CALC-001")


def test_red_at_base_never_imports_the_changed_working_tree(make_repo) -> None:
    """An editable install or a PYTHONPATH entry pointing at the working tree must not leak new modules
    into the base worktree: there the new test has to fail, or RED proves nothing."""
    repo = make_project(make_repo)
    config = (repo / "harness.yaml").read_text().replace(
        "    PYTEST_DISABLE_PLUGIN_AUTOLOAD", f"    PYTHONPATH: {repo}\n    PYTEST_DISABLE_PLUGIN_AUTOLOAD")
    (repo / "harness.yaml").write_text(config)
    git(repo, "commit", "-qam", "the working tree is on PYTHONPATH, as an editable install would put it")
    ledger = (repo / "docs/fix_plan.md").read_text().replace("tests/test_mul.py::test_mul", "tests/test_mulmod.py")
    (repo / "docs/fix_plan.md").write_text(ledger)
    git(repo, "commit", "-qam", "RED selector")
    apply_change(repo, {"mulmod.py": "def mul(a, b):\n    return a * b\n",
                        "tests/test_mulmod.py": "from mulmod import mul\n\n\ndef test_mul():\n    assert mul(2, 3) == 6\n"})

    assert run_item(repo, "CALC-001") == 0
    record = json.loads((evidence_of(repo) / "attempt.json").read_text())
    red = next(s for s in record["stages"] if s["name"] == "red")
    assert red["selectors"][0]["failing"][0]["exc_type"] in ("ImportError", "ModuleNotFoundError")
    events = (evidence_of(repo) / "red" / "red.results.json").read_text()
    assert "mulmod" in events  # the recorder reports what it hid


def test_oversized_changed_file_is_left_out_and_big_evidence_is_gzipped(make_repo) -> None:
    repo = make_project(make_repo)
    config = (repo / "harness.yaml").read_text() + "caps:\n  changed_file_bytes: 2000\n  evidence_file_bytes: 400\n"
    (repo / "harness.yaml").write_text(config)
    git(repo, "commit", "-qam", "small caps")
    apply_change(repo, {"tests/test_mul.py": MUL_TEST, "pkg/calc.py": MUL_IMPL, "data/big.bin": "x" * 5000})

    assert run_item(repo, "CALC-001") == 0
    committed = git(repo, "show", "--name-only", "--format=", "HEAD").split()
    assert "data/big.bin" not in committed and "pkg/calc.py" in committed
    assert status_porcelain(repo) == "?? data/big.bin\n"  # left in the tree, never silently dropped
    evidence = evidence_of(repo)
    summary = (evidence / "analysis" / "summary.md.gz")
    assert summary.exists()  # the summary itself is over the 400-byte cap here
    import gzip

    assert "`data/big.bin`: 5000 bytes, over the 2000-byte cap" in gzip.decompress(summary.read_bytes()).decode()
    check = subprocess.run(["sha256sum", "-c", "SHA256SUMS"], cwd=evidence, capture_output=True, text=True, check=False)
    assert check.returncode == 0 and ".log.gz: OK" in check.stdout


def test_a_test_that_needs_a_file_left_out_of_the_commit_fails_and_the_reason_names_it(make_repo, capsys) -> None:
    repo = make_project(make_repo)
    (repo / "harness.yaml").write_text((repo / "harness.yaml").read_text() + "caps:\n  changed_file_bytes: 2000\n")
    git(repo, "commit", "-qam", "small cap")
    table = "6\n" + "#" * 3000 + "\n"  # over the cap: never committed
    reads_table = ("from pathlib import Path\n\nfrom pkg.calc import mul\n\n\ndef test_mul():\n"
                   "    assert mul(2, 3) == int(Path('data/table.txt').read_text().split()[0])\n")
    apply_change(repo, {"tests/test_mul.py": reads_table, "pkg/calc.py": MUL_IMPL, "data/table.txt": table})

    assert run_item(repo, "CALC-001") == 1  # GREEN would commit a tree its test cannot pass in
    out = capsys.readouterr().out
    assert "left out of the commit, set aside while the stages run: data/table.txt" in out
    attempt = load_ledger(repo / "docs/fix_plan.md").get("CALC-001").attempts[-1]
    assert attempt.outcome == "FAILED at green"
    record = json.loads((repo / attempt.evidence).parent.parent.joinpath("attempt.json").read_text())
    assert f"left out of the commit: data/table.txt ({len(table)} bytes, over the 2000-byte cap)" in record["reason"]
    assert "caps.changed_file_bytes" in record["reason"]
    summary = (repo / attempt.evidence).read_text()
    assert f"data/table.txt ({len(table)} bytes, over the 2000-byte cap)" in summary
    assert (repo / "data/table.txt").read_text() == table  # put back, byte for byte
    assert status_porcelain(repo) == "?? data/table.txt\n"  # the change is on the failed ref; this stays
    assert git(repo, "show", "refs/harness/failed/CALC-001/1:tests/test_mul.py") == reads_table


EDITABLE_FINDER = '''\
import importlib.util, os, sys
ELSEWHERE = {elsewhere!r}

class EditableLikeFinder:
    """Maps the project's modules to another checkout, as setuptools' editable finder does."""
    @classmethod
    def find_spec(cls, fullname, path=None, target=None):
        if not fullname.startswith("pkg."):
            return None
        candidate = os.path.join(ELSEWHERE, *fullname.split(".")) + ".py"
        return importlib.util.spec_from_file_location(fullname, candidate) if os.path.exists(candidate) else None

sys.meta_path.append(EditableLikeFinder)
'''


def test_red_at_base_never_imports_the_project_from_another_checkout(make_repo, tmp_path) -> None:
    """An editable install of *another* checkout holding the new module must not satisfy the base run."""
    elsewhere, site_dir = tmp_path / "elsewhere", tmp_path / "site"
    (elsewhere / "pkg").mkdir(parents=True)
    (elsewhere / "pkg" / "mul.py").write_text("def mul(a, b):\n    return a * b\n")
    site_dir.mkdir()
    (site_dir / "sitecustomize.py").write_text(EDITABLE_FINDER.format(elsewhere=str(elsewhere)))
    repo = make_project(make_repo)
    config = (repo / "harness.yaml").read_text().replace(
        "    PYTEST_DISABLE_PLUGIN_AUTOLOAD", f"    PYTHONPATH: {site_dir}\n    PYTEST_DISABLE_PLUGIN_AUTOLOAD")
    (repo / "harness.yaml").write_text(config)
    git(repo, "commit", "-qam", "an editable-like finder for pkg.*")
    apply_change(repo, {"pkg/mul.py": "def mul(a, b):\n    return a * b\n",
                        "tests/test_mul.py": "from pkg.mul import mul\n\n\ndef test_mul():\n    assert mul(2, 3) == 6\n"})

    assert run_item(repo, "CALC-001") == 0
    record = json.loads((evidence_of(repo) / "attempt.json").read_text())
    red = next(s for s in record["stages"] if s["name"] == "red")
    assert red["selectors"][0]["failing"][0]["exc_type"] in ("ImportError", "ModuleNotFoundError")


def test_chore_item_skips_red_but_keeps_the_gates(make_repo) -> None:
    ledger = ("# Fix Plan\n\n## [DOCS-1] rename a helper\n- Mode: chore\n- Regression: tests/test_calc.py\n")
    repo = make_project(make_repo, ledger=ledger)
    apply_change(repo, {"pkg/calc.py": "def add(a, b):\n    return b + a\n"})
    assert run_item(repo, "DOCS-1") == 0
    record = json.loads((evidence_of(repo) / "attempt.json").read_text())
    red = next(s for s in record["stages"] if s["name"] == "red")
    assert red["skipped"] and "not required: Mode chore" in red["reason"]
    assert [s["name"] for s in record["stages"]] == ["collect", "integrity", "red", "green", "regression", "full_suite"]
    summary = (evidence_of(repo) / "analysis" / "summary.md").read_text()
    assert "red: not required: Mode chore items skip the RED proof" in summary


def test_lint_gate_fails_on_new_findings_only(make_repo) -> None:
    linter = ("import pathlib, sys\nfor p in sorted(pathlib.Path('pkg').glob('*.py')):\n"
              "    for n, line in enumerate(p.read_text().splitlines(), 1):\n"
              "        if 'TODO' in line:\n            print(f'{p}:{n}:1: T001 todo left in code')\n")
    repo = make_project(make_repo, extra={"lint.py": linter, "pkg/old.py": "x = 1  # TODO old\n"})
    config = with_gates((repo / "harness.yaml").read_text(), '  lint:\n    command: ["{python}", "lint.py"]\n')
    (repo / "harness.yaml").write_text(config)
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "lint gate")
    apply_change(repo, {"tests/test_mul.py": MUL_TEST, "pkg/calc.py": MUL_IMPL + "# TODO tidy\n"})
    assert run_item(repo, "CALC-001") == 1  # the existing TODO is tolerated, the new one is not
    record = json.loads((evidence_of(repo) / "attempt.json").read_text())
    assert record["failed_stage"] == "lint"
    lint = next(s for s in record["stages"] if s["name"] == "lint")
    assert len(lint["new_findings"]) == 1 and "pkg/calc.py" in lint["new_findings"][0]

    git(repo, "cherry-pick", "--no-commit", "refs/harness/failed/CALC-001/1")
    git(repo, "reset", "-q")
    (repo / "pkg/calc.py").write_text(MUL_IMPL)
    assert run_item(repo, "CALC-001") == 0
    summary = (evidence_of(repo) / "analysis" / "summary.md").read_text()
    assert "static analysis: no new findings" in summary


def test_successful_commit_is_pushed_to_the_configured_remote(make_repo, tmp_path) -> None:
    repo = make_project(make_repo)
    remote = tmp_path / "remote.git"
    git(tmp_path, "init", "-q", "--bare", str(remote))
    git(repo, "remote", "add", "origin", str(remote))
    git(repo, "push", "-q", "origin", "main")
    (repo / "harness.yaml").write_text((repo / "harness.yaml").read_text() + "push:\n  remote: origin\n  branch: main\n")
    git(repo, "commit", "-qam", "push after each commit")
    apply_change(repo, {"tests/test_mul.py": MUL_TEST, "pkg/calc.py": MUL_IMPL})
    assert run_item(repo, "CALC-001") == 0
    assert git(remote, "log", "-1", "--format=%s", "main").strip() == "[CALC-001] calc gains mul: GREEN"
