"""Two machines sharing one bare remote, each a clone of a parallel_project with push and leases on."""
from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from tests.conftest import git, share_through_remote
from tests.harness.parallel.project import function_change, item, parallel_project

LEASES_YAML = "push:\n  remote: origin\n  branch: main\nleases:\n  enabled: true\n  ttl: {ttl}\n"


def two_machines(make_repo, tmp_path: Path, ledger_items: list[str], plan: dict, *, ttl: int = 60,
                 sandbox: str = "auto") -> tuple[Path, Path, Path]:
    """(remote.git, machine a, machine b): a is the project as made, b a clone of the remote."""
    a = parallel_project(make_repo, tmp_path, ledger_items, plan, extra_yaml=LEASES_YAML.format(ttl=ttl),
                         sandbox=sandbox)
    remote, b = share_through_remote(a, tmp_path)
    return remote, a, b


def remote_log(remote: Path) -> list[str]:
    """The remote branch's subjects, newest first."""
    return git(remote, "log", "--format=%s", "main").splitlines()


def remote_refs(remote: Path, prefix: str) -> dict[str, str]:
    out = git(remote, "for-each-ref", "--format=%(refname) %(objectname)", prefix)
    return dict(line.split(" ") for line in out.splitlines())


def remote_ledger(remote: Path) -> str:
    return git(remote, "show", "main:docs/fix_plan.md")


def agent_runs_first(tmp_path: Path, script: str) -> None:
    """The scripted agent runs `script` (python) when it starts: another machine acting mid-attempt."""
    hook = tmp_path / "hook.py"
    hook.write_text(script)
    agent = (tmp_path / "agent.py").read_text()
    (tmp_path / "agent.py").write_text(agent.replace('log("start")\n', 'log("start")\n'
                                                     f'import runpy; runpy.run_path({str(hook)!r})\n', 1))


def taken_over_by_machine_b(b: Path, item_id: str) -> str:
    """A script (for agent_runs_first) by which machine b takes `item_id`'s lease over: its holder is judged
    expired, as five minutes from now."""
    return ("from datetime import UTC, datetime, timedelta\n"
            "from harness.gitops import open_repo\n"
            "from harness.parallel.lease import Holder\n"
            "from harness.parallel.remote.lease import take\n"
            f"take(open_repo({str(b)!r}), 'origin', {item_id!r}, Holder('machine-b', 4242, '2026-01-01T00:00:00Z'),\n"
            "     ttl_s=0, identity=('Other', 'o@example.invalid'),\n"
            "     now=lambda: datetime.now(UTC) + timedelta(minutes=5))\n")


def one_item_machines(make_repo, tmp_path: Path, hook: Callable[[Path], str]) -> tuple[Path, Path, Path]:
    """two_machines over one item, RA, whose agent first runs `hook(b)`: machine b acting mid-attempt."""
    plan = {"RA": {"files": function_change("ra")}}
    remote, a, b = two_machines(make_repo, tmp_path, [item("RA", "add ra", "tests/test_ra.py")], plan,
                                sandbox="off")
    agent_runs_first(tmp_path, hook(b))
    return remote, a, b
