"""The prove step: the change set it proves is the one that is committed, on the agent path too."""
from __future__ import annotations

import json
from pathlib import Path

from harness.main import main
from tests.conftest import git
from tests.harness.project import HARNESS_YAML, MUL_IMPL, head_subject, make_project, status_porcelain

# The item's test writes a file into the working tree each time it runs: during GREEN and the gates,
# never during RED (which runs in a temporary worktree at the base commit).
WRITING_TEST = ("from pathlib import Path\n\nfrom pkg.calc import mul\n\n\ndef test_mul():\n"
                "    Path('written_by_the_test.txt').write_text('made while the tests ran')\n"
                "    assert mul(2, 3) == 6\n")


def scripted_agent_project(make_repo, tmp_path: Path, files: dict[str, str]) -> Path:
    """A project whose configured agent writes `files` into the working tree and exits 0."""
    agent = tmp_path / "agent.py"
    agent.write_text("import json, sys\nfrom pathlib import Path\nsys.stdin.read()\n"
                     f"for rel, text in json.loads({json.dumps(files)!r}).items():\n"
                     "    Path(rel).parent.mkdir(parents=True, exist_ok=True)\n"
                     "    Path(rel).write_text(text)\n")
    yaml = HARNESS_YAML + f'agent:\n  command: ["{{python}}", "{agent}"]\n'
    return make_project(make_repo, extra={"harness.yaml": yaml})


def test_agent_path_commits_only_the_change_set_that_was_proven(make_repo, tmp_path) -> None:
    repo = scripted_agent_project(make_repo, tmp_path, {"tests/test_mul.py": WRITING_TEST,
                                                        "pkg/calc.py": MUL_IMPL})
    assert main(["run", "-C", str(repo), "CALC-001"]) == 0

    assert head_subject(repo) == "[CALC-001] calc gains mul: GREEN"
    committed = git(repo, "show", "--name-only", "--format=", "HEAD").split()
    assert "pkg/calc.py" in committed and "tests/test_mul.py" in committed
    assert "written_by_the_test.txt" not in committed  # RED/GREEN never judged it as part of the change
    evidence = git(repo, "log", "-1", "--format=%(trailers:key=Harness-Evidence,valueonly)").strip()
    record = json.loads((repo / evidence / "attempt.json").read_text())
    assert [f["path"] for f in record["changes"]["files"]] == ["pkg/calc.py", "tests/test_mul.py"]
    # the harness neither commits nor deletes what the tests wrote: it is left as they left it
    assert status_porcelain(repo) == "?? written_by_the_test.txt\n"
