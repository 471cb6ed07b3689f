"""What pytest options do to a run, read the way pytest's own parser reads them, so that a spelling does not
hide an option: `-k x`, `-kx`, `-k=x`, `-vk x` and `-xvkx` all select by keyword.

`effects(tokens)` -> the options among pytest arguments (`addopts`, harness.yaml's `pytest.args` and the
pytest part of `pytest.command`, `PYTEST_ADDOPTS`) that narrow or weaken a run, each with its kind:

- `selection-narrowed`: the option decides which tests run, or stops the run early: `-k`, `-m`,
  `--deselect`, `--ignore`, `--ignore-glob`, `--confcutdir`, `--lf`, `--sw`, `--collect-only`,
  `--setup-only`, `--setup-plan`, `-x`/`--maxfail` (tests after a known failure never run), `-c` (another
  ini file), `-o addopts=...` and `-o` of a collection key, and a path or node id (only it is collected);
- `gates-weakened`: the option changes what judges the tests: `-p NAME` loads a plugin (which can deselect
  tests or rewrite outcomes), `-p no:NAME` stops one from loading (but for cacheprovider and xdist, which
  change neither), `--noconftest` leaves out every conftest.py (its fixtures and hooks).

pytest refuses abbreviated long options (`allow_abbrev=False`), so only the full spellings are read. An
unknown option followed by a separate value reads the value as a path: a finding, never a miss.
"""
from __future__ import annotations

import shlex
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

SELECTION = "selection-narrowed"
WEAKENED = "gates-weakened"
FEWER = "so fewer tests run"

# ini keys that decide which files, classes and functions are collected at all.
COLLECTION_KEYS = ("testpaths", "python_files", "python_classes", "python_functions", "norecursedirs")

_LONG_NAMES = {"--exitfirst": "-x", "--last-failed": "--lf", "--stepwise": "--sw", "--stepwise-skip": "--sw-skip",
               "--co": "--collect-only", "--config-file": "-c", "--override-ini": "-o"}
_SELECTING_VALUE = {"-k": FEWER, "-m": FEWER, "--deselect": FEWER, "--ignore": FEWER, "--ignore-glob": FEWER,
                    "--confcutdir": FEWER,
                    "--maxfail": "so the run stops after that many failures and the tests after them never run",
                    "-c": "so pytest reads another configuration file (its addopts, testpaths, ...)"}
_SELECTING_FLAGS = {"--lf": FEWER, "--sw": FEWER, "--sw-skip": FEWER, "--collect-only": FEWER, "--setup-only": FEWER,
                    "--setup-plan": FEWER,
                    "-x": "so the run stops at the first failure and the tests after it never run (a known "
                          "failure hides every later one)"}
_WEAKENING_FLAGS = {"--noconftest": "so no conftest.py is loaded (the fixtures and hooks the tests rely on)"}
# Options that take a value, so the next token is theirs and not a path.
_VALUE_OPTIONS = frozenset({
    *_SELECTING_VALUE, "-p", "-o", "-W", "-r", "-n", "--pythonwarnings", "--numprocesses", "--rootdir",
    "--basetemp", "--junitxml", "--junit-xml", "--junit-prefix", "--tb", "--durations", "--durations-min",
    "--import-mode", "--capture", "--color", "--code-highlight", "--show-capture", "--verbosity", "--assert",
    "--log-level", "--log-format", "--log-date-format", "--log-cli-level", "--log-cli-format",
    "--log-cli-date-format", "--log-file", "--log-file-mode", "--log-file-level", "--log-file-format",
    "--log-file-date-format", "--log-auto-indent", "--log-disable", "--doctest-glob", "--doctest-report",
    "--report-log", "--dist", "--maxprocesses", "--max-worker-restart", "--tx", "--rsyncdir", "--timeout",
    "--timeout-method", "--cov", "--cov-report", "--cov-config", "--cov-fail-under", "--reruns",
    "--reruns-delay", "--randomly-seed", "--hypothesis-profile", "--hypothesis-seed", "--hypothesis-verbosity",
})
_SHORT_WITH_VALUE = frozenset({"k", "m", "p", "c", "o", "W", "r", "n"})
# Plugins whose loading or not changes neither which tests run nor how they end: the cache of the last
# failures (the harness runs without it anyway), and xdist (how tests are spread over processes).
_NEUTRAL_PLUGINS = frozenset({"cacheprovider", "xdist"})


@dataclass(frozen=True)
class Effect:
    """One option and what it does: `text` as pytest reads it (`-k slow`, `tests/unit`, `-p no:cov`)."""

    kind: str
    text: str
    why: str


def tokens_of(value: object) -> list[str]:
    """Arguments from a list, or from a string split as a shell would (pytest splits addopts so)."""
    if isinstance(value, list | tuple):
        return [str(v) for v in value]
    if isinstance(value, str):
        try:
            return shlex.split(value)
        except ValueError:
            return value.split()
    return []


def _options(tokens: Sequence[str]) -> list[tuple[str, str | None]]:
    """(option, value) pairs; a positional argument is ("", the argument)."""
    found: list[tuple[str, str | None]] = []
    i, positional_only = 0, False
    while i < len(tokens):
        token = tokens[i]
        i += 1
        if positional_only or token == "-" or not token.startswith("-"):
            found.append(("", token))
        elif token == "--":
            positional_only = True
        elif token.startswith("--"):
            name, eq, value = token.partition("=")
            name = _LONG_NAMES.get(name, name)
            if name in _VALUE_OPTIONS and not eq:
                value = tokens[i] if i < len(tokens) else ""
                i += 1
            found.append((name, value if (eq or name in _VALUE_OPTIONS) else None))
        else:
            for at, letter in enumerate(token[1:], start=1):
                if letter in _SHORT_WITH_VALUE:
                    value = token[at + 1:].removeprefix("=")
                    if not value:
                        value = tokens[i] if i < len(tokens) else ""
                        i += 1
                    found.append((f"-{letter}", value))
                    break
                found.append((f"-{letter}", None))
    return found


def _override_effects(value: str) -> list[Effect]:
    key, _, setting = value.partition("=")
    key = key.strip()
    if key == "addopts":
        return effects(tokens_of(setting))
    if key in COLLECTION_KEYS:
        return [Effect(SELECTION, f"-o {value}", f"which sets `{key}`, which decides what is collected")]
    return []


def effects(tokens: Iterable[str]) -> list[Effect]:
    """The options among pytest arguments that narrow the selection or weaken the gates, in order."""
    found: list[Effect] = []
    for name, value in _options(list(tokens)):
        if not name:
            found.append(Effect(SELECTION, str(value), "so only that path is collected"))
        elif name in _SELECTING_VALUE:
            found.append(Effect(SELECTION, f"{name} {value}".strip(), _SELECTING_VALUE[name]))
        elif name in _SELECTING_FLAGS:
            found.append(Effect(SELECTION, name, _SELECTING_FLAGS[name]))
        elif name in _WEAKENING_FLAGS:
            found.append(Effect(WEAKENED, name, _WEAKENING_FLAGS[name]))
        elif name == "-o" and value:
            found += _override_effects(value)
        elif name == "-p" and value and value.removeprefix("no:") not in _NEUTRAL_PLUGINS:
            plugin = value.removeprefix("no:")
            why = (f"so the plugin {plugin} is not loaded: what it checks is no longer checked" if value != plugin
                   else f"which loads the plugin {plugin}: a plugin can deselect tests or rewrite their outcomes")
            found.append(Effect(WEAKENED, f"-p {value}", why))
    return found


def gained(old: Iterable[str], new: Iterable[str]) -> list[Effect]:
    """The effects of `new` that `old` did not have (by kind and text), in `new`'s order, once each."""
    before = {(e.kind, e.text) for e in effects(old)}
    seen: set[tuple[str, str]] = set()
    out = []
    for effect in effects(new):
        key = (effect.kind, effect.text)
        if key not in before and key not in seen:
            seen.add(key)
            out.append(effect)
    return out


def split_command(command: Sequence[str]) -> tuple[list[str], list[str]]:
    """(the program that starts pytest, pytest's own arguments) of an argv: split after `-m pytest` or after
    a `pytest` / `py.test` executable; where neither is found, the whole argv is the program."""
    tokens = list(command)
    for i, token in enumerate(tokens):
        if token == "-m" and i + 1 < len(tokens) and tokens[i + 1] in ("pytest", "py.test"):
            return tokens[:i + 2], tokens[i + 2:]
        if token.rsplit("/", 1)[-1] in ("pytest", "py.test"):
            return tokens[:i + 1], tokens[i + 1:]
    return tokens, []
