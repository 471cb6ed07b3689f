"""The cheat corpus (tests/harness/adversary/shapes.py), each shape a real iteration (`harness run --no-agent`):
refused at the stage it names, for the reason it names; the honest fix on every base project is GREEN. The
quick suite runs one shape per family and the honest controls; the rest are marked slow."""
from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest

from tests.conftest import RepoTemplates, write_files
from tests.harness.adversary.corpus import BASES, Shape, build, judge, judge_honest, run
from tests.harness.adversary.shapes import SHAPES

BY_ID = {shape.id: shape for shape in SHAPES}


def _param(shape: Shape) -> object:
    return pytest.param(shape, id=shape.id, marks=() if shape.quick else pytest.mark.slow)


def test_the_corpus_has_thirty_shapes_in_every_family_with_one_quick_shape_each() -> None:
    families = {shape.family for shape in SHAPES}
    assert len(SHAPES) >= 30 and len(families) >= 11
    assert len(BY_ID) == len(SHAPES), "shape ids are unique"
    assert sorted(s.family for s in SHAPES if s.quick) == sorted(families)
    assert {s.base for s in SHAPES} <= set(BASES)


@pytest.mark.parametrize("shape", [_param(shape) for shape in SHAPES])
def test_every_cheat_shape_is_refused_where_it_says(shape: Shape, tmp_path: Path,
                                                    repo_templates: RepoTemplates) -> None:
    verdict = judge(shape, tmp_path, repo_templates)

    assert verdict.code == 1 and verdict.failed_stage == shape.stage, (verdict.failed_stage, verdict.reason,
                                                                       verdict.findings)
    assert verdict.refuses(shape), (verdict.reason, verdict.findings)
    assert verdict.subject == f"[CALC-001] calc gains mul: FAILED at {shape.stage}"
    if shape.findings is not None:
        assert (set(shape.findings) <= set(verdict.findings) if shape.more_findings
                else verdict.findings == list(shape.findings)), verdict.findings
    if shape.reason is not None:
        assert verdict.reason == shape.reason


@pytest.mark.parametrize("base", sorted(BASES))
def test_the_honest_fix_is_green_on_every_base(base: str, tmp_path: Path, repo_templates: RepoTemplates) -> None:
    verdict = judge_honest(BASES[base], tmp_path, repo_templates)

    assert verdict.code == 0 and verdict.failed_stage is None, verdict.reason
    assert verdict.findings == []


@pytest.mark.slow
def test_the_early_exit_s_unreported_test_is_named_in_the_regression_record(tmp_path: Path,
                                                                           repo_templates: RepoTemplates) -> None:
    verdict = judge(BY_ID["early exit: os._exit(0) before a failing test"], tmp_path, repo_templates)

    document = json.loads((verdict.evidence / "gates" / "regression.results.json").read_text())
    assert document["record_problems"][1] == ("1 collected test(s) never reported (first: "
                                              "tests/test_calc.py::test_add), yet pytest exited 0")


@pytest.mark.slow
def test_the_flaky_red_test_s_rerun_is_recorded(tmp_path: Path, repo_templates: RepoTemplates) -> None:
    verdict = judge(BY_ID["flaky proof: a RED test that fails only once"], tmp_path, repo_templates)

    record = json.loads((verdict.evidence / "attempt.json").read_text())
    [selector] = next(s for s in record["stages"] if s["name"] == "red")["selectors"]
    assert selector["reruns"] == [{"returncode": 0, "counts": {"passed": 1}, "log": "red/red.rerun-1.log"}]


@pytest.mark.parametrize("shape", [_param(s) for s in SHAPES if s.caught_by])
def test_a_shape_analysis_cannot_catch_goes_green_without_the_gate_that_catches_it(
        shape: Shape, tmp_path: Path, repo_templates: RepoTemplates) -> None:
    """The exceptions, shown: on the plain project (no held-out test, no mutation gate) the special-cased
    answer is proven GREEN; its own base's configuration is what refuses it (the test above)."""
    verdict = judge(replace(shape, base="calc"), tmp_path, repo_templates)

    assert verdict.code == 0, verdict.reason


def test_the_item_can_allow_a_plugin_it_needs(tmp_path: Path, repo_templates: RepoTemplates) -> None:
    """A plugin that does no harm, allowed by name: recorded, and the proof goes on."""
    repo = build(BASES["calc"], tmp_path / "repo", repo_templates, allow="test-machinery-changed")
    write_files(repo, {"tests/helpers.py": "import pytest\n\n\n@pytest.fixture\ndef two():\n    return 2\n",
                       "tests/conftest.py": "pytest_plugins = ['tests.helpers']\n",
                       "tests/test_mul.py": "from pkg.calc import mul\n\n\ndef test_mul(two):\n"
                                            "    assert mul(two, 3) == 6\n",
                       "pkg/calc.py": "def add(a, b):\n    return a + b\n\n\ndef mul(a, b):\n    return a * b\n"})

    verdict = run(repo)

    assert verdict.code == 0, verdict.reason
    assert [(kind, test) for kind, test, _ in verdict.findings] == [("test-machinery-changed", "tests/conftest.py")]
