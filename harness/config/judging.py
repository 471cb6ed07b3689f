"""Which harness.yaml judges a change: the base commit's, never the change's own.

A change to harness.yaml takes effect once it is committed, and is itself judged by the integrity gate
(harness.gates.integrity). So the settings that decide how a change is proven, and which files are the
harness's rather than the change's, come from the harness.yaml of the base commit B: `pytest`, `gates`,
`known_failures`, `test_globs`, `ignore`, `caps`, `holdout`, `concurrent_stages`, `max_attempts`, and
`ledger`, `evidence_root` and `selectors` (the harness owns those paths and cuts them out of every change:
taken from the change, they would let it exempt its own files from the proof). B is HEAD for `harness run`
and `harness loop`, `--base` for `harness verify`, a worker's start for a parallel worker, and the head a
change is merged onto for the merged-tree gates. Where B has no harness.yaml, the defaults judge, and the
evidence says so.

The operator's settings come from the working tree's harness.yaml (the one `open_workspace` read): `agent`
(what makes the change, before anything is proven), `commit` (the identity the harness records under),
`push`, `workers` and `planner` (what proposes items, `harness plan`). None of them decides what a proof
holds.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, replace

import git

from harness.config.load import parse_config
from harness.config.model import CONFIG_FILENAME, Config
from harness.errors import ConfigError
from harness.gitops import blob_text

OPERATOR_SETTINGS = ("agent", "commit", "push", "leases", "workers", "planner")


def config_at(repo: git.Repo, rev: str) -> Config | None:
    """harness.yaml as commit `rev` has it; None where it has none. ConfigError where it does not parse."""
    text = blob_text(repo, rev, CONFIG_FILENAME)
    if text is None:
        return None
    source = f"{CONFIG_FILENAME} at {rev[:10]}"
    try:
        return parse_config(text, source)
    except ConfigError as exc:
        raise ConfigError(f"{exc}\nA change is judged by its base commit's {CONFIG_FILENAME} "
                          f"(docs/specs/evidence.md), and the one at {rev[:10]} cannot be read by this harness: "
                          f"commit a fix to {CONFIG_FILENAME} by itself first (git commit {CONFIG_FILENAME}), "
                          "or prove from a base whose file it reads") from None


@dataclass(frozen=True)
class JudgingSettings:
    """The settings an attempt runs under (`config`) and where they came from: the commit whose harness.yaml
    judged (`commit`), whether it had one (`found`: False means the defaults judged), and the judging
    settings the working tree's harness.yaml sets otherwise (`not_applied`, as `pytest.command`,
    `gates.full_suite_args`, `known_failures`: they take effect once committed)."""

    config: Config
    commit: str
    found: bool
    not_applied: tuple[str, ...] = ()

    def record(self) -> dict:
        """attempt.json's `settings` (docs/specs/evidence.md)."""
        return {"harness_yaml_from": self.commit, "harness_yaml_found": self.found,
                "working_tree_differs": bool(self.not_applied),
                "working_tree_not_applied": list(self.not_applied),
                "from_working_tree": list(OPERATOR_SETTINGS)}


def _differences(base: Config, working: Config) -> list[str]:
    """Dotted names of the judging settings whose values differ (one level into nested records)."""
    names: list[str] = []
    for top in dataclasses.fields(Config):
        if top.name in OPERATOR_SETTINGS or not top.compare:
            continue
        old, new = getattr(base, top.name), getattr(working, top.name)
        if old == new:
            continue
        if dataclasses.is_dataclass(old) and dataclasses.is_dataclass(new) and type(old) is type(new):
            names += [f"{top.name}.{f.name}" for f in dataclasses.fields(old)
                      if getattr(old, f.name) != getattr(new, f.name)]
        else:
            names.append(top.name)
    return names


def judging_settings(repo: git.Repo, base: str, working: Config) -> JudgingSettings:
    """The settings a change with base commit `base` is proven under: harness.yaml at `base` (its defaults
    where it has none) with the operator's settings of `working`, the working tree's harness.yaml."""
    at_base = config_at(repo, base)
    judged = at_base if at_base is not None else Config(source=f"the defaults ({base[:10]} has no {CONFIG_FILENAME})")
    config = replace(judged, **{name: getattr(working, name) for name in OPERATOR_SETTINGS})
    return JudgingSettings(config, base, at_base is not None, tuple(_differences(judged, working)))
