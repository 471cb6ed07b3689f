"""pytest's configuration files, read the way pytest 9 reads them, and what a change to their settings does.

pytest takes its settings from one file: walking up from the common ancestor of its arguments, in each
folder the first of `pytest.toml`, `.pytest.toml`, `pytest.ini`, `.pytest.ini`, `pyproject.toml`, `tox.ini`,
`setup.cfg` that holds pytest's settings (`_pytest.config.findpaths.locate_config`). `pytest.toml` and
`pytest.ini` (and their dot forms) count even when empty; pyproject.toml only with `[tool.pytest]` (native
TOML) or `[tool.pytest.ini_options]`, tox.ini with `[pytest]`, setup.cfg with `[tool:pytest]`. The folder of
that file is the rootdir: node ids are relative to it.

So a new file can take over from another one (every setting of the old file stops applying to the tests
below it), and every setting, not only `addopts`, is judged:

- `addopts`: by the options it gains (harness.gates.integrity.pytest_options: `selection-narrowed`, or
  `gates-weakened` for `-p` and `--noconftest`);
- the collection keys (`testpaths`, `python_files`, ...): `selection-narrowed`;
- a strictness switched off (`xfail_strict`, `strict`, `strict_xfail`), `filterwarnings` losing an `error`
  entry or gaining another action, and any other setting changed (`pythonpath`, `usefixtures`,
  `empty_parameter_set_mark`, a plugin's own settings such as pytest-env's `env`):
  `test-machinery-changed`. Only settings that change neither which tests run nor how they end are free
  (`markers`, `log_*`, `junit_*`, `console_output_style`, `cache_dir`, `minversion`, ...).
"""
from __future__ import annotations

import configparser
import posixpath
import tomllib
from collections.abc import Callable, Mapping
from typing import Any

from harness.gates.integrity.pytest_options import COLLECTION_KEYS, SELECTION, gained, tokens_of

MACHINERY = "test-machinery-changed"
CONFIG_FILES = ("pytest.toml", ".pytest.toml", "pytest.ini", ".pytest.ini", "pyproject.toml", "tox.ini", "setup.cfg")
_ALWAYS_A_CONFIG = frozenset({"pytest.toml", ".pytest.toml", "pytest.ini", ".pytest.ini"})
_INI_SECTIONS = {"pytest.ini": "pytest", ".pytest.ini": "pytest", "tox.ini": "pytest", "setup.cfg": "tool:pytest"}

# Settings that change neither which tests run nor how they end: what is printed or logged, the cache, the
# markers' descriptions, the version and plugins pytest insists on.
_FREE_KEYS = frozenset({
    "markers", "minversion", "required_plugins", "cache_dir", "console_output_style", "doctest_encoding",
    "faulthandler_timeout", "faulthandler_exit_on_timeout", "pytester_example_dir", "strict_config",
    "strict_markers", "strict_parametrization_ids", "disable_test_id_escaping_and_forfeit_all_rights_to_community_support"})
_FREE_PREFIXES = ("log_", "junit_", "verbosity_", "truncation_limit_", "tmp_path_retention_")
_STRICTNESS = ("xfail_strict", "strict_xfail", "strict")
_WHY = {
    "pythonpath": "folders put first on sys.path, where a folder can stand in for the code under test",
    "usefixtures": "fixtures every test uses, which can replace the code under test",
    "empty_parameter_set_mark": "what a parametrize with no cases becomes",
    "consider_namespace_packages": "how test modules are imported",
    "collect_imported_tests": "whether tests imported into a module are collected",
    "doctest_optionflags": "how doctests compare their output",
    "enable_assertion_pass_hook": "a hook that is called for every passing assert",
    "filterwarnings": "which warnings fail a test",
}
_TRUE = frozenset({"true", "1", "yes", "on"})

Finding = Callable[..., None]  # (where, detail, kind=SELECTION, test=None)


def options_of(name: str, text: str | None) -> dict[str, Any] | None:
    """pytest's settings in a file named `name` (a basename in CONFIG_FILES), or None when pytest would not
    take the file for its configuration (no pytest section; a file that does not parse)."""
    if text is None:
        return None
    if name.endswith(".toml"):
        try:
            data = tomllib.loads(text)
        except tomllib.TOMLDecodeError:
            return None
        if name != "pyproject.toml":
            table = data.get("pytest")
            return dict(table) if isinstance(table, dict) else {}
        tool = data.get("tool", {}).get("pytest")
        if not isinstance(tool, dict):
            return None
        native = {k: v for k, v in tool.items() if k != "ini_options"}
        if native:
            return native
        ini = tool.get("ini_options")
        return dict(ini) if isinstance(ini, dict) else None
    parser = configparser.ConfigParser(interpolation=None)
    try:
        parser.read_string(text)
    except configparser.Error:
        return {} if name in _ALWAYS_A_CONFIG else None
    section = _INI_SECTIONS.get(name)
    if section is not None and parser.has_section(section):
        return dict(parser[section])
    return {} if name in _ALWAYS_A_CONFIG else None


def effective_file(folder: str, read: Callable[[str], str | None]) -> str | None:
    """The file pytest takes its settings from for tests in `folder` ("" is the repository root), walking up
    to the root; `read(path)` gives a file's text or None."""
    while True:
        for name in CONFIG_FILES:
            path = posixpath.join(folder, name) if folder else name
            if options_of(name, read(path)) is not None:
                return path
        if not folder:
            return None
        folder = posixpath.dirname(folder)


def _normal(value: object) -> tuple[str, ...]:
    if isinstance(value, bool):
        return ("true" if value else "false",)
    if isinstance(value, list | tuple):
        return tuple(item for v in value for item in _normal(v))
    return tuple(str(value).split())


def _free(key: str) -> bool:
    return key in _FREE_KEYS or key.startswith(_FREE_PREFIXES)


def _filterwarnings_findings(before: tuple[str, ...], after: tuple[str, ...], add: Finding) -> None:
    for entry in before:
        if entry.startswith("error") and entry not in after:
            add("filterwarnings", f"loses `{entry}`, so those warnings no longer fail a test", kind=MACHINERY)
    for entry in after:
        if not entry.startswith("error") and entry not in before:
            add("filterwarnings", f"gains `{entry}`, which decides which warnings fail a test", kind=MACHINERY)


def option_findings(old: Mapping[str, Any] | None, new: Mapping[str, Any] | None, add: Finding) -> None:
    """Findings for the settings of one configuration file before and after the change (None: not a
    configuration file then)."""
    before, after = dict(old or {}), dict(new or {})
    for effect in gained(tokens_of(before.get("addopts")), tokens_of(after.get("addopts"))):
        add("addopts", f"gains `{effect.text}`, {effect.why}", kind=effect.kind)
    for key in sorted(set(before) | set(after)):
        was, now = _normal(before.get(key, ())), _normal(after.get(key, ()))
        if key == "addopts" or was == now or _free(key):
            continue
        if key in COLLECTION_KEYS:
            add(key, f"changed from {list(was)} to {list(now)}, which decides what is collected", kind=SELECTION)
        elif key == "filterwarnings":
            _filterwarnings_findings(was, now, add)
        elif key in _STRICTNESS:
            if (was and was[0].lower() in _TRUE) and not (now and now[0].lower() in _TRUE):
                add(key, f"switched off (was {' '.join(was)}), so a test marked xfail that passes no longer "
                    "fails", kind=MACHINERY)
        else:
            why = _WHY.get(key, "a setting pytest or a plugin reads while it runs the tests")
            change = f"set to `{' '.join(now)}`" if not was else (
                f"removed (was `{' '.join(was)}`)" if not now else f"changed from `{' '.join(was)}` to `{' '.join(now)}`")
            add(key, f"{change}: {why}", kind=MACHINERY)


def takeovers(changed: list[str], old: Callable[[str], str | None],
              new: Callable[[str], str | None]) -> list[tuple[str, str]]:
    """(file, detail) for each folder of a changed configuration file where pytest reads another file than
    at the base. A first configuration file at the repository root takes over from nothing and changes no
    rootdir: it is judged by its settings alone."""
    found: list[tuple[str, str]] = []
    for folder in sorted({posixpath.dirname(path) for path in changed if posixpath.basename(path) in CONFIG_FILES}):
        before, after = effective_file(folder, old), effective_file(folder, new)
        if before == after or (before is None and after is not None and "/" not in after):
            continue
        tests = f"the tests in {folder}/" if folder else "the tests"
        if after is None:
            detail = f"pytest no longer finds a configuration file for {tests} (it read {before})"
        elif before is None:
            detail = f"pytest now reads {after} for {tests}, which makes {posixpath.dirname(after)}/ their rootdir"
        else:
            detail = (f"pytest now reads {after} instead of {before} for {tests}: none of {before}'s settings "
                      "apply to them any more")
        found.append((after or before or folder, detail))
    return found
