"""`harness.yaml` at the repository root -> frozen dataclasses, validated at load.

Every key is optional; a missing file means all defaults. Unknown keys are rejected with the full key
path (`gates.ful_suite`) and a "did you mean" suggestion, because a misspelt key silently ignored would
change what the harness proves without anyone noticing.
"""
from __future__ import annotations

import difflib
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from types import MappingProxyType
from typing import Any

import yaml

from harness import config_gates
from harness.errors import ConfigError

CONFIG_FILENAME = "harness.yaml"
PYTHON_PLACEHOLDER = "{python}"
AGENT_PHASES = ("red", "green")


@dataclass(frozen=True)
class PytestConfig:
    """How pytest is started. `command` may contain "{python}": the harness's own interpreter."""

    command: tuple[str, ...] = (PYTHON_PLACEHOLDER, "-m", "pytest")
    args: tuple[str, ...] = ()
    env: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    timeout_s: int = 1800

    def argv(self, python: str | None = None) -> list[str]:
        """`command` + `args` with "{python}" replaced by `python` (default: this interpreter)."""
        interpreter = python or sys.executable
        return [part.replace(PYTHON_PLACEHOLDER, interpreter) for part in (*self.command, *self.args)]


@dataclass(frozen=True)
class LintGate:
    command: tuple[str, ...]


@dataclass(frozen=True)
class GatesConfig:
    collect: bool = True
    regression: bool = True
    full_suite: bool = True
    full_suite_args: tuple[str, ...] = ()
    lint: LintGate | None = None
    full_suite_jobs: config_gates.Jobs = config_gates.AUTO
    integrity: bool = True
    mutation: config_gates.MutationGate = field(default_factory=config_gates.MutationGate)


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
    """The external agent. With `shell: true`, `command` is a single string handed to /bin/sh -c."""

    command: tuple[str, ...] | None = None
    shell: bool = False
    timeout_s: int = 3600
    prompt_template: str | None = None
    phases: tuple[str, ...] | None = None


@dataclass(frozen=True)
class PushConfig:
    remote: str
    branch: str


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
    selectors: SelectorsConfig = field(default_factory=SelectorsConfig)
    holdout: config_gates.HoldoutConfig | None = None
    concurrent_stages: bool = True
    source: str = field(default="<defaults>", compare=False)


DEFAULT_CONFIG_YAML = """\
# harness.yaml: configuration of the TDD loop harness. Every key is optional; the values below are
# the defaults. Unknown keys are rejected. Paths are relative to the repository root.

ledger: docs/fix_plan.md            # the fix plan: items, status, attempts
evidence_root: plans/active         # evidence goes to <evidence_root>/<initiative>/reports/<stamp>/<slug>/
test_globs:                         # changed files matching these are "test changes" (used for the RED proof)
  - "tests/**"
  - "**/test_*.py"
  - "**/*_test.py"
  - "**/conftest.py"

pytest:
  command: ["{python}", "-m", "pytest"]   # "{python}" is the harness's own interpreter
  args: []                                 # extra arguments for every pytest run
  env: {}                                  # extra environment, e.g. {PYTHONPATH: src}
  timeout_s: 1800

known_failures: ci/known_failures.txt   # node ids allowed to fail in the full suite (null: none)

gates:
  collect: true             # `pytest --collect-only` must succeed
  regression: true          # the item's regression selectors must pass
  full_suite:               # the full suite must pass, apart from known failures (or `full_suite: false`)
    enabled: true
    args: []
    jobs: auto              # auto: pytest-xdist, one worker per CPU, when it is installed; or a number
  lint: null                # or {command: ["ruff", "check", "."]}
  integrity: true           # no test removed, skipped or weakened; no known failure or test filter added
  mutation:                 # mutation strength on the changed lines, for items with `- Mutation: required`
    enabled: false          # true: for every item
    min_score: 0.8          # killed / (killed + survived)
    max_mutants: 40
    timeout_s: null         # per mutant; null: 10 s + 4 x the GREEN stage's time
    jobs: auto              # mutants run at once, each in its own copy of the tree

holdout: null               # or {dir: ../holdout}: held-out tests for `- Acceptance:` selectors (outside the repo)
concurrent_stages: true     # stages in different trees (RED's worktree, GREEN's tree, copies) run at once

max_attempts: 3
workers: 1                  # `harness loop`: items run at once, each in its own worktree (--workers N)

caps:
  changed_file_bytes: 5000000     # changed files larger than this are left out of the commit (and listed)
  evidence_file_bytes: 1000000    # evidence files larger than this are stored gzip-compressed

ignore: []                        # globs of changed files never committed (listed in the summary)

commit:                           # identity of the harness's commits
  name: ptycho-harness
  email: harness@localhost

agent:
  command: null             # argv list, e.g. ["claude", "-p"]; with shell: true, one string for /bin/sh -c
  shell: false
  timeout_s: 3600
  prompt_template: null     # repo-relative path of a jinja2 template; null: the built-in prompt
  phases: null              # or [red, green]: the agent is run once per phase

push: null                  # or {remote: origin, branch: main}

selectors:
  extra: []                 # [{selector: "tests/test_x.py::test_y", name: "...", groups: [...]}]
  history: plans/selectors/history.jsonl
"""


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
        data = yaml.load(text, Loader=_UniqueKeyLoader)  # a SafeLoader subclass
    except yaml.YAMLError as exc:
        raise ConfigError(f"{source}: not valid YAML: {exc}\nFix the syntax (indentation, quotes).") from exc
    if data is None:
        return Config(source=source)
    r = _Reader(source)
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
        selectors=_selectors(r, top.get("selectors", {})),
        holdout=r.optional(top.get("holdout"), "holdout", lambda v, k: config_gates.parse_holdout(r, v)),
        concurrent_stages=r.boolean(top.get("concurrent_stages", True), "concurrent_stages"),
        source=source,
    )


_TOP_KEYS = (
    "ledger", "evidence_root", "test_globs", "pytest", "known_failures", "gates", "max_attempts", "caps",
    "ignore", "commit", "agent", "push", "selectors", "workers", "holdout", "concurrent_stages",
)


def _pytest(r: _Reader, value: Any) -> PytestConfig:
    m = r.section(value, "pytest", ("command", "args", "env", "timeout_s"))
    d = PytestConfig()
    return PytestConfig(
        command=r.argv(m.get("command", list(d.command)), "pytest.command"),
        args=r.str_list(m.get("args", []), "pytest.args"),
        env=MappingProxyType(r.str_map(m.get("env", {}), "pytest.env")),
        timeout_s=r.integer(m.get("timeout_s", d.timeout_s), "pytest.timeout_s"),
    )


def _gates(r: _Reader, value: Any) -> GatesConfig:
    m = r.section(value, "gates", ("collect", "regression", "full_suite", "full_suite_args", "lint",
                                   "integrity", "mutation"))

    def lint(v: Any, key: str) -> LintGate:
        lm = r.section(v, key, ("command",))
        if "command" not in lm:
            raise ConfigError(f"{r.source}: `{key}` needs a `command` (an argv list, e.g. [ruff, check, .])")
        return LintGate(command=r.argv(lm["command"], f"{key}.command"))

    full_suite = config_gates.parse_full_suite(r, m.get("full_suite", True), m.get("full_suite_args"))
    return GatesConfig(
        collect=r.boolean(m.get("collect", True), "gates.collect"),
        regression=r.boolean(m.get("regression", True), "gates.regression"),
        full_suite=full_suite.enabled,
        full_suite_args=full_suite.args,
        lint=r.optional(m.get("lint"), "gates.lint", lint),
        full_suite_jobs=full_suite.jobs,
        integrity=r.boolean(m.get("integrity", True), "gates.integrity"),
        mutation=config_gates.parse_mutation(r, m.get("mutation", {})),
    )


def _caps(r: _Reader, value: Any) -> CapsConfig:
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


def _commit(r: _Reader, value: Any) -> CommitConfig:
    m = r.section(value, "commit", ("name", "email"))
    d = CommitConfig()
    return CommitConfig(
        name=r.nonempty_str(m.get("name", d.name), "commit.name"),
        email=r.nonempty_str(m.get("email", d.email), "commit.email"),
    )


def _agent(r: _Reader, value: Any) -> AgentConfig:
    m = r.section(value, "agent", ("command", "shell", "timeout_s", "prompt_template", "phases"))
    d = AgentConfig()
    shell = r.boolean(m.get("shell", d.shell), "agent.shell")
    command = m.get("command")
    if command is None:
        argv = None
    elif shell and isinstance(command, str):
        argv = (r.nonempty_str(command, "agent.command"),)
    else:
        argv = r.argv(command, "agent.command")
        if shell and len(argv) != 1:
            raise ConfigError(
                f"{r.source}: `agent.command`: with `agent.shell: true` give one command string "
                f"for /bin/sh -c, got {len(argv)} items {list(argv)!r}"
            )
    return AgentConfig(
        command=argv,
        shell=shell,
        timeout_s=r.integer(m.get("timeout_s", d.timeout_s), "agent.timeout_s"),
        prompt_template=r.optional(m.get("prompt_template"), "agent.prompt_template", r.rel_path),
        phases=r.optional(m.get("phases"), "agent.phases", lambda v, k: _phases(r, v, k)),
    )


def _phases(r: _Reader, value: Any, key: str) -> tuple[str, ...]:
    phases = r.str_list(value, key)
    bad = [p for p in phases if p not in AGENT_PHASES]
    if bad or not phases or len(set(phases)) != len(phases):
        raise ConfigError(
            f"{r.source}: `{key}`: expected a list of distinct phases from {list(AGENT_PHASES)} "
            f"(or null), got {list(phases)!r}"
        )
    return phases


def _push(r: _Reader, value: Any) -> PushConfig:
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


def _selectors(r: _Reader, value: Any) -> SelectorsConfig:
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


class _Reader:
    """Type checks that name the key path and the file in every error."""

    def __init__(self, source: str) -> None:
        self.source = source

    def type_error(self, key: str, expected: str, got: Any) -> None:
        raise ConfigError(
            f"{self.source}: `{key}`: expected {expected}, got {got!r} ({type(got).__name__})"
        )

    def mapping(self, value: Any, key: str) -> dict[str, Any]:
        if not isinstance(value, dict):
            self.type_error(key or "<top level>", "a mapping of keys to values", value)
        return value

    def keys(self, m: Mapping[str, Any], prefix: str, allowed: tuple[str, ...]) -> None:
        for k in m:
            if k in allowed:
                continue
            path = f"{prefix}.{k}" if prefix else str(k)
            close = difflib.get_close_matches(str(k), allowed, n=1, cutoff=0.6)
            hint = f"; did you mean `{prefix + '.' if prefix else ''}{close[0]}`?" if close else ""
            raise ConfigError(
                f"{self.source}: unknown key `{path}`{hint}\n"
                f"Allowed keys {'under `' + prefix + '`' if prefix else 'at the top level'}: "
                f"{', '.join(allowed)}"
            )

    def section(self, value: Any, key: str, allowed: tuple[str, ...]) -> dict[str, Any]:
        m = self.mapping({} if value is None else value, key)
        self.keys(m, key, allowed)
        return m

    def optional(self, value: Any, key: str, parse: Callable[[Any, str], Any]) -> Any:
        return None if value is None else parse(value, key)

    def boolean(self, value: Any, key: str) -> bool:
        if not isinstance(value, bool):
            self.type_error(key, "true or false", value)
        return value

    def integer(self, value: Any, key: str, minimum: int = 1) -> int:
        if isinstance(value, bool) or not isinstance(value, int):
            self.type_error(key, f"an integer >= {minimum}", value)
        if value < minimum:
            raise ConfigError(f"{self.source}: `{key}`: expected an integer >= {minimum}, got {value!r}")
        return value

    def nonempty_str(self, value: Any, key: str) -> str:
        if not isinstance(value, str) or not value.strip():
            self.type_error(key, "a non-empty string", value)
        return value

    def str_list(self, value: Any, key: str) -> tuple[str, ...]:
        if not isinstance(value, list):
            self.type_error(key, "a list of strings", value)
        for i, item in enumerate(value):
            if not isinstance(item, str):
                self.type_error(f"{key}[{i}]", "a string", item)
        return tuple(value)

    def argv(self, value: Any, key: str) -> tuple[str, ...]:
        argv = self.str_list(value, key)
        if not argv or not argv[0].strip():
            self.type_error(key, "a non-empty argv list, e.g. [ruff, check, .]", value)
        return argv

    def str_map(self, value: Any, key: str) -> dict[str, str]:
        m = self.mapping(value, key)
        out: dict[str, str] = {}
        for k, v in m.items():
            if not isinstance(k, str) or not k:
                self.type_error(f"{key}", "variable names as keys", k)
            # YAML turns `1` and `true` into int/bool; environment values must be strings to be unambiguous.
            if not isinstance(v, str):
                self.type_error(f"{key}.{k}", "a string (quote numbers and booleans)", v)
            out[k] = v
        return out

    def rel_path(self, value: Any, key: str) -> str:
        text = self.nonempty_str(value, key)
        p = PurePosixPath(text)
        if p.is_absolute() or "\\" in text or ".." in p.parts:
            raise ConfigError(
                f"{self.source}: `{key}`: {text!r} must be a path relative to the repository root, "
                f"without `..` or a leading `/` (e.g. docs/fix_plan.md)"
            )
        return p.as_posix()


class _UniqueKeyLoader(yaml.SafeLoader):
    """SafeLoader that rejects duplicate keys: YAML would silently keep only the last one."""


def _construct_mapping(loader: yaml.SafeLoader, node: yaml.MappingNode, deep: bool = False) -> dict:
    seen: set[Any] = set()
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=deep)
        if key in seen:
            raise yaml.constructor.ConstructorError(
                None, None, f"duplicate key {key!r}", key_node.start_mark
            )
        seen.add(key)
    return loader.construct_mapping(node, deep=deep)


_UniqueKeyLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)
