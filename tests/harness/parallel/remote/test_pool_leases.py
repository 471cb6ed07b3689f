"""`harness loop --workers N` with `push` and `leases.enabled`: the remote's ledger and leases decide what
the pool starts, and each landing is pushed together with its lease's release."""
from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

from harness.gitops import open_repo
from harness.main import main
from harness.parallel.lease import Holder
from harness.parallel.remote.lease import take
from tests.conftest import git
from tests.harness.parallel.project import function_change, item
from tests.harness.parallel.remote import machines
from tests.harness.parallel.remote.test_leased import IDENTITY, statuses

ITEMS = {"RA": "ra", "RB": "rb", "RC": "rc"}


def _project(make_repo, tmp_path, *, ttl: int = 60, sandbox: str = "auto"):
    plan = {i: {"files": function_change(n)} for i, n in ITEMS.items()}
    ledger = [item(i, f"add {n}", f"tests/test_{n}.py") for i, n in ITEMS.items()]
    return machines.two_machines(make_repo, tmp_path, ledger, plan, ttl=ttl, sandbox=sandbox)


def _agent_runs(tmp_path) -> list[str]:
    """The items the scripted agent started on, in order, on either machine."""
    lines = (tmp_path / "agent_log.jsonl").read_text().splitlines()
    return [json.loads(line)["item"] for line in lines if json.loads(line)["event"] == "start"]


def _greens(remote) -> list[str]:
    return [s for s in machines.remote_log(remote) if s.endswith(": GREEN")]


def test_the_pool_leaves_an_item_leased_elsewhere_alone_never_redoes_one_done_elsewhere_and_does_the_rest(
        make_repo, tmp_path, capsys) -> None:
    remote, a, b = _project(make_repo, tmp_path)
    assert main(["run", "-C", str(b), "RB"]) == 0  # machine b finished RB and pushed it; a has not fetched
    theirs = take(open_repo(b), "origin", "RA", Holder("machine-b", 4242, "2026-01-01T00:00:00Z"), ttl_s=60,
                  identity=IDENTITY)  # and b works on RA now
    capsys.readouterr()
    assert main(["loop", "-C", str(a), "--workers", "2", "--until-empty"]) == 0
    out = capsys.readouterr().out
    assert _agent_runs(tmp_path) == ["RB", "RC"]  # b's RB, then a's RC: nothing twice, RA left to b
    assert _greens(remote) == ["[RC] add rc: GREEN", "[RB] add rb: GREEN"]
    assert statuses(machines.remote_ledger(remote)) == {"RA": "pending", "RB": "done", "RC": "done"}
    assert "leased [RC] on origin" in out and "leased [RA]" not in out and "leased [RB]" not in out
    assert "nothing left for this harness: the actionable items are leased by others: RA (pid 4242 on machine-b" \
        in out
    assert machines.remote_refs(remote, "refs/harness/lease/") == {"refs/harness/lease/RA": theirs.sha}
    assert git(a, "rev-parse", "HEAD").strip() == git(remote, "rev-parse", "main").strip()
    assert git(a, "for-each-ref", "refs/harness/lease/").strip() == ""


def test_the_pool_takes_over_an_expired_lease_and_the_takeover_is_in_the_attempts_commit(
        make_repo, tmp_path, capsys) -> None:
    remote, a, b = _project(make_repo, tmp_path, ttl=5)
    dead = Holder("machine-b", 4242, "2026-01-01T00:00:00Z")
    old = take(open_repo(b), "origin", "RA", dead, ttl_s=5, identity=IDENTITY,
               now=lambda: datetime.now(UTC) - timedelta(minutes=5))
    assert main(["loop", "-C", str(a), "--workers", "2", "--until-empty"]) == 0
    out = capsys.readouterr().out
    assert statuses(machines.remote_ledger(remote)) == dict.fromkeys(ITEMS, "done")
    assert "[RA] taken over from pid 4242 on machine-b" in out
    green_ra = git(remote, "log", "--format=%H", "--grep=^\\[RA\\] add ra: GREEN$", "main").split()
    assert len(green_ra) == 1
    trailer = git(remote, "log", "-1", "--format=%(trailers:key=Harness-Lease-Takeover,valueonly)",
                  green_ra[0]).strip()
    assert trailer.startswith("pid 4242 on machine-b") and old.sha[:12] in trailer
    assert machines.remote_refs(remote, "refs/harness/lease/") == {}


def test_a_lease_taken_over_while_a_worker_proves_withdraws_its_landing_and_pushes_nothing_of_it(
        make_repo, tmp_path, capsys) -> None:
    remote, a, _ = machines.one_item_machines(make_repo, tmp_path, lambda b: machines.taken_over_by_machine_b(b, "RA"))
    before = git(remote, "rev-parse", "main").strip()
    main(["loop", "-C", str(a), "--workers", "2", "--iterations", "1"])
    out = capsys.readouterr().out
    assert "[RA]: the lease on origin was taken over by pid 4242 on machine-b" in out
    assert "is withdrawn (saved on refs/harness/superseded/RA/1), nothing was pushed" in out
    assert git(remote, "rev-parse", "main").strip() == before
    assert git(a, "rev-parse", "HEAD").strip() == before
    assert git(a, "log", "-1", "--format=%s", "refs/harness/superseded/RA/1").strip() == "[RA] add ra: GREEN"
    assert "machine-b" in git(remote, "log", "-1", "--format=%B", "refs/harness/lease/RA")


def test_a_branch_another_machine_moved_meanwhile_is_merged_onto_and_the_merged_tree_proven_before_the_push(
        make_repo, tmp_path) -> None:
    remote, a, _ = machines.one_item_machines(make_repo, tmp_path, lambda b: (
        "import subprocess\n"
        f"b = {str(b)!r}\n"
        "open(b + '/pkg/other.py', 'w').write('X = 1\\n')\n"
        "subprocess.run(['git', '-C', b, 'add', 'pkg/other.py'], check=True)\n"
        "subprocess.run(['git', '-C', b, 'commit', '-qm', 'other machine work'], check=True)\n"
        "subprocess.run(['git', '-C', b, 'push', '-q', 'origin', 'HEAD:refs/heads/main'], check=True)\n"))
    assert main(["loop", "-C", str(a), "--workers", "2", "--until-empty"]) == 0
    assert machines.remote_log(remote)[:2] == ["[RA] add ra: GREEN", "other machine work"]
    other = git(remote, "rev-parse", "main~1").strip()
    assert git(remote, "log", "-1", "--format=%(trailers:key=Harness-Merged-Onto,valueonly)", "main").strip() == other
    evidence = git(remote, "show", "--stat", "--format=", "main")
    assert "merged" in evidence  # the merged tree's gates ran: their evidence is in the attempt's commit
    assert machines.remote_refs(remote, "refs/harness/lease/") == {}
