"""The gates' settings in harness.yaml: defaults, full values, and errors that name the key."""
from __future__ import annotations

import pytest

from harness.config import Config, parse_config
from harness.config.gates import FullSuiteSettings, HoldoutConfig, MutationSettings
from harness.errors import ConfigError


def test_defaults() -> None:
    gates = Config().gates
    assert gates.integrity is True and gates.full_suite_jobs == "auto"
    assert gates.mutation == MutationSettings(enabled=False, min_score=0.8, max_mutants=40, timeout_s=None, jobs="auto")
    assert Config().holdout is None and Config().concurrent_stages == "auto"


def test_full_values_are_read() -> None:
    config = parse_config(
        "gates:\n  integrity: false\n  full_suite: {enabled: true, args: [-q], jobs: 3}\n"
        "  mutation: {enabled: true, min_score: 0.9, max_mutants: 12, timeout_s: 30, jobs: 2}\n"
        "holdout: {dir: ../held}\nconcurrent_stages: false\n")
    assert config.gates.integrity is False
    assert (config.gates.full_suite, config.gates.full_suite_args, config.gates.full_suite_jobs) == (True, ("-q",), 3)
    assert config.gates.mutation == MutationSettings(True, 0.9, 12, 30, 2)
    assert config.holdout == HoldoutConfig("../held") and config.concurrent_stages is False
    for value, setting in (("true", True), ("false", False), ("auto", "auto")):
        assert parse_config(f"concurrent_stages: {value}\n").concurrent_stages == setting


def test_the_switch_form_of_full_suite_keeps_working() -> None:
    config = parse_config("gates:\n  full_suite: false\n  full_suite_args: [-x]\n")
    assert (config.gates.full_suite, config.gates.full_suite_args, config.gates.full_suite_jobs) == (False, ("-x",), "auto")
    assert FullSuiteSettings(True, (), "auto").jobs == "auto"


@pytest.mark.parametrize(("text", "needles"), [
    ("gates:\n  mutation: {min_score: 1.5}\n", ["gates.mutation.min_score", "a number from 0 to 1"]),
    ("gates:\n  mutation: {max_mutants: 0}\n", ["gates.mutation.max_mutants", ">= 1"]),
    ("gates:\n  mutation: {jobs: many}\n", ["gates.mutation.jobs", '"auto"']),
    ("gates:\n  mutation: {min_scor: 0.5}\n", ["gates.mutation.min_scor", "did you mean `gates.mutation.min_score`"]),
    ("gates:\n  full_suite: {jobs: 0}\n", ["gates.full_suite.jobs"]),
    ("gates:\n  full_suite: {args: [-q]}\n  full_suite_args: [-x]\n", ["give the full suite's arguments once"]),
    ("gates:\n  integrity: yes please\n", ["gates.integrity", "true or false"]),
    ("holdout: {}\n", ["`holdout` needs a `dir`"]),
    ("holdout: {dir: ''}\n", ["holdout.dir", "non-empty"]),
    ("concurrent_stages: 2\n", ["concurrent_stages", 'true, false or "auto"']),
    ("concurrent_stages: sometimes\n", ["concurrent_stages", 'true, false or "auto"', "'sometimes'"]),
])
def test_bad_values_name_the_key(text: str, needles: list[str]) -> None:
    with pytest.raises(ConfigError) as err:
        parse_config(text, "harness.yaml")
    for needle in needles:
        assert needle in str(err.value)
