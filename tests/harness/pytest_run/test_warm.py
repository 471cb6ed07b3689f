"""Warm pytest starts (harness/pytest_run/warm.py and warm_server.py): a fork of a server that imported
pytest must be the run a new interpreter would be, and everything proc.run promises must still hold."""
from __future__ import annotations

import json
import os
import signal
import textwrap
import time
from pathlib import Path

import psutil
import pytest

from harness.config import parse_config
from harness.errors import SelectorError
from harness.pytest_run.runner import PytestSettings, run_pytest

ENV = {"PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1", "WARM_PROBE": "given"}

# What a test can see of the process it runs in, beyond pids and the recorder's per-run folder.
PROBE = textwrap.dedent("""\
    import json, os, sys

    def test_probe():
        main = sys.modules["__main__"]
        seen = {
            "argv0": sys.argv[0],
            "path": [p for p in sys.path if "harness-pytest-" not in p],
            "cwd": os.getcwd(),
            "env": {k: os.environ.get(k) for k in ("WARM_PROBE", "PYTEST_DISABLE_PLUGIN_AUTOLOAD")},
            "dont_write_bytecode": sys.dont_write_bytecode,
            "main": [getattr(main, "__file__", None), getattr(main.__spec__, "name", None)],
            "stdin": sys.__stdin__.read(),
            "leads_group": os.getpgid(0) == os.getppid() or os.getpgid(0) != os.getpgid(os.getppid()),
            "stdout_tty": sys.__stdout__.isatty(),
            "encoding": sys.__stdout__.encoding,
            "harness_imported": sorted(m for m in sys.modules if m.startswith(("harness", "_harness_warm"))),
            "flags": [sys.flags.optimize, sys.flags.isolated, sys.flags.safe_path, sys.flags.utf8_mode],
        }
        with open(os.environ["PROBE_OUT"], "w") as fh:
            json.dump(seen, fh)
""")


def how(out: Path, name: str) -> str:
    return (out / f"{name}.command.txt").read_text().splitlines()[-1]


def make_suite(root: Path, files: dict[str, str]) -> Path:
    for rel, text in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)
    return root


def test_a_warm_run_sees_what_a_new_interpreter_sees(tmp_path: Path) -> None:
    project = make_suite(tmp_path / "project", {"tests/test_probe.py": PROBE, "lib/helper.py": "X = 1\n"})
    seen = {}
    for warm in (False, True):
        probe_out = tmp_path / f"probe-{warm}.json"
        env = {**ENV, "PROBE_OUT": str(probe_out), "PYTHONPATH": "lib"}
        run = run_pytest(["tests"], cwd=project, out_dir=tmp_path / "out", name=f"run-{warm}", env=env,
                         timeout_s=60, warm_start=warm)
        assert run.returncode == 0, run.log_path.read_text()
        seen[warm] = json.loads(probe_out.read_text())
    assert how(tmp_path / "out", "run-True").startswith("# forked by the warm pytest server")
    assert how(tmp_path / "out", "run-False") == "# started cold (pytest.warm_start: false)"
    assert seen[True] == seen[False]
    path = seen[True]["path"]
    assert path.index(str(project)) < path.index(str(project / "lib")) < path.index(os.path.dirname(os.__file__))
    assert seen[True]["env"] == {"WARM_PROBE": "given", "PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1"}
    assert seen[True]["harness_imported"] == []


def test_each_warm_run_imports_the_project_afresh(tmp_path: Path) -> None:
    project = make_suite(tmp_path, {
        "calc.py": "VALUE = 1\nCALLS = []\n",
        "tests/test_calc.py": "import calc\n\ndef test_value():\n    calc.CALLS.append(1)\n"
                              "    assert (calc.VALUE, len(calc.CALLS)) == (2, 1)\n",
    })
    first = run_pytest(["tests"], cwd=project, out_dir=tmp_path / "out", name="first", env=ENV, timeout_s=60)
    assert first.returncode == 1
    (project / "calc.py").write_text("VALUE = 2\nCALLS = []\n")
    second = run_pytest(["tests"], cwd=project, out_dir=tmp_path / "out", name="second", env=ENV, timeout_s=60)
    assert second.returncode == 0, second.log_path.read_text()
    assert how(tmp_path / "out", "second").startswith("# forked by the warm pytest server")


def test_a_warm_run_that_times_out_is_ended_with_everything_it_started(tmp_path: Path) -> None:
    project = make_suite(tmp_path, {"tests/test_hang.py": textwrap.dedent("""\
        import os, subprocess, sys, time

        def test_hang():
            child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(300)"])
            with open(os.environ["PID_OUT"], "w") as fh:
                fh.write(str(child.pid))
            time.sleep(300)
    """)})
    pid_out = tmp_path / "grandchild.pid"
    started = time.monotonic()
    run = run_pytest(["tests"], cwd=project, out_dir=tmp_path / "out", name="hang",
                     env={**ENV, "PID_OUT": str(pid_out)}, timeout_s=3)
    assert run.timed_out and time.monotonic() - started < 60
    assert how(tmp_path / "out", "hang").startswith("# forked by the warm pytest server")
    grandchild = int(pid_out.read_text())
    assert not psutil.pid_exists(grandchild) or psutil.Process(grandchild).status() == psutil.STATUS_ZOMBIE


def test_a_run_whose_path_shadows_a_module_the_server_holds_starts_cold(tmp_path: Path) -> None:
    """A new interpreter would import the project's own `pygments` (here a broken one) before pytest's: the
    server, which imported the real one, refuses the run, and the run fails as a new interpreter's does."""
    project = make_suite(tmp_path / "project", {"pygments/__init__.py": "LOCAL = True\n",
                                                "tests/test_a.py": "def test_a():\n    pass\n"})
    messages = {}
    for warm in (False, True):
        with pytest.raises(SelectorError) as caught:
            run_pytest(["tests"], cwd=project, out_dir=tmp_path / "out", name=f"shadow-{warm}", env=ENV,
                       timeout_s=60, warm_start=warm)
        messages[warm] = str(caught.value)
    assert "No module named 'pygments.formatters'" in messages[True]
    assert how(tmp_path / "out", "shadow-True") == (
        f"# started cold: {project / 'pygments'} would shadow the module 'pygments' this server imported")


def test_a_server_that_died_is_replaced_and_the_runs_go_on(tmp_path: Path) -> None:
    project = make_suite(tmp_path, {"tests/test_a.py": "def test_a():\n    pass\n"})
    first = run_pytest(["tests"], cwd=project, out_dir=tmp_path / "out", name="first", env=ENV, timeout_s=60)
    assert first.returncode == 0
    server_pid = int(how(tmp_path / "out", "first").split("(pid ")[1].split(";")[0])
    os.kill(server_pid, signal.SIGKILL)
    second = run_pytest(["tests"], cwd=project, out_dir=tmp_path / "out", name="second", env=ENV, timeout_s=60)
    assert second.returncode == 0
    again = how(tmp_path / "out", "second")
    assert again.startswith("# forked by the warm pytest server") and f"(pid {server_pid};" not in again


def test_warm_start_false_in_the_config_starts_every_run_cold(tmp_path: Path) -> None:
    settings = PytestSettings.from_config(parse_config("pytest: {warm_start: false}\n", "harness.yaml"))
    assert settings.warm_start is False
    assert PytestSettings.from_config(parse_config("", "harness.yaml")).warm_start is True
    project = make_suite(tmp_path, {"tests/test_a.py": "def test_a():\n    pass\n"})
    run = run_pytest(["tests"], cwd=project, out_dir=tmp_path / "out", name="cold", env=ENV, timeout_s=60,
                     warm_start=settings.warm_start)
    assert run.returncode == 0 and how(tmp_path / "out", "cold") == "# started cold (pytest.warm_start: false)"


def test_a_run_whose_server_dies_before_reaping_it_is_run_again_cold_with_its_true_outcome(tmp_path: Path) -> None:
    """The server holds a forked run's exit status until the harness asks for it; if it dies first, the
    status is gone. The run is then run again as a new interpreter, and its outcome is that run's."""
    project = make_suite(tmp_path, {"tests/test_kill.py": textwrap.dedent("""\
        import os, signal
        from pathlib import Path

        def test_kill_the_server_then_fail():
            with open(os.environ["RUNS_OUT"], "a") as fh:
                fh.write("run\\n")
            once = Path(os.environ["KILL_ONCE"])
            if once.exists():  # the first run: kill the warm server that forked it
                once.unlink()
                os.kill(os.getppid(), signal.SIGKILL)
            assert False, "fails on purpose"
    """)})
    runs_out, once = tmp_path / "runs.txt", tmp_path / "kill-once"
    once.touch()
    run = run_pytest(["tests"], cwd=project, out_dir=tmp_path / "out", name="lost",
                     env={**ENV, "RUNS_OUT": str(runs_out), "KILL_ONCE": str(once)}, timeout_s=60)
    assert runs_out.read_text() == "run\nrun\n"  # run twice: warm, then cold
    assert run.returncode == 1 and "fails on purpose" in run.log_path.read_text()
    said = how(tmp_path / "out", "lost")
    assert said.startswith("# forked by the warm pytest server") and "died before it reaped run" in said
    assert said.endswith("so it was run again as a new interpreter")
    after = run_pytest(["tests"], cwd=project, out_dir=tmp_path / "out", name="after",
                       env={**ENV, "RUNS_OUT": str(runs_out), "KILL_ONCE": str(once)}, timeout_s=60)
    assert after.returncode == 1 and how(tmp_path / "out", "after").startswith("# forked by the warm pytest server")
