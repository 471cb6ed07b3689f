"""A project for the parallel loop's tests: independent items, a scripted agent that logs when it works."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from tests.conftest import git
from tests.harness.project import HARNESS_YAML

AGENT = '''\
import json, os, sys, time
from pathlib import Path
plan = json.loads(Path(sys.argv[1]).read_text())
item, attempt = os.environ["HARNESS_ITEM"], os.environ["HARNESS_ATTEMPT"]
step = plan.get(f"{item}#{attempt}", plan.get(item, {}))
sys.stdin.read()

def log(event):
    with open(sys.argv[2], "a") as f:
        f.write(json.dumps({"item": item, "attempt": int(attempt), "event": event, "t": time.time(),
                            "cwd": os.getcwd(), "evidence": os.environ["HARNESS_EVIDENCE_DIR"]}) + "\\n")

log("start")
for rel, text in step.get("files", {}).items():
    Path(rel).parent.mkdir(parents=True, exist_ok=True)
    Path(rel).write_text(text)
for folder in step.get("remove", []):  # outside the worktree: a file the harness needs, gone mid-run
    import shutil
    shutil.rmtree(folder)
for rel, text in step.get("insert", {}).items():  # before the marker line, as an edit of the same lines
    Path(rel).write_text(Path(rel).read_text().replace(MARKER, text + MARKER, 1))
if step.get("child_pid_file"):
    import subprocess
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(300)"])
    Path(step["child_pid_file"]).write_text(str(child.pid))
time.sleep(step.get("sleep", 0))
log("end")
sys.exit(step.get("exit", 0))
'''
MARKER = "# more functions above this line\n"

BASE_FILES = {
    "pkg/__init__.py": "",
    "pkg/calc.py": "def double(x):\n    return x * 2\n\n\n" + MARKER,
    "tests/__init__.py": "",
    "tests/test_calc.py": "from pkg.calc import double\n\n\ndef test_double():\n    assert double(2) == 4\n",
}


def item(item_id: str, title: str, red: str, *, depends: str | None = None) -> str:
    lines = [f"## [{item_id}] {title}", "- Status: pending", f"- RED: {red}"]
    if depends:
        lines.append(f"- Depends-On: {depends}")
    return "\n".join(lines) + "\n"


def function_change(name: str, body: str = "1") -> dict[str, str]:
    """A new module pkg/<name>.py with `<name>()` returning `body`, and its test."""
    return {f"pkg/{name}.py": f"def {name}():\n    return {body}\n",
            f"tests/test_{name}.py": f"from pkg.{name} import {name}\n\n\ndef test_{name}():\n"
                                     f"    assert {name}() == {body}\n"}


def parallel_project(make_repo, tmp_path: Path, ledger_items: list[str], plan: dict,
                     extra_yaml: str = "", sandbox: str = "auto") -> Path:
    """The project; its agent logs to tmp_path/agent_log.jsonl, a path its sandbox lets it write. An agent
    that acts outside its worktree (`remove`), or reports a pid (`child_pid_file`, a number that means
    something only outside the sandbox's pid namespace), needs `sandbox="off"`."""
    agent = tmp_path / "agent.py"
    agent.write_text(AGENT.replace("MARKER", repr(MARKER)))
    (tmp_path / "plan.json").write_text(json.dumps(plan))
    log = tmp_path / "agent_log.jsonl"
    log.touch()
    yaml = HARNESS_YAML + (f'agent:\n  command: ["{{python}}", "{agent}", "{tmp_path / "plan.json"}", '
                           f'"{log}"]\n  timeout_s: 120\n  sandbox: {sandbox}\n  writable: ["{log}"]\n') + extra_yaml
    ledger = "# Fix Plan\n\n" + "\n".join(ledger_items)
    return make_repo({**BASE_FILES, "harness.yaml": yaml, "docs/fix_plan.md": ledger})


def set_plan(tmp_path: Path, plan: dict) -> None:
    (tmp_path / "plan.json").write_text(json.dumps(plan))


def agent_log(tmp_path: Path) -> list[dict]:
    path = tmp_path / "agent_log.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def worktrees(repo: Path) -> list[str]:
    return [line.split(" ", 1)[1] for line in git(repo, "worktree", "list", "--porcelain").splitlines()
            if line.startswith("worktree ")]


def harness_refs(repo: Path, prefix: str) -> list[str]:
    return git(repo, "for-each-ref", "--format=%(refname)", prefix).split()


def assert_nothing_left(repo: Path) -> None:
    """After any run: the main checkout alone, no lease, no worker branch or folder, a clean tree."""
    assert worktrees(repo) == [str(repo)]
    assert harness_refs(repo, "refs/harness/lease/") == []
    assert harness_refs(repo, "refs/heads/harness/") == []
    workers = repo / ".git" / "harness" / "workers"
    assert not workers.exists() or not any(workers.iterdir())
    assert git(repo, "status", "--porcelain", "--untracked-files=all") == ""


def green_commits(repo: Path) -> list[str]:
    return [line.split()[0] for line in git(repo, "log", "--format=%H %s").splitlines()
            if line.endswith(": GREEN")]


def suite_passes_at(repo: Path, sha: str, where: Path) -> subprocess.CompletedProcess[str]:
    """Run the whole suite of commit `sha` in a fresh checkout of it."""
    git(repo, "worktree", "add", "--detach", str(where), sha)
    try:
        return subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"], cwd=where,
                              capture_output=True, text=True, check=False,
                              env={**os.environ, "PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1"})
    finally:
        git(repo, "worktree", "remove", "--force", str(where))
