"""`harness.yaml` as frozen dataclasses: every setting of the harness, with its default.

The gates' settings (mutation, holdout, full-suite jobs) live in harness.config.gates; harness.config.load
reads and validates the file into these records.
"""
from __future__ import annotations

import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

import harness.config.gates as gate_settings
from harness.config.planner import PlannerConfig

CONFIG_FILENAME = "harness.yaml"
PYTHON_PLACEHOLDER = "{python}"
AGENT_PHASES = ("red", "green")
SANDBOX_SETTINGS = ("auto", "bwrap", "off")


@dataclass(frozen=True)
class PytestConfig:
    """How pytest is started. `command` may contain "{python}": the harness's own interpreter."""

    command: tuple[str, ...] = (PYTHON_PLACEHOLDER, "-m", "pytest")
    args: tuple[str, ...] = ()
    env: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    timeout_s: int = 1800
    # this interpreter's `-m pytest` starts as a fork of a server that imported pytest (harness.pytest_run.warm)
    warm_start: bool = True

    def argv(self, python: str | None = None) -> list[str]:
        """`command` + `args` with "{python}" replaced by `python` (default: this interpreter)."""
        interpreter = python or sys.executable
        return [part.replace(PYTHON_PLACEHOLDER, interpreter) for part in (*self.command, *self.args)]


@dataclass(frozen=True)
class LintSettings:
    command: tuple[str, ...]


@dataclass(frozen=True)
class GatesConfig:
    collect: bool = True
    regression: bool = True
    full_suite: bool = True
    full_suite_args: tuple[str, ...] = ()
    lint: LintSettings | None = None
    full_suite_jobs: gate_settings.Jobs = gate_settings.AUTO
    integrity: bool = True
    mutation: gate_settings.MutationSettings = field(default_factory=gate_settings.MutationSettings)
    reruns: int = 1  # a proven RED or GREEN selector runs this many more times, unchanged (flaky: not proven)


@dataclass(frozen=True)
class CapsConfig:
    changed_file_bytes: int = 5_000_000
    evidence_file_bytes: int = 1_000_000


@dataclass(frozen=True)
class CommitConfig:
    name: str = "ptycho-harness"
    email: str = "harness@localhost"

    @property
    def identity(self) -> tuple[str, str]:
        return (self.name, self.email)


@dataclass(frozen=True)
class AgentConfig:
    """The external agent. With `shell: true`, `command` is a single string handed to /bin/sh -c.

    `preset` names a preset (harness.agent.presets) whose argv, timeout and environment fill in what
    harness.yaml does not set; `command_from_preset` says `command` is the preset's argv (no
    `agent.command` was given). `env` is added to the agent's environment (the HARNESS_* variables win)."""

    command: tuple[str, ...] | None = None
    shell: bool = False
    timeout_s: int = 3600
    prompt_template: str | None = None
    phases: tuple[str, ...] | None = None
    findings: str | None = "docs/findings.md"  # the prompt quotes its entries that name the item; None: none
    preset: str | None = None
    command_from_preset: bool = False
    env: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    sandbox: str = "auto"  # auto | bwrap | off: where the agent runs (harness.agent.sandbox)
    network: bool = True  # off: the sandbox has no network
    writable: tuple[str, ...] = ()  # paths the agent may write besides its tree (its own state, e.g. ~/.codex)


@dataclass(frozen=True)
class PushConfig:
    remote: str
    branch: str


@dataclass(frozen=True)
class LeasesConfig:
    """Remote leases (harness.parallel.remote): with `push` configured and `enabled`, the serial loop takes
    `refs/harness/lease/<ITEM>` on the push remote before an attempt; a lease whose heartbeat is older than
    `ttl` seconds may be taken over. The holder renews its heartbeat every ttl/3 seconds."""

    enabled: bool = False
    ttl: int = 600


@dataclass(frozen=True)
class ExtraSelector:
    selector: str
    name: str | None = None
    groups: tuple[str, ...] = ()


@dataclass(frozen=True)
class SelectorsConfig:
    extra: tuple[ExtraSelector, ...] = ()
    history: str = "plans/selectors/history.jsonl"


@dataclass(frozen=True)
class Config:
    """The whole of harness.yaml. Paths are repo-relative posix strings."""

    ledger: str = "docs/fix_plan.md"
    evidence_root: str = "plans/active"
    test_globs: tuple[str, ...] = ("tests/**", "**/test_*.py", "**/*_test.py", "**/conftest.py")
    pytest: PytestConfig = field(default_factory=PytestConfig)
    known_failures: str | None = "ci/known_failures.txt"
    gates: GatesConfig = field(default_factory=GatesConfig)
    max_attempts: int = 3
    workers: int = 1
    caps: CapsConfig = field(default_factory=CapsConfig)
    ignore: tuple[str, ...] = ()
    commit: CommitConfig = field(default_factory=CommitConfig)
    agent: AgentConfig = field(default_factory=AgentConfig)
    push: PushConfig | None = None
    leases: LeasesConfig = field(default_factory=LeasesConfig)
    selectors: SelectorsConfig = field(default_factory=SelectorsConfig)
    holdout: gate_settings.HoldoutConfig | None = None
    concurrent_stages: bool | str = gate_settings.AUTO  # true, false or "auto" (harness.proof.stage_runner)
    planner: PlannerConfig | None = None  # `harness plan`'s planner (harness.config.planner)
    source: str = field(default="<defaults>", compare=False)
