"""pytest's configuration files read as pytest 9 reads them; every setting judged by what it does; a new file
that takes over from another."""
from __future__ import annotations

import pytest

from harness.gates.integrity.pytest_config import effective_file, option_findings, options_of, takeovers


@pytest.mark.parametrize(("name", "text", "options"), [
    ("pytest.ini", "", {}),  # pytest.ini is the configuration even when empty
    ("pytest.ini", "[pytest]\naddopts = -q\n", {"addopts": "-q"}),
    (".pytest.ini", "[other]\nx = 1\n", {}),
    ("tox.ini", "[tox]\nenvlist = py311\n", None),
    ("tox.ini", "[pytest]\nxfail_strict = true\n", {"xfail_strict": "true"}),
    ("setup.cfg", "[tool:pytest]\npythonpath = src\n", {"pythonpath": "src"}),
    ("setup.cfg", "[metadata]\nname = x\n", None),
    ("pyproject.toml", "[project]\nname = 'x'\n", None),
    ("pyproject.toml", '[tool.pytest.ini_options]\naddopts = "-q"\n', {"addopts": "-q"}),
    ("pyproject.toml", '[tool.pytest]\naddopts = ["-p", "x"]\n', {"addopts": ["-p", "x"]}),
    ("pytest.toml", "", {}),
    ("pytest.toml", '[pytest]\nusefixtures = ["fake"]\n', {"usefixtures": ["fake"]}),
    ("pyproject.toml", "not = [toml", None),
])
def test_options_are_read_from_every_file_pytest_takes_its_configuration_from(name: str, text: str,
                                                                                options: dict | None) -> None:
    assert options_of(name, text) == options


def judged(old: dict | None, new: dict | None) -> list[tuple[str, str]]:
    found: list[tuple[str, str]] = []
    option_findings(old, new, lambda where, detail, kind="", test=None: found.append((kind, f"{where} {detail}")))
    return found


def test_every_setting_that_changes_how_tests_run_is_a_finding_and_the_harmless_ones_are_free() -> None:
    assert judged({}, {"pythonpath": "fakes", "usefixtures": ["replace_mul"], "env": "CALC=1"}) == [
        ("test-machinery-changed", "env set to `CALC=1`: a setting pytest or a plugin reads while it runs the tests"),
        ("test-machinery-changed", ("pythonpath set to `fakes`: folders put first on sys.path, where a folder can "
                                    "stand in for the code under test")),
        ("test-machinery-changed", ("usefixtures set to `replace_mul`: fixtures every test uses, which can replace "
                                    "the code under test"))]
    assert judged({"xfail_strict": "true"}, {"xfail_strict": False}) == [
        ("test-machinery-changed", ("xfail_strict switched off (was true), so a test marked xfail that passes no "
                                    "longer fails"))]
    assert judged({"filterwarnings": ["error", "ignore::UserWarning"]}, {"filterwarnings": ["ignore::DeprecationWarning"]}) == [
        ("test-machinery-changed", "filterwarnings loses `error`, so those warnings no longer fail a test"),
        ("test-machinery-changed", ("filterwarnings gains `ignore::DeprecationWarning`, which decides which warnings "
                                    "fail a test"))]
    assert judged({"addopts": "-q"}, {"addopts": ["-q", "-p", "cheat"], "testpaths": "tests/unit"}) == [
        ("gates-weakened", ("addopts gains `-p cheat`, which loads the plugin cheat: a plugin can deselect tests or "
                            "rewrite their outcomes")),
        ("selection-narrowed", "testpaths changed from [] to ['tests/unit'], which decides what is collected")]
    free = {"markers": "slow: slow tests", "log_cli": "true", "junit_family": "xunit2", "minversion": "8",
            "console_output_style": "count", "xfail_strict": "true", "filterwarnings": "error"}
    assert judged({}, free) == []  # stricter, or nothing to do with outcomes
    assert judged({"pythonpath": "src"}, None) == [
        ("test-machinery-changed", ("pythonpath removed (was `src`): folders put first on sys.path, where a folder can "
                                    "stand in for the code under test"))]


TREE = {"pyproject.toml": '[tool.pytest.ini_options]\nfilterwarnings = ["error"]\n', "tests/a/x.txt": ""}


def reader(files: dict[str, str]):
    return files.get


def test_the_nearest_file_with_pytest_settings_wins_in_pytest_s_order() -> None:
    assert effective_file("tests/a", reader(TREE)) == "pyproject.toml"
    assert effective_file("tests/a", reader({**TREE, "tests/tox.ini": "[pytest]\n"})) == "tests/tox.ini"
    assert effective_file("tests/a", reader({**TREE, "tests/tox.ini": "[tox]\n"})) == "pyproject.toml"
    assert effective_file("", reader({**TREE, "pytest.ini": ""})) == "pytest.ini"  # before pyproject.toml
    assert effective_file("tests", reader({})) is None


def test_a_file_that_takes_over_from_another_is_named_with_both() -> None:
    new = {**TREE, "tests/pytest.ini": "[pytest]\n"}
    assert takeovers(["tests/pytest.ini"], reader(TREE), reader(new)) == [(
        "tests/pytest.ini", ("pytest now reads tests/pytest.ini instead of pyproject.toml for the tests in tests/: "
        "none of pyproject.toml's settings apply to them any more"))]
    assert takeovers(["pytest.ini"], reader(TREE), reader({**TREE, "pytest.ini": ""})) == [(
        "pytest.ini", ("pytest now reads pytest.ini instead of pyproject.toml for the tests: none of "
                       "pyproject.toml's settings apply to them any more"))]
    assert takeovers(["tests/setup.cfg"], reader({}), reader({"tests/setup.cfg": "[tool:pytest]\n"})) == [(
        "tests/setup.cfg", ("pytest now reads tests/setup.cfg for the tests in tests/, which makes tests/ their "
                            "rootdir"))]
    assert takeovers(["pytest.ini"], reader({"pytest.ini": ""}), reader({})) == [(
        "pytest.ini", "pytest no longer finds a configuration file for the tests (it read pytest.ini)")]


def test_a_first_configuration_at_the_root_or_an_edit_of_the_same_file_takes_over_nothing() -> None:
    assert takeovers(["pytest.ini"], reader({}), reader({"pytest.ini": "[pytest]\naddopts = -q\n"})) == []
    edited = {"pyproject.toml": '[tool.pytest.ini_options]\naddopts = "-q"\n'}
    assert takeovers(["pyproject.toml"], reader(TREE), reader(edited)) == []
    assert takeovers(["tests/tox.ini"], reader(TREE), reader({**TREE, "tests/tox.ini": "[tox]\n"})) == []
