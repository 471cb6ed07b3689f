"""Two harnesses on two clones of one bare remote, running at once: every item done exactly once there."""
from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from harness.ledger import parse_ledger
from tests.conftest import git
from tests.harness.parallel.project import function_change, item
from tests.harness.parallel.remote.machines import remote_ledger, remote_refs, two_machines

ITEMS = ["ia", "ib", "ic", "id", "ie", "if_"]
HARNESS_ROOT = Path(__file__).resolve().parents[4]


def _harness(repo: Path, *args: str) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(HARNESS_ROOT), os.environ.get("PYTHONPATH")]))}
    return subprocess.Popen([sys.executable, "-m", "harness", *args, "-C", str(repo)], env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)


def _green_commits(remote: Path) -> list[tuple[str, str]]:
    """(sha, item) of every GREEN commit on the remote branch."""
    out = git(remote, "log", "--format=%H %s", "main")
    return [(line.split()[0], line.split()[1].strip("[]")) for line in out.splitlines() if line.endswith(": GREEN")]


def _red_passes_at(remote: Path, sha: str, selector: str, where: Path) -> subprocess.CompletedProcess[str]:
    git(remote, "worktree", "add", "--detach", str(where), sha)
    try:
        return subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", selector], cwd=where,
                              capture_output=True, text=True, check=False,
                              env={**os.environ, "PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1"})
    finally:
        git(remote, "worktree", "remove", "--force", str(where))


def _two_at_once_over_six_items(make_repo, tmp_path: Path, *loop_args: str) -> dict[str, str]:
    """Both machines run `harness loop --until-empty *loop_args` at once over six independent items (b from
    when a's first result is on the remote); checks that every item ends done exactly once on the remote, was
    worked on once, and has one GREEN commit that passes its RED selectors at itself. The outputs, by name."""
    plan = {i.upper().strip("_"): {"files": function_change(i), "sleep": 1} for i in ITEMS}
    ledger = [item(i.upper().strip("_"), f"add {i}", f"tests/test_{i}.py") for i in ITEMS]
    remote, a, b = two_machines(make_repo, tmp_path, ledger, plan)
    runs = {"a": _harness(a, "loop", "--until-empty", *loop_args)}
    # b joins once a's first result is on the remote: b's clone predates it, so b must read the remote's
    # ledger (and not just its leases) to leave that item alone.
    deadline = time.monotonic() + 300
    while not _green_commits(remote) and runs["a"].poll() is None and time.monotonic() < deadline:
        time.sleep(0.2)
    runs["b"] = _harness(b, "loop", "--until-empty", *loop_args)
    outputs = {name: run.communicate(timeout=900)[0] for name, run in runs.items()}
    for name, run in runs.items():
        assert run.returncode == 0, f"machine {name}:\n{outputs[name]}"
    greens = _green_commits(remote)
    ids = sorted(i.upper().strip("_") for i in ITEMS)
    assert sorted(item_id for _, item_id in greens) == ids, greens  # each exactly once
    assert {i.id: i.status for i in parse_ledger(remote_ledger(remote)).items} == dict.fromkeys(ids, "done")
    assert remote_refs(remote, "refs/harness/lease/") == {}
    starts = [json.loads(line)["item"] for line in (tmp_path / "agent_log.jsonl").read_text().splitlines()
              if json.loads(line)["event"] == "start"]
    assert sorted(starts) == ids, starts  # no item was worked on twice, by one machine or both
    for clone in (a, b):
        assert not (clone / ".git/harness/pending_push.json").exists(), outputs
    by_machine = {name: sorted(re.findall(r"\] leased \[([A-Z]+)\] on origin", out)) for name, out in outputs.items()}
    assert by_machine["a"] and by_machine["b"], by_machine  # both worked
    assert sorted(by_machine["a"] + by_machine["b"]) == ids  # and no item was leased twice
    for sha, item_id in greens:
        name = item_id.lower() if item_id != "IF" else "if_"
        done = _red_passes_at(remote, sha, f"tests/test_{name}.py", tmp_path / f"at-{sha[:10]}")
        assert done.returncode == 0, f"[{item_id}] at {sha[:10]}:\n{done.stdout[-2000:]}"
    return outputs


@pytest.mark.slow
def test_two_harnesses_at_once_do_every_item_exactly_once_and_every_green_commit_holds_at_itself(
        make_repo, tmp_path) -> None:
    _two_at_once_over_six_items(make_repo, tmp_path)


@pytest.mark.slow
def test_two_harnesses_with_two_workers_each_do_every_item_exactly_once_and_every_green_commit_holds_at_itself(
        make_repo, tmp_path) -> None:
    _two_at_once_over_six_items(make_repo, tmp_path, "--workers", "2")


@pytest.mark.slow
def test_a_harness_killed_mid_item_has_its_item_taken_over_and_finished_by_the_other_and_its_work_kept(
        make_repo, tmp_path) -> None:
    plan = {"KA": {"files": function_change("ka"), "sleep": 600}, "KB": {"files": function_change("kb")}}
    ledger = [item("KA", "add ka", "tests/test_ka.py"), item("KB", "add kb", "tests/test_kb.py")]
    remote, a, b = two_machines(make_repo, tmp_path, ledger, plan, ttl=6, sandbox="off")
    agent_pid = tmp_path / "agent.pid"
    agent = (tmp_path / "agent.py").read_text()
    (tmp_path / "agent.py").write_text(agent.replace('log("start")\n', 'log("start")\n'
                                                     f'Path({str(agent_pid)!r}).write_text(str(os.getpid()))\n', 1))
    doomed = _harness(a, "run", "KA")
    deadline = time.monotonic() + 120
    while not agent_pid.exists() and time.monotonic() < deadline:
        time.sleep(0.2)
    assert "refs/harness/lease/KA" in remote_refs(remote, "refs/harness/lease/")
    os.kill(doomed.pid, signal.SIGKILL)
    doomed.communicate()
    os.killpg(int(agent_pid.read_text()), signal.SIGKILL)  # the agent's own group: a dead machine's is gone too
    plan["KA"]["sleep"] = 0
    (tmp_path / "plan.json").write_text(json.dumps(plan))

    survivor = _harness(b, "loop", "--until-empty")
    out = survivor.communicate(timeout=600)[0]
    assert survivor.returncode == 0, out
    assert "[KA] taken over from pid" in out
    greens = _green_commits(remote)
    assert sorted(item_id for _, item_id in greens) == ["KA", "KB"], out
    trailer = git(remote, "log", "-1", "--format=%(trailers:key=Harness-Lease-Takeover,valueonly)",
                  next(sha for sha, i in greens if i == "KA")).strip()
    assert trailer.startswith(f"pid {doomed.pid} on ")
    assert remote_refs(remote, "refs/harness/lease/") == {}

    # The killed machine comes back: its interrupted attempt is recorded and its work saved. Its ABORTED line
    # and the survivor's GREEN line are both in [KA]'s ledger section: the replay onto the remote conflicts,
    # so nothing is pushed, the commit is kept pending and the loop stops with what to do (exit 4).
    back = _harness(a, "loop", "--until-empty")
    out = back.communicate(timeout=600)[0]
    assert git(a, "for-each-ref", "--format=%(refname)", "refs/harness/aborted/KA/").strip() == \
        "refs/harness/aborted/KA/1", out
    assert back.returncode == 4, out
    assert "its own commits must reach the remote before the remote's ledger can be read here" in out
    assert "conflicts in docs/fix_plan.md" in out and (a / ".git/harness/pending_push.json").exists()
    assert sorted(item_id for _, item_id in _green_commits(remote)) == ["KA", "KB"]
