"""The settings of the gates that keep a proof honest, read from harness.yaml by harness.config.load.

    gates.integrity      true | false: the test-integrity gate (docs/specs/evidence.md, stage `integrity`)
    gates.mutation       {enabled, min_score, max_mutants, timeout_s, jobs}: mutation strength on the
                         changed lines (stage `mutation`); on for items with `- Mutation: required`
    gates.full_suite     true | false | {enabled, args, jobs}: `jobs: auto` runs the suite with
                         pytest-xdist when it is installed
    holdout              {dir: PATH}: held-out acceptance tests, outside the repository (stage `acceptance`)

Each parser takes harness.config.reader's Reader (the key path and the file name go into every error).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from harness.config.reader import Reader
from harness.errors import ConfigError

AUTO = "auto"
Jobs = int | str  # a number of processes, or "auto"


@dataclass(frozen=True)
class MutationSettings:
    """`timeout_s` None: each mutant gets 10 s plus four times the GREEN stage's wall time. `jobs`: mutants
    run at once, each in its own copy of the tree ("auto": one per CPU)."""

    enabled: bool = False
    min_score: float = 0.8
    max_mutants: int = 40
    timeout_s: int | None = None
    jobs: Jobs = AUTO


@dataclass(frozen=True)
class HoldoutConfig:
    """`dir` as written: absolute, or relative to the repository root (it must lie outside it)."""

    dir: str


@dataclass(frozen=True)
class FullSuiteSettings:
    enabled: bool
    args: tuple[str, ...]
    jobs: Jobs


def jobs_value(r: Reader, value: Any, key: str) -> Jobs:
    if value == AUTO:
        return AUTO
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        r.type_error(key, 'an integer >= 1 or "auto"', value)
    return value


def parse_mutation(r: Reader, value: Any) -> MutationSettings:
    key = "gates.mutation"
    m = r.section(value, key, ("enabled", "min_score", "max_mutants", "timeout_s", "jobs"))
    d = MutationSettings()
    score = m.get("min_score", d.min_score)
    if isinstance(score, bool) or not isinstance(score, int | float) or not 0 <= score <= 1:
        r.type_error(f"{key}.min_score", "a number from 0 to 1 (killed / (killed + survived))", score)
    timeout = m.get("timeout_s")
    return MutationSettings(
        enabled=r.boolean(m.get("enabled", d.enabled), f"{key}.enabled"),
        min_score=float(score),
        max_mutants=r.integer(m.get("max_mutants", d.max_mutants), f"{key}.max_mutants"),
        timeout_s=None if timeout is None else r.integer(timeout, f"{key}.timeout_s"),
        jobs=jobs_value(r, m.get("jobs", d.jobs), f"{key}.jobs"),
    )


def parse_holdout(r: Reader, value: Any) -> HoldoutConfig:
    m = r.section(value, "holdout", ("dir",))
    if "dir" not in m:
        raise ConfigError(f"{r.source}: `holdout` needs a `dir`: the folder of held-out tests, outside the "
                          "repository (absolute, or relative to the repository root, e.g. ../holdout)")
    return HoldoutConfig(dir=r.nonempty_str(m["dir"], "holdout.dir"))


def parse_full_suite(r: Reader, value: Any, args: Any) -> FullSuiteSettings:
    """`full_suite` as a switch (with `full_suite_args` beside it) or as a mapping holding its args."""
    if isinstance(value, bool):
        return FullSuiteSettings(value, r.str_list(args if args is not None else [], "gates.full_suite_args"),
                                 AUTO)
    m = r.section(value, "gates.full_suite", ("enabled", "args", "jobs"))
    if args is not None and "args" in m:
        raise ConfigError(f"{r.source}: give the full suite's arguments once: `gates.full_suite.args` or "
                          "`gates.full_suite_args`, not both")
    return FullSuiteSettings(
        enabled=r.boolean(m.get("enabled", True), "gates.full_suite.enabled"),
        args=r.str_list(m.get("args", args if args is not None else []), "gates.full_suite.args"),
        jobs=jobs_value(r, m.get("jobs", AUTO), "gates.full_suite.jobs"),
    )
