"""`harness.yaml` at the repository root -> frozen dataclasses (harness.config.model), validated at load.

Every key is optional; a missing file means all defaults. Unknown keys are rejected with the full key
path (`gates.ful_suite`) and a "did you mean" suggestion, because a misspelt key silently ignored would
change what the harness proves without anyone noticing.
"""
from __future__ import annotations

from pathlib import Path
from types import MappingProxyType
from typing import Any

import yaml

import harness.config.gates as gate_settings
from harness.agent.presets import PRESETS, AgentPreset, unknown_preset_hint
from harness.config.model import (
    AGENT_PHASES,
    CONFIG_FILENAME,
    SANDBOX_SETTINGS,
    AgentConfig,
    CapsConfig,
    CommitConfig,
    Config,
    ExtraSelector,
    GatesConfig,
    LeasesConfig,
    LintSettings,
    PushConfig,
    PytestConfig,
    SelectorsConfig,
)
from harness.config.planner import parse_planner
from harness.config.reader import Reader, UniqueKeyLoader
from harness.errors import ConfigError


def load_config(repo_root: Path) -> Config:
    """Read `<repo_root>/harness.yaml`; a missing file gives the defaults."""
    path = Path(repo_root) / CONFIG_FILENAME
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return Config(source=str(path))
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot be read ({exc}); fix its permissions or encoding (UTF-8)") from exc
    return parse_config(text, str(path))


def parse_config(text: str, source: str = CONFIG_FILENAME) -> Config:
    """Parse and validate the YAML text of a harness.yaml; `source` names it in error messages."""
    try:
        data = yaml.load(text, Loader=UniqueKeyLoader)  # a SafeLoader subclass
    except yaml.YAMLError as exc:
        raise ConfigError(f"{source}: not valid YAML: {exc}\nFix the syntax (indentation, quotes).") from exc
    if data is None:
        return Config(source=source)
    r = Reader(source)
    top = r.mapping(data, "")
    r.keys(top, "", _TOP_KEYS)
    d = Config()
    return Config(
        ledger=r.rel_path(top.get("ledger", d.ledger), "ledger"),
        evidence_root=r.rel_path(top.get("evidence_root", d.evidence_root), "evidence_root"),
        test_globs=r.str_list(top.get("test_globs", list(d.test_globs)), "test_globs"),
        pytest=_pytest(r, top.get("pytest", {})),
        known_failures=r.optional(top.get("known_failures", d.known_failures), "known_failures", r.rel_path),
        gates=_gates(r, top.get("gates", {})),
        max_attempts=r.integer(top.get("max_attempts", d.max_attempts), "max_attempts"),
        workers=r.integer(top.get("workers", d.workers), "workers"),
        caps=_caps(r, top.get("caps", {})),
        ignore=r.str_list(top.get("ignore", []), "ignore"),
        commit=_commit(r, top.get("commit", {})),
        agent=_agent(r, top.get("agent", {})),
        push=r.optional(top.get("push"), "push", lambda v, k: _push(r, v)),
        leases=_leases(r, top.get("leases", {})),
        selectors=_selectors(r, top.get("selectors", {})),
        holdout=r.optional(top.get("holdout"), "holdout", lambda v, k: gate_settings.parse_holdout(r, v)),
        concurrent_stages=_stages_setting(r, top.get("concurrent_stages", d.concurrent_stages)),
        planner=r.optional(top.get("planner"), "planner", lambda v, k: parse_planner(r, v)),
        source=source,
    )


_TOP_KEYS = (
    "ledger", "evidence_root", "test_globs", "pytest", "known_failures", "gates", "max_attempts", "caps",
    "ignore", "commit", "agent", "push", "leases", "selectors", "workers", "holdout", "concurrent_stages",
    "planner",
)


def _stages_setting(r: Reader, value: Any) -> bool | str:
    if not isinstance(value, bool) and value != gate_settings.AUTO:
        r.type_error("concurrent_stages", 'true, false or "auto"', value)
    return value


def _pytest(r: Reader, value: Any) -> PytestConfig:
    m = r.section(value, "pytest", ("command", "args", "env", "timeout_s", "warm_start"))
    d = PytestConfig()
    return PytestConfig(
        command=r.argv(m.get("command", list(d.command)), "pytest.command"),
        args=r.str_list(m.get("args", []), "pytest.args"),
        env=MappingProxyType(r.str_map(m.get("env", {}), "pytest.env")),
        timeout_s=r.integer(m.get("timeout_s", d.timeout_s), "pytest.timeout_s"),
        warm_start=r.boolean(m.get("warm_start", d.warm_start), "pytest.warm_start"),
    )


def _gates(r: Reader, value: Any) -> GatesConfig:
    m = r.section(value, "gates", ("collect", "regression", "full_suite", "full_suite_args", "lint",
                                   "integrity", "mutation", "reruns"))

    def lint(v: Any, key: str) -> LintSettings:
        lm = r.section(v, key, ("command",))
        if "command" not in lm:
            raise ConfigError(f"{r.source}: `{key}` needs a `command` (an argv list, e.g. [ruff, check, .])")
        return LintSettings(command=r.argv(lm["command"], f"{key}.command"))

    full_suite = gate_settings.parse_full_suite(r, m.get("full_suite", True), m.get("full_suite_args"))
    return GatesConfig(
        collect=r.boolean(m.get("collect", True), "gates.collect"),
        regression=r.boolean(m.get("regression", True), "gates.regression"),
        full_suite=full_suite.enabled,
        full_suite_args=full_suite.args,
        lint=r.optional(m.get("lint"), "gates.lint", lint),
        full_suite_jobs=full_suite.jobs,
        integrity=r.boolean(m.get("integrity", True), "gates.integrity"),
        mutation=gate_settings.parse_mutation(r, m.get("mutation", {})),
        reruns=r.integer(m.get("reruns", GatesConfig().reruns), "gates.reruns", minimum=0),
    )


def _caps(r: Reader, value: Any) -> CapsConfig:
    m = r.section(value, "caps", ("changed_file_bytes", "evidence_file_bytes"))
    d = CapsConfig()
    return CapsConfig(
        changed_file_bytes=r.integer(
            m.get("changed_file_bytes", d.changed_file_bytes), "caps.changed_file_bytes"
        ),
        evidence_file_bytes=r.integer(
            m.get("evidence_file_bytes", d.evidence_file_bytes), "caps.evidence_file_bytes"
        ),
    )


def _commit(r: Reader, value: Any) -> CommitConfig:
    m = r.section(value, "commit", ("name", "email"))
    d = CommitConfig()
    return CommitConfig(
        name=r.nonempty_str(m.get("name", d.name), "commit.name"),
        email=r.nonempty_str(m.get("email", d.email), "commit.email"),
    )


def _agent(r: Reader, value: Any) -> AgentConfig:
    m = r.section(value, "agent", ("preset", "command", "shell", "timeout_s", "env", "prompt_template", "phases",
                                   "findings", "sandbox", "network", "writable"))
    d = AgentConfig()
    preset = r.optional(m.get("preset"), "agent.preset", lambda v, k: _preset(r, v, k))
    shell = r.boolean(m.get("shell", d.shell), "agent.shell")
    command = m.get("command")
    if command is None:
        if shell and preset is not None:
            raise ConfigError(f"{r.source}: `agent.shell`: true needs `agent.command` (one string for /bin/sh -c); "
                              f"the preset {preset.name!r} is an argv list: drop `shell`, or give the command")
        argv = preset.argv if preset is not None else None
    elif shell and isinstance(command, str):
        argv = (r.nonempty_str(command, "agent.command"),)
    else:
        argv = r.argv(command, "agent.command")
        if shell and len(argv) != 1:
            raise ConfigError(
                f"{r.source}: `agent.command`: with `agent.shell: true` give one command string "
                f"for /bin/sh -c, got {len(argv)} items {list(argv)!r}"
            )
    timeout_s = preset.timeout_s if preset is not None else d.timeout_s
    return AgentConfig(
        command=argv,
        shell=shell,
        timeout_s=r.integer(m.get("timeout_s", timeout_s), "agent.timeout_s"),
        prompt_template=r.optional(m.get("prompt_template"), "agent.prompt_template", r.rel_path),
        phases=r.optional(m.get("phases"), "agent.phases", lambda v, k: _phases(r, v, k)),
        findings=r.optional(m.get("findings", d.findings), "agent.findings", r.rel_path),
        preset=preset.name if preset is not None else None,
        command_from_preset=preset is not None and command is None,
        env=MappingProxyType({**(preset.env if preset is not None else {}),
                              **r.str_map(m.get("env", {}), "agent.env")}),
        sandbox=_switch(r, m.get("sandbox", d.sandbox), "agent.sandbox", SANDBOX_SETTINGS),
        network=_switch(r, m.get("network", d.network), "agent.network", ("on", "off")) == "on",
        writable=tuple(r.nonempty_str(p, f"agent.writable[{i}]")
                       for i, p in enumerate(r.str_list(m.get("writable", list(d.writable)), "agent.writable"))),
    )


def _preset(r: Reader, value: Any, key: str) -> AgentPreset:
    name = r.nonempty_str(value, key)
    if name not in PRESETS:
        raise ConfigError(f"{r.source}: `{key}`: unknown preset {name!r}{unknown_preset_hint(name)}\n"
                          f"The presets are {', '.join(PRESETS)} (README, \"Agent presets\"); for any other "
                          "agent give `agent.command` (an argv list) instead")
    return PRESETS[name]


def _switch(r: Reader, value: Any, key: str, choices: tuple[str, ...]) -> str:
    """One of `choices`; YAML reads a bare `on`/`off` as true/false, so those count as "on"/"off"."""
    if isinstance(value, bool) and ("on" if value else "off") in choices:
        value = "on" if value else "off"
    if value not in choices:
        r.type_error(key, ", ".join(choices[:-1]) + " or " + choices[-1], value)
    return value


def _phases(r: Reader, value: Any, key: str) -> tuple[str, ...]:
    phases = r.str_list(value, key)
    bad = [p for p in phases if p not in AGENT_PHASES]
    if bad or not phases or len(set(phases)) != len(phases):
        raise ConfigError(
            f"{r.source}: `{key}`: expected a list of distinct phases from {list(AGENT_PHASES)} "
            f"(or null), got {list(phases)!r}"
        )
    return phases


def _push(r: Reader, value: Any) -> PushConfig:
    m = r.section(value, "push", ("remote", "branch"))
    missing = [k for k in ("remote", "branch") if k not in m]
    if missing:
        raise ConfigError(
            f"{r.source}: `push` needs both `remote` and `branch` (missing: {', '.join(missing)}), "
            f"e.g. {{remote: origin, branch: main}}; or set `push: null`"
        )
    return PushConfig(
        remote=r.nonempty_str(m["remote"], "push.remote"), branch=r.nonempty_str(m["branch"], "push.branch")
    )


def _leases(r: Reader, value: Any) -> LeasesConfig:
    m = r.section(value, "leases", ("enabled", "ttl"))
    d = LeasesConfig()
    return LeasesConfig(enabled=r.boolean(m.get("enabled", d.enabled), "leases.enabled"),
                        ttl=r.integer(m.get("ttl", d.ttl), "leases.ttl", minimum=3))


def _selectors(r: Reader, value: Any) -> SelectorsConfig:
    m = r.section(value, "selectors", ("extra", "history"))
    extra_raw = m.get("extra", [])
    if not isinstance(extra_raw, list):
        r.type_error("selectors.extra", "a list of {selector, name, groups} mappings", extra_raw)
    extra = []
    for i, item in enumerate(extra_raw):
        key = f"selectors.extra[{i}]"
        em = r.section(item, key, ("selector", "name", "groups"))
        if "selector" not in em:
            raise ConfigError(f"{r.source}: `{key}` needs a `selector` (a pytest node id or path)")
        extra.append(
            ExtraSelector(
                selector=r.nonempty_str(em["selector"], f"{key}.selector"),
                name=r.optional(em.get("name"), f"{key}.name", r.nonempty_str),
                groups=r.str_list(em.get("groups", []), f"{key}.groups"),
            )
        )
    return SelectorsConfig(
        extra=tuple(extra),
        history=r.rel_path(m.get("history", SelectorsConfig().history), "selectors.history"),
    )
