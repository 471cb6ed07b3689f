"""A pytest plugin that records node ids and per-phase outcomes as JSON lines.

The harness does not import this module: `harness.pytest_run.runner` copies its source into a temporary
directory and loads it in the pytest subprocess with `-p`, because that subprocess may run another
python whose environment cannot import `harness`. So this file depends on pytest and the standard
library only, and must work with older pytest releases (old-style hookwrappers, no new APIs).

Events go to the file named by the environment variable below, one JSON object per line, flushed
at once so that a run killed by a timeout still leaves everything recorded up to that moment. The
variable is taken out of the environment when this module loads: the tests never see the path.

What the tests themselves could bend is recorded beside each report, for the harness to judge
(harness.pytest_run.events.record_problems): what each phase raised, noted before any other hook makes or
adjusts its report; whether pytest's machinery (the modules in `_WATCHED`) was replaced since this module
loaded, or holds the project's code; whether a test's function is still the one collected; and every hook
implementation from the project's tree that pytest registered (for harness.gates.integrity.hook_scan).
In-process code can defeat any of these on purpose (a hookwrapper registered after this one runs outside
it); the integrity gate judges the plugins and hooks a change brings.
"""
from __future__ import annotations

import functools
import json
import os
import re
from typing import Any

import pytest

OUTPUT_ENV = "HARNESS_PYTEST_RECORDER_OUT"
MESSAGE_LIMIT = 300

# The last "E   SomeError: text" line of pytest's text is the exception raised during collection.
_EXC_LINE = re.compile(r"^E\s+((?:[A-Za-z_]\w*\.)*[A-Z]\w*)(?::\s|:$|$)")

ISOLATE_ENV = "HARNESS_ISOLATE_FROM"

_stream: Any = None
_recording = False
_hidden: set[str] = set()


@functools.lru_cache(maxsize=None)  # noqa: UP033 - functools.cache is 3.9+; the project may run an older python
def _real(path: str) -> str:
    """os.path.realpath, once per path: the checks below ask it about the same few hundred code files
    thousands of times per run (an lstat per path component each time)."""
    return os.path.realpath(path)


def _under(path: str, root: str) -> bool:
    try:
        return os.path.commonpath([_real(path), root]) == root
    except ValueError:
        return False


class _IsolatingFinder:
    """Wraps a meta path finder and hides modules that would come from another checkout of the project.

    A run in a temporary worktree (the RED proof at the base commit) must import the worktree's code only.
    An editable install of the working tree (setuptools' `__editable__` finder, or a .pth path entry), or a
    plain install of the project, would otherwise supply every module the base commit lacks from the
    *changed* code, and a new test could pass at base. Two rules:
    - a module of one of the worktree's own top-level packages must be loaded from the worktree;
    - nothing is loaded from the isolated roots (the working tree), unless it is an installed package
      (sys.prefix, site-packages: a virtual environment may live inside the checkout).
    """

    def __init__(self, inner: Any, roots: list[str], allowed: list[str], home: str, own: set[str]) -> None:
        self._inner = inner
        self._roots = roots
        self._allowed = allowed
        self._home = home
        self._own = own

    def _foreign(self, fullname: str, place: str) -> bool:
        if fullname.partition(".")[0] in self._own and not _under(place, self._home):
            return True
        return any(_under(place, r) for r in self._roots) and not any(_under(place, a) for a in self._allowed)

    def find_spec(self, fullname: str, path: Any = None, target: Any = None) -> Any:
        find = getattr(self._inner, "find_spec", None)
        spec = find(fullname, path, target) if find is not None else None
        if spec is None:
            return None
        places = [spec.origin] if spec.origin and os.path.isabs(spec.origin) else []
        places += [p for p in (spec.submodule_search_locations or []) if os.path.isabs(p)]
        if any(self._foreign(fullname, place) for place in places):
            _hidden.add(fullname)
            return None
        return spec

    def invalidate_caches(self) -> None:
        invalidate = getattr(self._inner, "invalidate_caches", None)
        if invalidate is not None:
            invalidate()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


def _own_packages(home: str) -> set[str]:
    """Top-level packages and modules of the checkout at `home` (and its `src/` layout)."""
    names: set[str] = set()
    for folder in (home, os.path.join(home, "src")):
        try:
            entries = os.listdir(folder)
        except OSError:
            continue
        for entry in entries:
            full = os.path.join(folder, entry)
            if entry.endswith(".py") and entry != "conftest.py":
                names.add(entry[:-3])
            elif os.path.isfile(os.path.join(full, "__init__.py")) and entry not in ("tests", "test"):
                names.add(entry)
    return names


def _isolate() -> None:
    roots = [os.path.realpath(r) for r in os.environ.get(ISOLATE_ENV, "").split(os.pathsep) if r]
    if not roots:
        return
    import site
    import sys

    home = os.path.realpath(os.getcwd())
    allowed = [os.path.realpath(p) for p in {sys.prefix, sys.base_prefix, *site.getsitepackages(),
                                             site.getusersitepackages(), home}]
    own = _own_packages(home)
    # Modules imported before this plugin (pytest itself) are not affected; everything the tests import is.
    sys.meta_path[:] = [_IsolatingFinder(f, roots, allowed, home, own) for f in sys.meta_path]


_isolate()
# The tests, and the processes they start, have no business with the record: they do not get its path.
_path = os.environ.pop(OUTPUT_ENV, None)


def _emit(event: dict[str, Any]) -> None:
    global _stream
    if not _recording or not _path:
        return
    if _stream is None:
        _stream = open(_path, "a", encoding="utf-8")  # noqa: SIM115 - kept open for the session
    _stream.write(json.dumps(event) + "\n")
    _stream.flush()


# What decides an outcome inside pytest (how a test is called, how its report is made and counted) and what
# a test checks with (pytest.raises, approx, unittest's asserts). Taken when this plugin is imported: before
# any conftest.py, and before the plugins a test run loads later.
_WATCHED = ("_pytest.reports", "_pytest.runner", "_pytest.skipping", "_pytest.outcomes", "_pytest.main",
            "_pytest.python", "_pytest.nodes", "_pytest.fixtures", "_pytest.unittest", "_pytest.python_api",
            "_pytest.raises", "_pytest.warnings", "pytest", "pluggy._callers", "pluggy._hooks", "pluggy._result",
            "unittest.case")
_MISSING = object()


def _code_files(value: Any) -> list[str]:
    """The source files of the code a callable attribute runs (functions, methods, properties, partials)."""
    if isinstance(value, (staticmethod, classmethod)):
        value = value.__func__
    if isinstance(value, property):
        return [f for part in (value.fget, value.fset, value.fdel) if part is not None for f in _code_files(part)]
    code = _code(value)
    # Generated code (dataclass methods, exec) names no file: "<string>".
    return [code.co_filename] if code is not None and os.path.isabs(code.co_filename) else []


def _code(value: Any) -> Any:
    """The code object a function, a bound method or a functools.partial runs, or None."""
    value = getattr(value, "__func__", value)
    value = getattr(value, "func", value)
    return getattr(value, "__code__", None)


def _guarded(value: Any) -> bool:
    return callable(value) or isinstance(value, (property, staticmethod, classmethod))


def _project_code(value: Any, home: str, installed: list[str]) -> bool:
    """Code from the project's tree (the run's directory, outside the Python installation): pytest's own
    machinery never runs it."""
    return any(_under(f, home) and not any(_under(f, p) for p in installed) for f in _code_files(value))


def _installed() -> list[str]:
    import site
    import sys

    return [os.path.realpath(p) for p in {sys.prefix, sys.base_prefix, *site.getsitepackages()}]


def _snapshot() -> tuple[list[tuple[str, Any, str, Any]], list[tuple[type, frozenset[str]]]]:
    import importlib
    entries: list[tuple[str, Any, str, Any]] = []
    classes: list[tuple[type, frozenset[str]]] = []
    for name in _WATCHED:
        try:
            module = importlib.import_module(name)
        except ImportError:
            continue
        for attr, value in list(vars(module).items()):
            if not _guarded(value) or isinstance(value, type(os)):
                continue
            entries.append((f"{name}.{attr}", vars(module), attr, value))
            if isinstance(value, type) and value.__module__ == name:
                classes.append((value, frozenset(vars(value))))
                entries += [(f"{name}.{value.__qualname__}.{a}", value, a, v) for a, v in list(vars(value).items())
                            if _guarded(v)]
    return entries, classes


_SNAPSHOT, _CLASSES = _snapshot()
_HOME, _INSTALLED = os.path.realpath(os.getcwd()), _installed()
_PRE_TAMPERED = [label for label, _, _, value in _SNAPSHOT if _project_code(value, _HOME, _INSTALLED)]


def _installed_code(value: Any) -> bool:
    """Whether the code a value runs all lies in the Python installation (pytest's own plugins set some of
    these names while they configure: legacypath's `Node.fspath`)."""
    files = _code_files(value)
    return bool(files) and all(any(_under(f, p) for p in _INSTALLED) for f in files)


def _tampering() -> list[str]:
    """Names in pytest's machinery replaced, removed or added since this plugin was imported by anything but
    installed code, or pointing at the project's code (replaced before this plugin was imported: a plugin
    named in addopts loads first)."""
    found = list(_PRE_TAMPERED)
    for label, owner, attr, original in _SNAPSHOT:
        current = owner.__dict__.get(attr, _MISSING) if isinstance(owner, type) else owner.get(attr, _MISSING)
        if current is not original and not _installed_code(current):
            found.append(label)
    for cls, names in _CLASSES:
        found += [f"{cls.__module__}.{cls.__qualname__}.{a}" for a, v in list(vars(cls).items())
                  if a not in names and _guarded(v) and not _installed_code(v)]
    return found


_raw: dict[tuple[str, str], tuple[str, str | None]] = {}  # (node id, phase) -> what the phase itself raised
_functions: dict[str, Any] = {}  # node id -> the test function collected
_tampered_at: dict[str, list[str]] = {}  # node id -> _tampering() when its call was reported


def _underlying(obj: Any) -> Any:
    return getattr(obj, "__func__", obj)


def _raw_outcome(item: Any, call: Any) -> tuple[str, str | None]:
    """passed / skipped / failed from the exception the phase raised, before any hook saw its report."""
    import unittest

    excinfo = call.excinfo
    pending = getattr(item, "_excinfo", None)  # a unittest TestCase's failure is held here until the report
    if excinfo is None and pending:
        excinfo = pending[0]
    if excinfo is None:
        return "passed", None
    value = excinfo.value
    if isinstance(value, (pytest.skip.Exception, unittest.SkipTest)):
        return "skipped", type(value).__name__
    return "failed", type(value).__name__


def _first_line(text: str) -> str:
    for line in text.splitlines():
        if line.strip():
            line = line.strip()
            return line if len(line) <= MESSAGE_LIMIT else line[: MESSAGE_LIMIT - 3] + "..."
    return ""


def _error_line(text: str, last: bool) -> str:
    """The first (or last) `E   ...` line of a pytest failure text, else its first line."""
    lines = [ln[1:].strip() for ln in text.splitlines() if ln.startswith("E ") and ln[1:].strip()]
    if lines:
        return _first_line(lines[-1] if last else lines[0])
    return _first_line(text)


def _longrepr_text(report: Any) -> str:
    longrepr = report.longrepr
    if longrepr is None:
        return ""
    if isinstance(longrepr, tuple) and len(longrepr) == 3:
        return str(longrepr[2])
    try:
        return str(longrepr)
    except Exception:  # noqa: BLE001 - a broken repr must not lose the outcome
        return ""


def _message(report: Any) -> str:
    wasxfail = getattr(report, "wasxfail", None)
    if wasxfail is not None and report.outcome != "failed":
        reason = _first_line(str(wasxfail))
        return reason if reason else _crash_message(report)
    if report.outcome == "passed":
        return ""
    if report.outcome == "skipped":
        return _first_line(_longrepr_text(report))
    return _crash_message(report)


def _crash_message(report: Any) -> str:
    crash = getattr(report.longrepr, "reprcrash", None)
    message = getattr(crash, "message", None)
    if message:
        return _first_line(str(message))
    return _error_line(_longrepr_text(report), last=False)


def pytest_configure(config: Any) -> None:
    global _recording
    # xdist workers replay their reports on the controller: only the controller records, so nothing
    # is counted twice. `workerinput` is how xdist itself tells a worker's config apart.
    _recording = not hasattr(config, "workerinput")
    _emit({"event": "configured", "pytest_version": pytest.__version__})


@pytest.hookimpl(hookwrapper=True, tryfirst=True)
def pytest_runtest_makereport(item: Any, call: Any) -> Any:
    # Before the hooks that make and adjust the report: what the phase itself raised.
    raw = _raw_outcome(item, call)
    tampered: list[str] = []
    if call.when == "call":
        tampered = _tampering()
        collected = _functions.get(item.nodeid)
        if collected is not None and (_underlying(getattr(item, "obj", None)) is not collected
                                      or "runtest" in vars(item)):
            tampered.append(f"the test function of {item.nodeid}")
        _tampered_at[item.nodeid] = tampered
    _raw[(item.nodeid, call.when)] = raw
    outcome = yield
    report = outcome.get_result()
    # Attributes on the report travel to an xdist controller with the report itself.
    report.harness_raw = list(raw)
    if tampered:
        report.harness_tampered = tampered
    excinfo = call.excinfo
    if excinfo is not None:
        report.harness_exc_type = excinfo.typename
        report.harness_is_assertion = isinstance(excinfo.value, AssertionError)


def pytest_collectreport(report: Any) -> None:
    if report.outcome == "passed":
        return
    text = _longrepr_text(report)
    exc_type = None
    if report.outcome == "failed":
        for line in reversed(text.splitlines()):
            match = _EXC_LINE.match(line)
            if match:
                exc_type = match.group(1)
                break
    _emit(
        {
            "event": "collectreport",
            "nodeid": report.nodeid or ".",
            "outcome": report.outcome,
            "exc_type": exc_type,
            "message": _error_line(text, last=True) if report.outcome == "failed" else _first_line(text),
        }
    )


def _project_hooks(config: Any) -> list[dict[str, Any]]:
    """Every hook implementation whose code lies in the project's tree: which hook, where, and by which
    plugin it was registered (a conftest.py, a module named by `-p` or `pytest_plugins`, an entry point)."""
    found = []
    for hook, caller in sorted(vars(config.pluginmanager.hook).items()):
        get = getattr(caller, "get_hookimpls", None)
        for impl in get() if get is not None else ():
            function = impl.function
            for path in _code_files(function):
                if _under(path, _HOME) and not any(_under(path, p) for p in _INSTALLED):
                    plugin = str(getattr(impl, "plugin_name", "") or "")
                    found.append({"hook": hook, "file": os.path.relpath(path, _HOME),
                                  "line": _code(function).co_firstlineno,
                                  "function": getattr(function, "__name__", hook),
                                  "plugin": os.path.relpath(plugin, _HOME) if os.path.isabs(plugin)
                                  and _under(plugin, _HOME) else plugin})
    return found


def pytest_collection_finish(session: Any) -> None:
    for item in session.items:
        if isinstance(item, pytest.Function):
            _functions[item.nodeid] = _underlying(item.obj)
    _emit({"event": "collected", "nodeids": [item.nodeid for item in session.items]})
    # Every conftest.py of the collected folders, and every plugin, is registered by now.
    _emit({"event": "hooks", "impls": _project_hooks(session.config)})


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_node_collection_finished(node: Any, ids: Any) -> None:
    _emit({"event": "collected", "nodeids": list(ids)})


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_logreport(report: Any) -> None:
    wasxfail = getattr(report, "wasxfail", None)
    # In this process the plugin's own notes; from an xdist worker, the attributes the report carried.
    raw = _raw.pop((report.nodeid, report.when), None) or getattr(report, "harness_raw", None)
    tampered = _tampered_at.pop(report.nodeid, None) if report.when == "call" else None
    _emit(
        {
            "event": "report",
            "nodeid": report.nodeid,
            "when": report.when,
            "outcome": report.outcome,
            "wasxfail": None if wasxfail is None else str(wasxfail),
            "exc_type": getattr(report, "harness_exc_type", None),
            "is_assertion": bool(getattr(report, "harness_is_assertion", False)),
            "message": _message(report),
            "duration_s": float(getattr(report, "duration", 0.0) or 0.0),
            "raw": list(raw) if raw else None,
            "tampered": list(tampered if tampered is not None else getattr(report, "harness_tampered", None) or []),
        }
    )


@pytest.hookimpl(trylast=True)
def pytest_sessionfinish(session: Any, exitstatus: Any) -> None:
    # Among the last to run, so a process ended by an earlier implementation leaves no `finished`; the
    # session's status as it stands now, which the harness compares with the process's exit code.
    if _hidden:
        _emit({"event": "isolation", "hidden": sorted(_hidden), "roots": os.environ.get(ISOLATE_ENV, "")})
    tampered = _tampering()
    if tampered:
        _emit({"event": "tampered", "names": tampered})
    _emit({"event": "hooks", "impls": _project_hooks(session.config)})  # an xdist controller collects nothing
    _emit({"event": "finished", "exitstatus": int(getattr(session, "exitstatus", exitstatus))})


def pytest_unconfigure(config: Any) -> None:
    global _stream
    if _stream is not None:
        _stream.close()
        _stream = None
