"""`harness loop --workers N` on real repositories, with a scripted agent and real pytest runs."""
from __future__ import annotations

import json
import socket
import subprocess
import sys
from pathlib import Path

from harness.errors import ExitCode
from harness.gitops import open_repo
from harness.ledger import load_ledger
from harness.main import main
from harness.parallel import lease as leases
from harness.parallel.lease import Holder, process_started
from tests.conftest import git
from tests.harness.parallel.project import (
    agent_log,
    assert_nothing_left,
    function_change,
    green_commits,
    item,
    parallel_project,
    set_plan,
)


def _events(out: str) -> list[dict]:
    return [json.loads(line) for line in out.splitlines() if line.startswith("{")]


def test_independent_items_overlap_dependents_wait_for_the_merge_and_each_is_proven(
        make_repo, tmp_path, capsys) -> None:
    fb = {"pkg/fb.py": "from pkg.fa import fa\n\n\ndef fb():\n    return fa() + 1\n",
          "tests/test_fb.py": "from pkg.fb import fb\n\n\ndef test_fb():\n    assert fb() == 2\n"}
    plan = {"FA": {"files": function_change("fa"), "sleep": 2}, "FB": {"files": fb, "sleep": 0.5},
            "FC": {"files": function_change("fc", "3"), "sleep": 2}}
    ledger = [item("FA", "add fa", "tests/test_fa.py"), item("FB", "add fb", "tests/test_fb.py", depends="FA"),
              item("FC", "add fc", "tests/test_fc.py")]
    repo = parallel_project(make_repo, tmp_path, ledger, plan)
    assert main(["loop", "-C", str(repo), "--workers", "3", "--until-empty", "--json"]) == 0
    events = _events(capsys.readouterr().out)
    assert events[-1]["event"] == "stopped" and "nothing actionable" in events[-1]["reason"]
    assert all(i.status == "done" for i in load_ledger(repo / "docs/fix_plan.md").items)

    # FA and FC ran at once, each in a worktree of its own under the git dir
    log = {(e["item"], e["event"]): e for e in agent_log(tmp_path)}
    assert log["FA", "start"]["t"] < log["FC", "end"]["t"] and log["FC", "start"]["t"] < log["FA", "end"]["t"]
    for name in ("FA", "FB", "FC"):
        assert Path(log[name, "start"]["cwd"]) == repo / ".git" / "harness" / "workers" / name / repo.name
    # FB started only after FA was merged, and never beside it
    order = [(e["event"], e.get("item")) for e in events]
    assert order.index(("started", "FB")) > order.index(("merged", "FA"))
    assert log["FB", "start"]["t"] > log["FA", "end"]["t"]
    started = {e["item"]: e for e in events if e["event"] == "started"}
    merged = {e["item"]: e for e in events if e["event"] == "merged"}
    assert git(repo, "merge-base", "--is-ancestor", merged["FA"]["commit"], started["FB"]["base"]) == ""
    assert [e["event"] for e in events if e.get("item") == "FA"] == ["started", "proven", "merging", "merged"]
    summary = next(e for e in events if e["event"] == "summary")
    assert sorted(r["item"] for r in summary["rows"]) == ["FA", "FB", "FC"]
    assert all(r["outcome"] == "GREEN" and r["agent_s"] > 0 and r["proof_s"] > 0 for r in summary["rows"])

    # each GREEN commit: the change, its evidence, proven RED and GREEN, merged onto the head it landed on
    commits = green_commits(repo)
    assert len(commits) == 3
    for sha in commits:
        message = git(repo, "log", "-1", "--format=%B", sha)
        assert "Harness-Red: proven" in message and "Harness-Green: passed" in message
        onto = next(line.split(": ")[1] for line in message.splitlines() if line.startswith("Harness-Merged-Onto"))
        assert git(repo, "rev-parse", f"{sha}^").strip() == onto
        evidence = next(line.split(": ")[1] for line in message.splitlines() if line.startswith("Harness-Evidence"))
        record = json.loads(git(repo, "show", f"{sha}:{evidence}/attempt.json"))
        names = [s["name"] for s in record["stages"]]
        assert names == ["agent", "collect", "integrity", "red", "green", "regression", "full_suite", "merge", "merged-gates"]
        assert record["outcome"] == "GREEN" and record["stages"][-2]["onto"] == onto
    first_landed = commits[-1]
    later = git(repo, "log", "-1", "--format=%B", commits[-2])
    assert f"Harness-Base: {git(repo, 'rev-parse', f'{first_landed}^').strip()}" in later  # a sibling's base
    assert main(["ledger", "-C", str(repo), "verify"]) == 0
    assert_nothing_left(repo)


def test_an_item_leased_by_a_live_harness_is_left_to_it_a_dead_holders_lease_is_swept(
        make_repo, tmp_path, capsys) -> None:
    passes_alone = {"tests/test_lc.py": "def test_lc():\n    assert True\n"}
    plan = {"LA": {"files": function_change("la")}, "LB": {"files": function_change("lb")},
            "LC": {"files": passes_alone}}
    # LC waits for LB, so LC's failure is the last attempt to land: `--iterations` exits by it (1)
    ledger = [item("LA", "add la", "tests/test_la.py"), item("LB", "add lb", "tests/test_lb.py"),
              item("LC", "add lc", "tests/test_lc.py", depends="LB")]
    repo = parallel_project(make_repo, tmp_path, ledger, plan)
    other = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(300)"])
    try:
        alive = Holder(socket.gethostname(), other.pid, process_started(other.pid))
        gone = Holder(socket.gethostname(), other.pid, "2001-01-01T00:00:00Z")  # that pid, long ago: dead
        identity = ("Other Harness", "other@example.invalid")
        assert leases.acquire(open_repo(repo), "LA", alive, identity=identity) is not None
        assert leases.acquire(open_repo(repo), "LC", gone, identity=identity) is not None
        code = main(["loop", "-C", str(repo), "--workers", "2", "--iterations", "2"])
        out = capsys.readouterr().out
        assert code == ExitCode.REFUSED and "[LA]" not in out  # never started here
        items = {i.id: i for i in load_ledger(repo / "docs/fix_plan.md").items}
        assert items["LA"].attempts == () and items["LB"].status == "done"
        assert [a.outcome for a in items["LC"].attempts] == ["FAILED at red"]
        assert git(repo, "show", "refs/harness/failed/LC/1:tests/test_lc.py") == passes_alone["tests/test_lc.py"]
        recorded = git(repo, "log", "-1", "--format=", "--name-only", "--grep", "FAILED at red")
        assert "tests/test_lc.py" not in recorded and "docs/fix_plan.md" in recorded
        held = leases.all_leases(open_repo(repo))
        assert [(h.item_id, h.holder) for h in held] == [("LA", alive)]  # the live one's lease untouched
        assert main(["loop", "-C", str(repo), "--workers", "2", "--until-empty", "--max-failures", "1"]) == 1
        items = {i.id: i for i in load_ledger(repo / "docs/fix_plan.md").items}
        assert [a.outcome for a in items["LC"].attempts] == ["FAILED at red"] * 2  # back in the queue, retried
        assert items["LA"].attempts == ()
    finally:
        other.kill()
        other.wait()


def test_with_push_configured_an_item_leased_on_the_remote_by_another_machine_is_left_to_it_and_the_next_runs(
        make_repo, tmp_path, capsys) -> None:
    plan = {"RA": {"files": function_change("ra")}, "RB": {"files": function_change("rb")}}
    ledger = [item("RA", "add ra", "tests/test_ra.py"), item("RB", "add rb", "tests/test_rb.py")]
    repo = parallel_project(make_repo, tmp_path, ledger, plan, extra_yaml="push:\n  remote: origin\n  branch: main\n")
    remote = tmp_path / "remote.git"
    git(tmp_path, "init", "-q", "--bare", str(remote))
    git(repo, "remote", "add", "origin", str(remote))
    git(repo, "push", "-q", "origin", "main")
    elsewhere = make_repo(name="other-machine")
    other = Holder("other-machine", 4242, "2026-01-01T00:00:00Z")
    theirs = leases.acquire(open_repo(elsewhere), "RA", other, identity=("Other", "o@example.invalid"),
                            remote=str(remote))

    assert main(["loop", "-C", str(repo), "--until-empty", "--json"]) == 0  # one worker: RA first in line
    events = _events(capsys.readouterr().out)
    assert any(e["event"] == "note" and "[RA] is leased on origin by another harness" in e["text"] for e in events)
    assert [e["event"] for e in events if e.get("item") == "RB"] == ["started", "proven", "merging", "merged"]
    assert events[-1]["reason"].startswith("nothing left for this harness: the actionable items are leased by")
    items = {i.id: i for i in load_ledger(repo / "docs/fix_plan.md").items}
    assert items["RA"].attempts == () and items["RB"].status == "done"
    remote_refs = git(tmp_path, "--git-dir", str(remote), "for-each-ref", "--format=%(refname) %(objectname)")
    assert f"refs/harness/lease/RA {theirs.sha}" in remote_refs and "lease/RB" not in remote_refs
    assert git(tmp_path, "--git-dir", str(remote), "rev-parse", "main").strip() == \
        git(repo, "rev-parse", "HEAD").strip()  # the merge was pushed
    assert_nothing_left(repo)


def test_workers_need_an_agent_a_clean_checkout_and_no_single_tree_flags(make_repo, tmp_path, capsys) -> None:
    ledger = [item("FA", "add fa", "tests/test_fa.py")]
    repo = parallel_project(make_repo, tmp_path, ledger, {}, extra_yaml="workers: 2\n")
    for flag in ("--no-agent", "--allow-dirty"):
        assert main(["loop", "-C", str(repo), flag]) == ExitCode.ERROR  # `workers: 2` from harness.yaml
        assert f"{flag} works on the change in this working tree" in capsys.readouterr().err
    assert main(["loop", "-C", str(repo), "--json", "--workers", "1", "--no-agent"]) == ExitCode.ERROR
    assert "cannot be combined with --workers 1 or --json" in capsys.readouterr().err
    (repo / "pkg/calc.py").write_text("dirty = True\n")
    assert main(["loop", "-C", str(repo)]) == ExitCode.ERROR
    assert "the working tree is not clean (pkg/calc.py): with --workers" in capsys.readouterr().err
    git(repo, "checkout", "--", "pkg/calc.py")
    (repo / "harness.yaml").write_text((repo / "harness.yaml").read_text().split("agent:")[0])
    assert main(["loop", "-C", str(repo), "--workers", "2"]) == ExitCode.ERROR
    assert "no agent is configured" in capsys.readouterr().err
    git(repo, "checkout", "--", "harness.yaml")
    assert_nothing_left(repo)  # refused before anything was started


def test_an_item_that_fails_preflight_is_not_started_nor_counted_and_stops_the_loop_with_exit_4(
        make_repo, tmp_path, capsys) -> None:
    plan = {"OK": {"files": function_change("ok")}, "ER": {"files": function_change("er")}}
    ledger = [item("OK", "add ok", "tests/test_ok.py"), item("ER", "malformed selector", 'tests/test_er.py "unbalanced')]
    repo = parallel_project(make_repo, tmp_path, ledger, plan)
    head = git(repo, "rev-parse", "HEAD").strip()

    assert main(["loop", "-C", str(repo), "--workers", "2"]) == ExitCode.ERROR

    captured = capsys.readouterr()
    assert "[ER] not started: docs/fix_plan.md:9: item ER, `- RED:` selector" in captured.out
    assert "loop stopped: [ER] cannot start: docs/fix_plan.md:9:" in captured.err
    items = {i.id: i for i in load_ledger(repo / "docs/fix_plan.md").items}
    assert items["OK"].status == "done"  # started before ER was looked at: it finished and landed
    assert items["ER"].attempts == () and items["ER"].status == "pending"
    assert [e["item"] for e in agent_log(tmp_path)] == ["OK", "OK"]  # no agent ever ran for ER
    assert git(repo, "rev-list", "--count", f"{head}..HEAD").strip() == "1"  # OK's commit alone
    assert git(repo, "for-each-ref", "refs/harness/aborted", "refs/harness/failed") == ""
    assert_nothing_left(repo)


def test_a_worker_that_stops_with_an_error_is_recorded_as_aborted_and_the_others_go_on(
        make_repo, tmp_path, capsys) -> None:
    # ER's agent removes the held-out folder that preflight found: its worker's acceptance stage errs.
    holdout = tmp_path / "holdout"
    (holdout / "tests").mkdir(parents=True)
    plan = {"ER": {"files": function_change("er"), "remove": [str(holdout)]},
            "OK": {"files": function_change("ok"), "sleep": 1}}
    ledger = [item("ER", "holdout goes missing", "tests/test_er.py") + "- Acceptance: tests/test_er_more.py\n",
              item("OK", "add ok", "tests/test_ok.py")]
    repo = parallel_project(make_repo, tmp_path, ledger, plan, extra_yaml=f"holdout:\n  dir: {holdout}\n",
                            sandbox="off")  # the agent removes holdout.dir, which a sandbox hides from it
    # Whichever lands first, ER's abort trips the breaker and OK, already running, still lands.
    assert main(["loop", "-C", str(repo), "--workers", "2", "--max-failures", "1"]) == ExitCode.REFUSED
    out = capsys.readouterr().out
    assert "the worker stopped with an error: HarnessError: holdout.dir" in out
    items = {i.id: i for i in load_ledger(repo / "docs/fix_plan.md").items}
    assert items["OK"].status == "done"
    [aborted] = items["ER"].attempts
    assert aborted.outcome.startswith("ABORTED at ")  # the stage the journal named last: they overlap
    record = json.loads((repo / aborted.evidence).parent.parent.joinpath("attempt.json").read_text())
    assert record["reason"].startswith("the worker stopped with an error: HarnessError: holdout.dir")
    assert git(repo, "show", "refs/harness/aborted/ER/1:pkg/er.py") == function_change("er")["pkg/er.py"]
    assert_nothing_left(repo)


def test_a_worker_is_judged_by_the_harness_yaml_of_the_head_it_starts_from(make_repo, tmp_path, capsys) -> None:
    """FA's change turns concurrent stages off in harness.yaml; FB starts after FA landed, so the head's
    harness.yaml (FA's) judges FB, while FA's own proof ran under the one before it."""
    ledger = [item("FA", "add fa", "tests/test_fa.py"), item("FB", "add fb", "tests/test_fb.py", depends="FA")]
    # the base says `true` itself: the default (auto) depends on the machine's cores
    repo = parallel_project(make_repo, tmp_path, ledger, {}, extra_yaml="concurrent_stages: true\n")
    serial = (repo / "harness.yaml").read_text().replace("concurrent_stages: true", "concurrent_stages: false")
    set_plan(tmp_path, {"FA": {"files": {**function_change("fa"), "harness.yaml": serial}},
                        "FB": {"files": function_change("fb", "2")}})

    assert main(["loop", "-C", str(repo), "--workers", "2", "--until-empty", "--json"]) == 0

    records, bases = {}, {}
    for sha in green_commits(repo):
        trailers = dict(line.split(": ", 1) for line in git(repo, "log", "-1", "--format=%B", sha).splitlines()
                        if line.startswith("Harness-"))
        record = json.loads(git(repo, "show", f"{sha}:{trailers['Harness-Evidence']}/attempt.json"))
        records[record["item"]["id"]], bases[record["item"]["id"]] = record, trailers["Harness-Base"]
    assert records["FA"]["timing"]["concurrent_stages"] is True
    assert records["FB"]["timing"]["concurrent_stages"] is False
    assert [records[i]["settings"]["harness_yaml_from"] for i in ("FA", "FB")] == [bases["FA"], bases["FB"]]
    assert "concurrent_stages: false" in git(repo, "show", f"{bases['FB']}:harness.yaml")
