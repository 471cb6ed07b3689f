"""Two machines sharing one bare remote, each a clone of a parallel_project with push and leases on."""
from __future__ import annotations

from pathlib import Path

from tests.conftest import git, share_through_remote
from tests.harness.parallel.project import parallel_project

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
