"""`harness leases [--remote] [--json]`: who holds what, since when, heartbeat age, expired or not."""
from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

from harness.errors import ExitCode
from harness.gitops import open_repo
from harness.main import main
from harness.parallel.lease import Holder
from harness.parallel.remote.lease import take
from tests.conftest import git

IDENTITY = ("ptycho-harness", "harness@localhost")
YAML = "push:\n  remote: origin\n  branch: main\nleases:\n  enabled: true\n  ttl: 60\n"


def _clones(make_repo, tmp_path):
    remote = tmp_path / "remote.git"
    git(tmp_path, "init", "-q", "--bare", "-b", "main", str(remote))
    ledger = "# Fix Plan\n\n## [LIVE-1] a live one\n- Status: in_progress\n- RED: tests/test_x.py::test_x\n"
    a = make_repo({"harness.yaml": YAML, "docs/fix_plan.md": ledger}, name="a")
    git(a, "remote", "add", "origin", str(remote))
    git(a, "push", "-q", "origin", "HEAD:refs/heads/main")
    git(tmp_path, "clone", "-q", str(remote), "b")
    return a, tmp_path / "b"


def test_leases_lists_the_remotes_holders_with_heartbeat_age_and_expiry(make_repo, tmp_path, capsys) -> None:
    a, b = _clones(make_repo, tmp_path)
    now = datetime.now(UTC)
    take(open_repo(b), "origin", "LIVE-1", Holder("machine-b", 7, "2026-01-01T00:00:00Z"), ttl_s=60,
         identity=IDENTITY, now=lambda: now)
    take(open_repo(b), "origin", "DEAD-1", Holder("machine-c", 9, "2026-01-01T00:00:00Z"), ttl_s=60,
         identity=IDENTITY, now=lambda: now - timedelta(hours=1))
    assert main(["leases", "-C", str(a)]) == ExitCode.OK  # not fetched yet: nothing known here
    assert "no leases" in capsys.readouterr().out
    assert main(["leases", "-C", str(a), "--remote", "--json"]) == ExitCode.OK
    data = json.loads(capsys.readouterr().out)
    rows = {row["item"]: row for row in data["leases"]}
    assert data["ttl_s"] == 60 and set(rows) == {"LIVE-1", "DEAD-1"}
    assert rows["LIVE-1"]["host"] == "machine-b" and rows["LIVE-1"]["where"] == "origin"
    assert rows["LIVE-1"]["expired"] is False and rows["LIVE-1"]["age_s"] < 60
    assert rows["DEAD-1"]["expired"] is True and rows["DEAD-1"]["age_s"] >= 3600
    assert main(["leases", "-C", str(a)]) == ExitCode.OK  # as last fetched, without asking the remote
    out = capsys.readouterr().out
    assert "LIVE-1" in out and "machine-b" in out and "EXPIRED" in out.split("DEAD-1")[1].splitlines()[0]
    assert "as last fetched from origin" in out


def test_leases_remote_without_push_configured_says_what_to_set(make_repo, capsys) -> None:
    repo = make_repo({"harness.yaml": "commit:\n  name: x\n  email: x@example.invalid\n",
                      "docs/fix_plan.md": "# Fix Plan\n"})
    assert main(["leases", "-C", str(repo), "--remote"]) == ExitCode.ERROR
    assert "`push` is not configured" in capsys.readouterr().err


def test_the_report_shows_the_holder_of_a_leased_item(make_repo, tmp_path, capsys) -> None:
    a, b = _clones(make_repo, tmp_path)
    take(open_repo(b), "origin", "LIVE-1", Holder("machine-b", 7, "2026-01-01T00:00:00Z"), ttl_s=60,
         identity=IDENTITY)
    assert main(["leases", "-C", str(a), "--remote"]) == ExitCode.OK
    assert main(["report", "-C", str(a), "--out", str(tmp_path / "site")]) == ExitCode.OK
    index = (tmp_path / "site" / "index.html").read_text()
    assert "held by pid 7 on machine-b" in index and "lease on origin" in index
