from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from harness.gitops import open_repo
from harness.parallel.lease import Holder, LeaseRefused
from harness.parallel.remote.heartbeat import Heartbeat
from harness.parallel.remote.lease import LeaseLost, fetch_leases, release, renew, take
from tests.conftest import git, share_through_remote

IDENTITY = ("ptycho-harness", "harness@localhost")
A = Holder("machine-a", 111, "2026-01-01T00:00:00Z")
B = Holder("machine-b", 222, "2026-01-01T00:00:00Z")
T0 = datetime(2026, 1, 1, 10, 0, 0, tzinfo=UTC)


def at(moment: datetime) -> Callable[[], datetime]:
    return lambda: moment


@pytest.fixture
def clones(make_repo: Callable[..., Path], tmp_path: Path) -> tuple[Path, Path, Path]:
    """(remote.git, clone a, clone b): two machines sharing one bare remote."""
    a = make_repo({"f.txt": "x\n"}, name="a")
    remote, b = share_through_remote(a, tmp_path)
    return remote, a, b


def remote_ref(remote: Path, ref: str) -> str | None:
    out = git(remote, "for-each-ref", "--format=%(objectname)", ref).strip()
    return out or None


def record_at(remote: Path, ref: str) -> dict:
    message = git(remote, "log", "-1", "--format=%B", ref)
    return json.loads(next(line for line in message.splitlines() if line.startswith("{")))


def test_a_free_lease_is_taken_with_its_holder_recorded_and_a_live_one_is_refused_to_the_other_clone(clones):
    remote, a, b = clones
    lease = take(open_repo(a), "origin", "IT-1", A, ttl_s=60, identity=IDENTITY, now=at(T0))
    assert remote_ref(remote, "refs/harness/lease/IT-1") == lease.sha
    record = record_at(remote, "refs/harness/lease/IT-1")
    assert record["holder"] == {"host": "machine-a", "pid": 111, "started": "2026-01-01T00:00:00Z"}
    assert record["taken"] == record["heartbeat"] == "2026-01-01T10:00:00Z" and record["takeover"] is None
    with pytest.raises(LeaseRefused, match=r"leased on origin by pid 111 on machine-a.*last heartbeat 30 s ago"):
        take(open_repo(b), "origin", "IT-1", B, ttl_s=60, identity=IDENTITY, now=at(T0 + timedelta(seconds=30)))
    assert remote_ref(remote, "refs/harness/lease/IT-1") == lease.sha
    seen = fetch_leases(open_repo(b), "origin")
    assert list(seen) == ["IT-1"] and seen["IT-1"].holder == A and seen["IT-1"].heartbeat == "2026-01-01T10:00:00Z"


def test_renewal_moves_the_heartbeat_and_keeps_the_lease_alive_past_the_first_ttl(clones):
    remote, a, b = clones
    lease = take(open_repo(a), "origin", "IT-1", A, ttl_s=60, identity=IDENTITY, now=at(T0))
    lease = renew(open_repo(a), lease, identity=IDENTITY, now=at(T0 + timedelta(seconds=50)))
    assert record_at(remote, "refs/harness/lease/IT-1")["heartbeat"] == "2026-01-01T10:00:50Z"
    assert record_at(remote, "refs/harness/lease/IT-1")["renewals"] == 1
    with pytest.raises(LeaseRefused, match="last heartbeat 40 s ago"):
        take(open_repo(b), "origin", "IT-1", B, ttl_s=60, identity=IDENTITY, now=at(T0 + timedelta(seconds=90)))


def test_an_expired_lease_is_taken_over_its_holders_pushed_work_saved_and_the_takeover_recorded(clones):
    remote, a, b = clones
    old = take(open_repo(a), "origin", "IT-1", A, ttl_s=60, identity=IDENTITY, now=at(T0))
    (a / "f.txt").write_text("half done\n")
    git(a, "commit", "-qam", "work in progress")
    work = git(a, "rev-parse", "HEAD").strip()
    git(a, "push", "-q", "origin", "HEAD:refs/harness/work/IT-1/attempt-1")
    new = take(open_repo(b), "origin", "IT-1", B, ttl_s=60, identity=IDENTITY, now=at(T0 + timedelta(seconds=61)))
    assert new.takeover is not None and new.takeover.holder == A and new.takeover.sha == old.sha
    saved = f"refs/harness/taken-over/IT-1/{old.sha[:12]}/attempt-1"
    assert remote_ref(remote, saved) == work
    record = record_at(remote, "refs/harness/lease/IT-1")
    assert record["holder"]["host"] == "machine-b"
    assert record["takeover"] == {"holder": {"host": "machine-a", "pid": 111, "started": "2026-01-01T00:00:00Z"},
                                  "sha": old.sha, "heartbeat": "2026-01-01T10:00:00Z", "saved": {saved: work}}
    # the old holder learns at its next renewal that the item is no longer its own
    with pytest.raises(LeaseLost, match="taken over by pid 222 on machine-b") as lost:
        renew(open_repo(a), old, identity=IDENTITY, now=at(T0 + timedelta(seconds=62)))
    assert lost.value.kind == "taken over" and lost.value.by == B
    assert release(open_repo(a), old) is not None  # not its lease any more: nothing removed
    assert remote_ref(remote, "refs/harness/lease/IT-1") == new.sha


def test_a_lease_deleted_on_the_remote_is_reported_as_vanished(clones):
    remote, a, _ = clones
    lease = take(open_repo(a), "origin", "IT-1", A, ttl_s=60, identity=IDENTITY, now=at(T0))
    git(remote, "update-ref", "-d", "refs/harness/lease/IT-1")
    with pytest.raises(LeaseLost, match="vanished from origin") as lost:
        renew(open_repo(a), lease, identity=IDENTITY, now=at(T0 + timedelta(seconds=5)))
    assert lost.value.kind == "vanished"
    assert fetch_leases(open_repo(a), "origin") == {}  # the mirror follows the remote


def test_release_removes_only_the_holders_own_lease(clones):
    remote, a, _ = clones
    lease = take(open_repo(a), "origin", "IT-1", A, ttl_s=60, identity=IDENTITY, now=at(T0))
    assert release(open_repo(a), lease) is None
    assert remote_ref(remote, "refs/harness/lease/IT-1") is None


def test_clones_racing_for_one_free_lease_exactly_one_wins_each_round(clones):
    remote, a, b = clones
    for round_ in range(3):
        item = f"IT-{round_}"
        outcomes: dict[str, object] = {}

        def racer(name: str, repo: Path, holder: Holder, item: str = item, outcomes: dict = outcomes) -> None:
            try:
                outcomes[name] = take(open_repo(repo), "origin", item, holder, ttl_s=60, identity=IDENTITY)
            except LeaseRefused as exc:
                outcomes[name] = exc

        threads = [threading.Thread(target=racer, args=("a", a, A)), threading.Thread(target=racer, args=("b", b, B))]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        won = [o for o in outcomes.values() if not isinstance(o, LeaseRefused)]
        assert len(won) == 1, outcomes
        assert remote_ref(remote, f"refs/harness/lease/{item}") == won[0].sha


def test_the_heartbeat_thread_renews_and_stops_when_the_lease_is_taken_over(clones):
    remote, a, b = clones
    lease = take(open_repo(a), "origin", "IT-1", A, ttl_s=60, identity=IDENTITY)
    with Heartbeat(a, lease, interval_s=1.0, identity=IDENTITY) as beat:
        deadline = time.monotonic() + 120
        while beat.lease.renewals < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert beat.lease.renewals >= 2 and beat.lost is None
        while time.monotonic() < deadline:  # a renewal between b's read and its compare-and-swap: b retries
            try:
                take(open_repo(b), "origin", "IT-1", B, ttl_s=0, identity=IDENTITY,
                     now=lambda: datetime.now(UTC) + timedelta(seconds=5))
                break
            except LeaseRefused:
                continue
        while beat.lost is None and time.monotonic() < deadline:
            time.sleep(0.05)
    assert beat.lost is not None and beat.lost.kind == "taken over"
    assert record_at(remote, "refs/harness/lease/IT-1")["holder"]["host"] == "machine-b"
