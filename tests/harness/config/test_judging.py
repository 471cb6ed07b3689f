"""Which harness.yaml judges a change: the base commit's for everything a proof holds, the working tree's
for the operator's settings."""
from __future__ import annotations

import pytest

from harness.config import Config, config_at, judging_settings, load_config
from harness.errors import ConfigError
from harness.gitops import open_repo
from tests.conftest import git

BASE = """\
pytest:
  args: [-q]
gates:
  integrity: true
ledger: plan.md
commit: {name: Base Person, email: base@example.invalid}
"""
WORKING = """\
pytest:
  args: [-q, -k, mine]
gates:
  integrity: false
ledger: elsewhere.md
known_failures: ci/mine.txt
commit: {name: Tree Person, email: tree@example.invalid}
agent: {command: [my-agent]}
workers: 3
"""


def test_the_base_commits_settings_judge_and_the_working_trees_operator_settings_run(make_repo) -> None:
    repo_dir = make_repo({"harness.yaml": BASE})
    base = git(repo_dir, "rev-parse", "HEAD").strip()
    (repo_dir / "harness.yaml").write_text(WORKING)
    working = load_config(repo_dir)

    judged = judging_settings(open_repo(repo_dir), base, working)

    config = judged.config
    assert config.pytest.args == ("-q",) and config.gates.integrity and config.ledger == "plan.md"
    assert config.known_failures == Config().known_failures
    assert config.commit.name == "Tree Person" and config.agent.command == ("my-agent",) and config.workers == 3
    assert judged.commit == base and judged.found
    assert judged.not_applied == ("ledger", "pytest.args", "known_failures", "gates.integrity")
    assert judged.record()["working_tree_differs"] is True


def test_a_base_without_harness_yaml_is_judged_by_the_defaults_and_says_so(make_repo) -> None:
    repo_dir = make_repo({"README.md": "adopting the harness\n"})
    base = git(repo_dir, "rev-parse", "HEAD").strip()
    (repo_dir / "harness.yaml").write_text(WORKING)

    judged = judging_settings(open_repo(repo_dir), base, load_config(repo_dir))

    assert config_at(open_repo(repo_dir), base) is None
    assert not judged.found and judged.record()["harness_yaml_found"] is False
    assert judged.config.pytest == Config().pytest and judged.config.gates == Config().gates
    assert judged.config.agent.command == ("my-agent",)
    assert "has no harness.yaml" in judged.config.source


def test_a_base_whose_harness_yaml_does_not_parse_is_an_error_that_says_what_to_do(make_repo) -> None:
    repo_dir = make_repo({"harness.yaml": "gates:\n  ful_suite: false\n"})
    base = git(repo_dir, "rev-parse", "HEAD").strip()
    with pytest.raises(ConfigError, match=r"(?s)gates.ful_suite.*judged by its base commit's harness.yaml.*"
                                          r"git commit harness.yaml"):
        judging_settings(open_repo(repo_dir), base, Config())
