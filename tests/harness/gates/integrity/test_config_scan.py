"""selection-narrowed, known-failures-added and gates-weakened from the two versions of a changed file."""
from __future__ import annotations

import pytest

from harness.config import parse_config
from harness.errors import ConfigError
from harness.gates.integrity.config_scan import gate_findings, known_failure_findings, selection_findings


def details(path: str, old: str | None, new: str | None) -> list[str]:
    found = selection_findings(path, old, new)
    assert all(f.kind == "selection-narrowed" and f.file == path and f.test == path for f in found)
    return [f.detail for f in found]


@pytest.mark.parametrize(("path", "old", "new", "expected"), [
    ("pyproject.toml", '[tool.pytest.ini_options]\naddopts = "-q"\n',
     '[tool.pytest.ini_options]\naddopts = "-q -k \'not slow\'"\n', ["addopts gains `-k not slow`, so fewer tests run"]),
    ("pyproject.toml", "[tool.pytest.ini_options]\naddopts = []\n",
     '[tool.pytest.ini_options]\naddopts = ["--deselect=tests/a.py::t"]\n',
     ["addopts gains `--deselect tests/a.py::t`, so fewer tests run"]),
    ("pytest.ini", "[pytest]\n", "[pytest]\naddopts = -mfast\n", ["addopts gains `-m fast`, so fewer tests run"]),
    ("sub/tox.ini", "", "[pytest]\naddopts = --ignore tests/slow\n",
     ["addopts gains `--ignore tests/slow`, so fewer tests run"]),
    ("setup.cfg", "[tool:pytest]\n", "[tool:pytest]\naddopts = --collect-only\n",
     ["addopts gains `--collect-only`, so fewer tests run"]),
    ("pyproject.toml", '[tool.pytest.ini_options]\ntestpaths = ["tests"]\n',
     '[tool.pytest.ini_options]\ntestpaths = ["tests/unit"]\n',
     ["testpaths changed from ['tests'] to ['tests/unit'], which decides what is collected"]),
    ("harness.yaml", "pytest:\n  args: []\n", "pytest:\n  args: [-m, fast]\ngates:\n  full_suite: {args: [--lf]}\n",
     ["the pytest arguments in harness.yaml gain `-m fast`, so fewer tests run",
      "the pytest arguments in harness.yaml gain `--lf`, so fewer tests run"]),
])
def test_added_filters_are_named_with_their_values(path: str, old: str, new: str, expected: list[str]) -> None:
    assert details(path, old, new) == expected


def test_filters_already_there_and_other_options_are_no_finding() -> None:
    old = '[tool.pytest.ini_options]\naddopts = "-k fast"\n'
    assert details("pyproject.toml", old, '[tool.pytest.ini_options]\naddopts = "-k fast -ra -v --tb=short '
                   '-p no:cacheprovider -n 4"\n') == []
    assert details("pyproject.toml", "", "[project]\nname = 'x'\n") == []
    assert details("README.md", "", "addopts = -k x\n") == []


def test_conftest_collect_ignore_and_collection_hooks() -> None:
    old = 'collect_ignore = ["setup.py"]\n'
    new = ('collect_ignore = ["setup.py"]\ncollect_ignore.append("test_slow.py")\n\n'
           "def pytest_collection_modifyitems(config, items):\n    items[:] = items[:1]\n")
    assert details("tests/conftest.py", old, new) == [
        "collect_ignore gains 'test_slow.py', so it is not collected",
        "pytest_collection_modifyitems added; this hook can deselect, ignore or skip tests"]
    changed = new.replace("items[:1]", "items[:2]")
    assert details("tests/conftest.py", new, changed) == [
        "pytest_collection_modifyitems changed; this hook can deselect, ignore or skip tests"]
    assert details("tests/conftest.py", new, new + "\n\ndef helper():\n    return 1\n") == []


def test_known_failures_gained_are_each_a_finding() -> None:
    found = known_failure_findings("ci/known.txt", "# known\ntests/a.py::t\n", "ci/known.txt",
                                   "# known\ntests/a.py::t\ntests/b.py::u\n\ntests/c.py::v\n")
    assert [(f.kind, f.test, f.detail) for f in found] == [
        ("known-failures-added", "tests/b.py::u", "added to ci/known.txt"),
        ("known-failures-added", "tests/c.py::v", "added to ci/known.txt")]
    moved = known_failure_findings("ci/known.txt", "tests/a.py::t\n", "ci/other.txt", "tests/a.py::t\ntests/x.py::y\n")
    assert [(f.test, f.detail) for f in moved] == [("tests/x.py::y", "added to ci/other.txt (the base used ci/known.txt)")]
    assert known_failure_findings("ci/known.txt", "a\n", None, None) == []
    assert known_failure_findings(None, None, "ci/known.txt", "a\n")[0].test == "a"


STRICT = """\
gates:
  lint: {command: [ruff, check, .]}
  mutation: {enabled: true, min_score: 0.9, max_mutants: 40}
holdout: {dir: ../held-out}
"""


def test_every_gate_switched_off_or_loosened_is_a_finding_naming_its_key() -> None:
    loose = ("gates:\n  collect: false\n  regression: false\n  full_suite: false\n  integrity: false\n"
             "  mutation: {enabled: false, min_score: 0.5, max_mutants: 5}\n")
    found = gate_findings(parse_config(STRICT), parse_config(loose))
    assert all(f.kind == "gates-weakened" and f.file == "harness.yaml" for f in found)
    assert {f.test: f.detail for f in found} == {
        "gates.collect": "gates.collect: switched off",
        "gates.regression": "gates.regression: switched off",
        "gates.full_suite": "gates.full_suite: switched off",
        "gates.integrity": "gates.integrity: switched off",
        "gates.lint": "gates.lint: removed",
        "gates.mutation.enabled": "gates.mutation.enabled: switched off",
        "gates.mutation.min_score": "gates.mutation.min_score: lowered from 0.9 to 0.5",
        "gates.mutation.max_mutants": "gates.mutation.max_mutants: lowered from 40 to 5",
        "holdout": "holdout: removed (the held-out acceptance tests no longer run)",
    }


def test_a_loosened_agent_sandbox_is_a_finding_naming_its_key() -> None:
    strict = "agent:\n  sandbox: bwrap\n  network: off\n"
    loose = "agent:\n  sandbox: off\n  network: on\n  writable: [~/.ssh]\n"
    found = gate_findings(parse_config(strict), parse_config(loose))
    assert {f.test: (f.kind, f.detail) for f in found} == {
        "agent.sandbox": ("gates-weakened", "agent.sandbox: loosened from bwrap to off"),
        "agent.network": ("gates-weakened", "agent.network: switched on"),
        "agent.writable": ("gates-weakened", "agent.writable: gains ~/.ssh"),
    }
    assert [f.test for f in gate_findings(parse_config(""), parse_config("agent: {sandbox: off}\n"))] == [
        "agent.sandbox"]
    assert gate_findings(parse_config(loose), parse_config(strict)) == []
    assert gate_findings(parse_config(""), parse_config("agent: {sandbox: bwrap, network: off}\n")) == []


def test_stricter_or_equal_gates_are_no_finding() -> None:
    stricter = STRICT.replace("min_score: 0.9", "min_score: 0.95").replace("max_mutants: 40", "max_mutants: 60")
    assert gate_findings(parse_config(STRICT), parse_config(stricter)) == []
    assert gate_findings(parse_config(""), parse_config(STRICT)) == []


def harness_yaml_findings(old: str, new: str | None) -> list[tuple[str, str, str]]:
    return [(f.kind, f.test, f.detail) for f in selection_findings("harness.yaml", old, new)]


BASE_YAML = "pytest:\n  env:\n    PYTEST_DISABLE_PLUGIN_AUTOLOAD: '1'\n"


@pytest.mark.parametrize("spelling", [["-k", "x"], ["-kx"], ["-k=x"], ["-vk", "x"], ["-vkx"]])
def test_a_keyword_filter_added_to_pytest_command_is_selection_narrowed_however_spelt(spelling: list[str]) -> None:
    command = ", ".join(repr(t) for t in ["{python}", "-m", "pytest", *spelling])
    found = harness_yaml_findings(BASE_YAML, BASE_YAML + f"  command: [{command}]\n")
    assert found == [("selection-narrowed", "pytest.command", "`pytest.command` gains `-k x`, so fewer tests run")]


@pytest.mark.parametrize(("added", "kind", "detail"), [
    ("--deselect tests/a.py::t", "selection-narrowed", "gains `--deselect tests/a.py::t`, so fewer tests run"),
    ("--ignore-glob=*slow*", "selection-narrowed", "gains `--ignore-glob *slow*`, so fewer tests run"),
    ("-m 'not slow'", "selection-narrowed", "gains `-m not slow`, so fewer tests run"),
    ("--last-failed", "selection-narrowed", "gains `--lf`, so fewer tests run"),
    ("--exitfirst", "selection-narrowed", "gains `-x`, so the run stops at the first failure"),
    ("--maxfail=3", "selection-narrowed", "gains `--maxfail 3`, so the run stops after that many failures"),
    ("tests/unit", "selection-narrowed", "gains `tests/unit`, so only that path is collected"),
    ("-o 'addopts=-k fast'", "selection-narrowed", "gains `-k fast`, so fewer tests run"),
    ("-p no:randomly", "gates-weakened", "gains `-p no:randomly`, so the plugin randomly is not loaded"),
    ("-p rewriter", "gates-weakened", "gains `-p rewriter`, which loads the plugin rewriter"),
])
def test_pytest_addopts_set_in_pytest_env_is_judged_by_its_options(added: str, kind: str, detail: str) -> None:
    found = harness_yaml_findings(BASE_YAML, BASE_YAML + f'    PYTEST_ADDOPTS: "-v {added}"\n')
    assert [(k, t) for k, t, _ in found] == [(kind, "pytest.env.PYTEST_ADDOPTS")]
    assert found[0][2].startswith(f"`pytest.env` PYTEST_ADDOPTS {detail}")


def test_variables_pytest_reads_set_or_changed_in_pytest_env_weaken_the_gates() -> None:
    new = ("pytest:\n  env:\n    PYTEST_PLUGINS: rewriter\n    PYTHONPATH: fake\n    PYTHONOPTIMIZE: '1'\n"
           "    PYTEST_TIMEOUT: '1'\n    CALC_FLAVOUR: plain\n")
    found = harness_yaml_findings(BASE_YAML, new)
    assert {(k, t) for k, t, _ in found} == {
        ("gates-weakened", "pytest.env.PYTEST_PLUGINS"), ("gates-weakened", "pytest.env.PYTHONPATH"),
        ("gates-weakened", "pytest.env.PYTHONOPTIMIZE"), ("gates-weakened", "pytest.env.PYTEST_TIMEOUT"),
        ("gates-weakened", "pytest.env.PYTEST_DISABLE_PLUGIN_AUTOLOAD")}  # CALC_FLAVOUR: pytest does not read it
    details = {t: d for _, t, d in found}
    assert details["pytest.env.PYTEST_DISABLE_PLUGIN_AUTOLOAD"] == (
        "`pytest.env` PYTEST_DISABLE_PLUGIN_AUTOLOAD removed (was '1'): it decides whether the installed pytest "
        "plugins load")
    assert details["pytest.env.PYTEST_PLUGINS"].startswith("`pytest.env` PYTEST_PLUGINS set to 'rewriter': ")


def test_the_program_that_starts_pytest_changed_weakens_the_gates_and_harmless_options_are_no_finding() -> None:
    other = ("`pytest.command` starts pytest through `/opt/other/python -m pytest` instead of `{python} -m pytest`, "
             "which decides what runs the tests")
    assert harness_yaml_findings(BASE_YAML, BASE_YAML + "  command: [/opt/other/python, -m, pytest]\n") == [
        ("gates-weakened", "pytest.command", other)]
    harmless = (BASE_YAML + "    PYTEST_ADDOPTS: -ra --tb=short\n    CALC_FLAVOUR: plain\n"
                "  command: ['{python}', '-m', 'pytest', '-v', '-p', 'no:cacheprovider']\n")
    assert harness_yaml_findings(BASE_YAML, harmless) == []
    narrowed = BASE_YAML + "    PYTEST_ADDOPTS: -k x\n"
    assert harness_yaml_findings(narrowed, narrowed + "  timeout_s: 60\n") == []  # already there at the base


def test_harness_yaml_deleted_leaves_the_defaults_and_that_is_judged_too() -> None:
    old = "pytest:\n  command: [uv, run, pytest]\n  env: {PYTEST_DISABLE_PLUGIN_AUTOLOAD: '1'}\n"
    assert {(k, t) for k, t, _ in harness_yaml_findings(old, None)} == {
        ("gates-weakened", "pytest.command"), ("gates-weakened", "pytest.env.PYTEST_DISABLE_PLUGIN_AUTOLOAD")}
    assert selection_findings("sub/harness.yaml", "", "pytest:\n  args: [-k, x]\n") == []  # not the harness's


def test_fewer_reruns_weaken_the_gates_and_a_negative_number_is_refused() -> None:
    found = gate_findings(parse_config("gates:\n  reruns: 2\n"), parse_config("gates:\n  reruns: 0\n"))
    assert [(f.kind, f.test, f.detail) for f in found] == [
        ("gates-weakened", "gates.reruns", "gates.reruns: lowered from 2 to 0")]
    assert parse_config("").gates.reruns == 1
    with pytest.raises(ConfigError, match=r"`gates.reruns`: expected an integer >= 0, got -1"):
        parse_config("gates:\n  reruns: -1\n")
