"""The merge queue's step on real repositories: a textual conflict is saved and retried from the new head; a
semantic conflict (two changes that pass alone and break together) is refused by the merged-tree gate."""
from __future__ import annotations

import json

from harness.ledger import load_ledger
from harness.main import main
from tests.conftest import git
from tests.harness.parallel.project import (
    MARKER,
    assert_nothing_left,
    function_change,
    green_commits,
    item,
    parallel_project,
    suite_passes_at,
)


def test_two_items_editing_the_same_lines_one_merges_the_other_is_saved_and_retried(make_repo, tmp_path) -> None:
    def change(name: str) -> dict:
        return {"insert": {"pkg/calc.py": f"def {name}(x):\n    return x\n\n\n"},
                "files": {f"tests/test_{name}.py": f"from pkg.calc import {name}\n\n\ndef test_{name}():\n"
                                                   f"    assert {name}(5) == 5\n"}, "sleep": 1}

    plan = {"XA": change("xa"), "XB": change("xb")}
    ledger = [item("XA", "add xa", "tests/test_xa.py"), item("XB", "add xb", "tests/test_xb.py")]
    repo = parallel_project(make_repo, tmp_path, ledger, plan)
    assert main(["loop", "-C", str(repo), "--workers", "2", "--until-empty"]) == 0
    items = {i.id: i for i in load_ledger(repo / "docs/fix_plan.md").items}
    outcomes = {key: [a.outcome for a in i.attempts] for key, i in items.items()}
    assert sorted(outcomes.values()) == [["FAILED at merge", "GREEN"], ["GREEN"]], outcomes
    loser = next(key for key, seen in outcomes.items() if len(seen) == 2)
    winner = "XA" if loser == "XB" else "XB"
    calc = (repo / "pkg/calc.py").read_text()
    assert "def xa(x)" in calc and "def xb(x)" in calc and calc.endswith(MARKER)
    saved = git(repo, "show", f"refs/harness/failed/{loser}/1:pkg/calc.py")  # never lost
    assert f"def {loser.lower()}(x)" in saved and f"def {winner.lower()}(x)" not in saved
    failed = items[loser].attempts[0]
    record = json.loads((repo / failed.evidence).parent.parent.joinpath("attempt.json").read_text())
    merge = next(s for s in record["stages"] if s["name"] == "merge")
    assert merge["conflicts"] == ["pkg/calc.py"] and record["saved_ref"] == f"refs/harness/failed/{loser}/1"
    retry = items[loser].attempts[1]  # retried from the new head, which holds the winner's change
    assert git(repo, "merge-base", "--is-ancestor", items[winner].attempts[0].base_commit, retry.base_commit) == ""
    assert retry.base_commit != failed.base_commit
    assert_nothing_left(repo)


def test_two_changes_that_pass_alone_and_break_together_are_refused_by_the_merged_tree_gate(
        make_repo, tmp_path) -> None:
    rename = {"pkg/calc.py": "def twice(x):\n    return x * 2\n\n\n" + MARKER,
              "tests/test_calc.py": "from pkg.calc import twice\n\n\ndef test_double():\n    assert twice(2) == 4\n",
              "tests/test_twice.py": "from pkg.calc import twice\n\n\ndef test_twice():\n    assert twice(3) == 6\n"}
    quad = {"pkg/quad.py": "from pkg.calc import double\n\n\ndef quad(x):\n    return double(double(x))\n",
            "tests/test_quad.py": "from pkg.quad import quad\n\n\ndef test_quad():\n    assert quad(1) == 4\n"}
    plan = {"RENAME": {"files": rename, "sleep": 1}, "QUAD": {"files": quad, "sleep": 1}}
    ledger = [item("RENAME", "double becomes twice", "tests/test_twice.py"),
              item("QUAD", "quad from double", "tests/test_quad.py")]
    repo = parallel_project(make_repo, tmp_path, ledger, plan)
    assert main(["loop", "-C", str(repo), "--workers", "2", "--iterations", "2"]) == 1  # the last one failed
    items = {i.id: i for i in load_ledger(repo / "docs/fix_plan.md").items}
    outcomes = sorted(i.attempts[0].outcome for i in items.values())
    assert outcomes == ["FAILED at merged-gates", "GREEN"]
    loser = next(i for i in items.values() if i.attempts[0].outcome != "GREEN")
    record = json.loads((repo / loser.attempts[0].evidence).parent.parent.joinpath("attempt.json").read_text())
    gates = record["stages"][-1]
    assert gates["name"] == "merged-gates" and not gates["ok"] and "on the merged tree" in gates["reason"]
    assert [s["ok"] for s in record["stages"][:-1]] == [True] * (len(record["stages"]) - 1)  # it passed alone
    saved_parent = git(repo, "rev-parse", f"refs/harness/failed/{loser.id}/1^").strip()
    assert saved_parent.startswith(loser.attempts[0].base_commit)  # the change, on its base
    for n, sha in enumerate(green_commits(repo)):  # every GREEN commit passes its own suite when checked out
        done = suite_passes_at(repo, sha, tmp_path / f"check{n}")
        assert done.returncode == 0, done.stdout + done.stderr
    assert_nothing_left(repo)


def test_a_workers_files_left_out_of_the_commit_are_set_aside_from_its_proof_and_saved_on_a_ref(
        make_repo, tmp_path) -> None:
    table = "4\n" + "#" * 3000 + "\n"  # over the cap: never committed
    needs_table = {"pkg/lb.py": "def lb():\n    return 4\n", "data/lb.txt": table,
                   "tests/test_lb.py": "from pathlib import Path\n\nfrom pkg.lb import lb\n\n\ndef test_lb():\n"
                                       "    assert lb() == int(Path('data/lb.txt').read_text().split()[0])\n"}
    plan = {"LA": {"files": {**function_change("la"), "data/la.bin": "a" * 3000}}, "LB": {"files": needs_table}}
    ledger = [item("LA", "add la", "tests/test_la.py"), item("LB", "add lb", "tests/test_lb.py")]
    repo = parallel_project(make_repo, tmp_path, ledger, plan, extra_yaml="caps:\n  changed_file_bytes: 2000\n")
    assert main(["loop", "-C", str(repo), "--workers", "2", "--iterations", "2"]) in (0, 1)  # landing order
    items = {i.id: i for i in load_ledger(repo / "docs/fix_plan.md").items}

    green = json.loads((repo / items["LA"].attempts[0].evidence).parent.parent.joinpath("attempt.json").read_text())
    assert green["outcome"] == "GREEN"
    assert green["changes"]["left_out_ref"] == "refs/harness/left-out/LA/1"
    assert git(repo, "show", "refs/harness/left-out/LA/1:data/la.bin") == "a" * 3000  # not lost with the worktree
    assert "`refs/harness/left-out/LA/1`" in (repo / items["LA"].attempts[0].evidence).read_text()

    failed = items["LB"].attempts[0]  # its test needs the left-out file: the proven tree is the committed one
    assert failed.outcome == "FAILED at green"
    record = json.loads((repo / failed.evidence).parent.parent.joinpath("attempt.json").read_text())
    assert "left out of the commit: data/lb.txt" in record["reason"]
    assert record["changes"]["left_out_ref"] == "refs/harness/failed/LB/1"
    assert git(repo, "show", "refs/harness/failed/LB/1:data/lb.txt") == table

    committed = git(repo, "log", "--format=", "--name-only").split()
    assert "data/la.bin" not in committed and "data/lb.txt" not in committed and "pkg/la.py" in committed
    assert_nothing_left(repo)
