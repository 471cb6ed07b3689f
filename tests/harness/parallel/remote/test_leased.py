"""The serial loop with `push` and `leases.enabled`: the remote's ledger and leases decide what runs."""
from __future__ import annotations

from datetime import UTC, datetime, timedelta

from harness.gitops import open_repo
from harness.ledger import parse_ledger
from harness.main import main
from harness.parallel.lease import Holder
from harness.parallel.remote.lease import take
from tests.conftest import git
from tests.harness.parallel.project import function_change, item
from tests.harness.parallel.remote.machines import (
    one_item_machines,
    remote_ledger,
    remote_log,
    remote_refs,
    taken_over_by_machine_b,
    two_machines,
)

IDENTITY = ("Other", "o@example.invalid")


def statuses(ledger_text: str) -> dict[str, str]:
    return {i.id: i.status for i in parse_ledger(ledger_text).items}


def test_the_loop_leaves_an_item_leased_elsewhere_runs_the_others_pushes_and_gives_its_leases_back(
        make_repo, tmp_path, capsys) -> None:
    plan = {"RA": {"files": function_change("ra")}, "RB": {"files": function_change("rb")}}
    ledger = [item("RA", "add ra", "tests/test_ra.py"), item("RB", "add rb", "tests/test_rb.py")]
    remote, a, b = two_machines(make_repo, tmp_path, ledger, plan)
    theirs = take(open_repo(b), "origin", "RA", Holder("machine-b", 4242, "2026-01-01T00:00:00Z"), ttl_s=60,
                  identity=IDENTITY)
    assert main(["loop", "-C", str(a), "--until-empty"]) == 0
    out = capsys.readouterr().out
    assert "leased [RB] on origin" in out and "leased [RA]" not in out
    assert "loop stopped: nothing left for this harness: the actionable items are leased by others: RA (pid 4242 " \
           "on machine-b" in out
    assert statuses(remote_ledger(remote)) == {"RA": "pending", "RB": "done"}
    assert remote_log(remote)[0] == "[RB] add rb: GREEN"
    assert remote_refs(remote, "refs/harness/lease/") == {"refs/harness/lease/RA": theirs.sha}


def test_an_item_another_machine_finished_is_not_run_again_the_ledger_is_fetched_first(make_repo, tmp_path,
                                                                                        capsys) -> None:
    plan = {"RA": {"files": function_change("ra")}, "RB": {"files": function_change("rb")}}
    ledger = [item("RA", "add ra", "tests/test_ra.py"), item("RB", "add rb", "tests/test_rb.py")]
    remote, a, b = two_machines(make_repo, tmp_path, ledger, plan)
    assert main(["run", "-C", str(b)]) == 0  # machine b does RA and pushes it
    assert remote_log(remote)[0] == "[RA] add ra: GREEN"
    capsys.readouterr()
    assert main(["loop", "-C", str(a), "--until-empty"]) == 0  # machine a has not fetched: it must not redo RA
    out = capsys.readouterr().out
    assert "leased [RA]" not in out and "leased [RB] on origin" in out
    log = remote_log(remote)
    assert [s for s in log if s.endswith(": GREEN")] == ["[RB] add rb: GREEN", "[RA] add ra: GREEN"]
    assert statuses(remote_ledger(remote)) == {"RA": "done", "RB": "done"}
    assert remote_refs(remote, "refs/harness/lease/") == {}
    assert git(a, "rev-parse", "HEAD").strip() == git(remote, "rev-parse", "main").strip()


def test_an_expired_lease_is_taken_over_and_the_takeover_is_in_the_attempts_commit(make_repo, tmp_path,
                                                                                   capsys) -> None:
    plan = {"RA": {"files": function_change("ra")}}
    remote, a, b = two_machines(make_repo, tmp_path, [item("RA", "add ra", "tests/test_ra.py")], plan, ttl=5)
    dead = Holder("machine-b", 4242, "2026-01-01T00:00:00Z")
    old = take(open_repo(b), "origin", "RA", dead, ttl_s=5, identity=IDENTITY,
               now=lambda: datetime.now(UTC) - timedelta(minutes=5))
    assert main(["run", "-C", str(a)]) == 0
    out = capsys.readouterr().out
    assert "[RA] taken over from pid 4242 on machine-b" in out
    trailer = git(remote, "log", "-1", "--format=%(trailers:key=Harness-Lease-Takeover,valueonly)", "main").strip()
    assert trailer.startswith("pid 4242 on machine-b") and old.sha[:12] in trailer
    assert remote_refs(remote, "refs/harness/lease/") == {}


def test_a_push_that_loses_the_race_is_replayed_onto_the_new_head_and_proven_again(make_repo, tmp_path,
                                                                                   capsys) -> None:
    """Machine b pushes while a's agent works (the agent itself does it, through b's clone): a's
    compare-and-swap push on the head it started from is refused, and it replays, re-proves and pushes."""
    plan = {"RA": {"files": function_change("ra")}}
    remote, a, b = two_machines(make_repo, tmp_path, [item("RA", "add ra", "tests/test_ra.py")], plan,
                                sandbox="off")
    hook = tmp_path / "other_machine_pushes.py"
    hook.write_text(
        "import subprocess, sys\n"
        f"b = {str(b)!r}\n"
        "open(b + '/notes.txt', 'w').write('other machine\\n')\n"
        "subprocess.run(['git', '-C', b, 'add', 'notes.txt'], check=True)\n"
        "subprocess.run(['git', '-C', b, 'commit', '-qm', 'other machine work'], check=True)\n"
        "subprocess.run(['git', '-C', b, 'push', '-q', 'origin', 'HEAD:refs/heads/main'], check=True)\n")
    agent = (tmp_path / "agent.py").read_text()
    (tmp_path / "agent.py").write_text(agent.replace('log("start")\n', 'log("start")\n'
                                                     f'import runpy; runpy.run_path({str(hook)!r})\n', 1))
    assert main(["run", "-C", str(a)]) == 0
    out = capsys.readouterr().out
    assert "replaying 1 commit(s) onto its head" in out and "re-proven there: [RA]" in out
    assert remote_log(remote)[:2] == ["[RA] add ra: GREEN", "other machine work"]
    assert remote_refs(remote, "refs/harness/lease/") == {}


def test_a_lease_taken_over_during_the_attempt_withdraws_its_commit_and_pushes_nothing(make_repo, tmp_path,
                                                                                        capsys) -> None:
    remote, a, _ = one_item_machines(make_repo, tmp_path, lambda b: taken_over_by_machine_b(b, "RA"))
    before = git(remote, "rev-parse", "main").strip()
    assert main(["run", "-C", str(a)]) == 1
    out = capsys.readouterr().out
    assert "lease lost: [RA]: the lease on origin was taken over by pid 4242 on machine-b" in out
    assert "is withdrawn (saved on refs/harness/superseded/RA/1), nothing was pushed" in out
    assert git(remote, "rev-parse", "main").strip() == before  # nothing of a's attempt reached the remote
    assert git(a, "rev-parse", "HEAD").strip() == before
    saved = git(a, "log", "-1", "--format=%s", "refs/harness/superseded/RA/1").strip()
    assert saved == "[RA] add ra: GREEN"  # the work is kept
    assert "machine-b" in git(remote, "log", "-1", "--format=%B", "refs/harness/lease/RA")


def test_a_lease_that_vanished_under_its_holder_is_reported_taken_again_and_the_result_pushed(
        make_repo, tmp_path, capsys) -> None:
    remote, a, _ = one_item_machines(make_repo, tmp_path, lambda b: (
        "import subprocess\n"
        f"subprocess.run(['git', '-C', {str(b)!r}, 'push', '-q', 'origin', ':refs/harness/lease/RA'], check=True)\n"))
    assert main(["run", "-C", str(a)]) == 0
    out = capsys.readouterr().out
    assert "lease: [RA]: the lease refs/harness/lease/RA vanished from origin under its holder" in out
    assert "protect those refs on the server" in out
    assert "lease: [RA]: the lease was free and is taken again; the result is pushed" in out
    assert remote_log(remote)[0] == "[RA] add ra: GREEN"
    assert remote_refs(remote, "refs/harness/lease/") == {}
