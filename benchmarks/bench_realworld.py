"""Real historical bug fixes (issue 20, section 4): the harness proves bug fixes of public Python projects
that nobody here wrote, taken from BugsInPy (buggy/fixed commit pairs with their failing tests).

For each bug: a fresh repository (no history) holding the project's tree at the buggy commit, plus the
harness's configuration (harness.yaml, a ledger item whose RED selectors are the bug's failing tests from
BugsInPy's run_test.sh, and a known-failures file), committed as the base. Then, in two copies of it:

- (a) the files the fixed commit changed (its test files and its source fix) in the working tree:
  `harness run --no-agent ITEM` must be GREEN;
- (b) the fixed commit's test files alone: the harness must refuse it at GREEN (`FAILED at green`).

The full-suite gate runs the project's offline tests (`tests` for thefuck; the bug's test modules for
youtube-dl, whose other modules download from the network). Tests that fail at the buggy commit, or fail
with the fixed commit's tree and are not the bug's tests (the environment: Python 3.11, no network, old
code), are listed in the known-failures file of the base, the way the harness tolerates pre-existing
failures; their counts are printed per bug. The bug's own failing tests are never listed.

Prints, per bug: project, bug id, expected and got for (a) and (b), wall times; then the agreement rate;
appends the section to benchmarks/RESULTS.md (inputs named by project, bug id and commit). Not in CI: it
needs the fetched repositories and a Python environment for the projects' tests.

Reproduce (Python 3.11, from this repository's root; RW is any empty folder, e.g. `RW=$(mktemp -d)`):

    git clone https://github.com/soarsmu/BugsInPy $RW/BugsInPy
    git clone https://github.com/nvbn/thefuck $RW/thefuck
    git clone https://github.com/ytdl-org/youtube-dl $RW/youtube-dl
    python -m venv $RW/venv
    $RW/venv/bin/pip install "pytest<8" "pytest-xdist<3.6" pytest-mock mock six decorator psutil \\
        colorama pyte pexpect
    PYTHONPATH=$PWD python benchmarks/bench_realworld.py --bugsinpy $RW/BugsInPy \\
        --repo thefuck=$RW/thefuck --repo youtube-dl=$RW/youtube-dl --python $RW/venv/bin/python

A bare mirror works as well as a clone for `--repo`. `--bugs thefuck:1,2 youtube-dl:3` picks other bugs;
`--keep DIR` keeps each bug's repositories and the harness's output there; `--no-write` prints only.
pytest below 8 is needed because thefuck's tests of that time put marks on fixtures, which pytest 9
refuses. thefuck's bugs 3 to 21 have a conftest.py that calls `request.node.get_marker`, which pytest 4
removed, so every test errors in set-up there (bug 3 is in the default set to show it: RED is "proven" by
that error, GREEN cannot be); PySnooper and tqdm are left out because their buggy commits do not import on
Python 3.11 (`collections.Mapping`) or test through nose, which does not either.
"""
from __future__ import annotations

import argparse
import io
import os
import platform
import re
import shlex
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from results_file import append_section

import harness
from harness.globs import matches_any
from harness.pytest_run.runner import run_pytest

HARNESS_ROOT = Path(harness.__file__).resolve().parent.parent
DEFAULT_TEST_GLOBS = ("tests/**", "**/test_*.py", "**/*_test.py", "**/conftest.py")


@dataclass(frozen=True)
class Project:
    """How one project's tests run under the harness: which paths are tests, and the full suite's scope
    (None: the bug's own test modules)."""

    test_globs: tuple[str, ...]
    full_suite: tuple[str, ...] | None
    jobs: int


PROJECTS = {
    "thefuck": Project(DEFAULT_TEST_GLOBS, ("tests",), 2),
    "youtube-dl": Project((*DEFAULT_TEST_GLOBS, "test/**"), None, 1),
}
DEFAULT_BUGS = {"thefuck": (1, 2, 3), "youtube-dl": (1, 3, 5, 11, 13, 17, 20)}


@dataclass(frozen=True)
class Bug:
    """One BugsInPy entry: its commits, test files, and the failing tests as pytest node ids."""

    project: str
    number: int
    buggy: str
    fixed: str
    test_files: tuple[str, ...]
    selectors: tuple[str, ...]


def parse_bug_info(text: str) -> dict[str, str]:
    """bug.info's `key="value"` lines (BugsInPy writes one per line, sometimes without a final newline)."""
    fields = {}
    for match in re.finditer(r'^\s*([A-Za-z_]+)\s*=\s*"([^"]*)"', text, re.MULTILINE):
        fields[match.group(1)] = match.group(2)
    for key in ("buggy_commit_id", "fixed_commit_id", "test_file"):
        if not fields.get(key):
            raise ValueError(f"bug.info has no {key}=\"...\" line; expected BugsInPy's format")
    return fields


def unittest_to_nodeid(dotted: str, test_files: Sequence[str]) -> str:
    """`test.test_utils.TestUtil.test_x` -> `test/test_utils.py::TestUtil::test_x`, the module being the
    bug's test file that the dotted name starts with (else all but the last two parts)."""
    for path in test_files:
        module = path.removesuffix(".py").replace("/", ".")
        if dotted.startswith(module + "."):
            return path + "::" + "::".join(dotted[len(module) + 1:].split("."))
    parts = dotted.split(".")
    if len(parts) < 3:
        raise ValueError(f"cannot tell the module of unittest id {dotted!r}")
    return "/".join(parts[:-2]) + ".py::" + "::".join(parts[-2:])


def parse_run_test(text: str, test_files: Sequence[str]) -> tuple[str, ...]:
    """The failing tests of run_test.sh (`pytest ... NODEID`, `python3 -m pytest NODEID`, `python -m
    unittest -q a.b.C.m ...`, one command a line), as pytest node ids in order, without repeats."""
    found: list[str] = []
    for line in text.splitlines():
        for command in line.split(";"):
            words = shlex.split(command)
            while words and (words[0] in ("python", "python3", "-m") or words[0].startswith("python3.")):
                words = words[1:]
            if not words or words[0] not in ("pytest", "py.test", "unittest"):
                continue
            ids = [w for w in words[1:] if not w.startswith("-")]
            if words[0] == "unittest":
                ids = [unittest_to_nodeid(i, test_files) for i in ids]
            found += [i for i in ids if i not in found]
    if not found:
        raise ValueError("run_test.sh names no test (expected `pytest NODEID` or `python -m unittest ID` lines)")
    return tuple(found)


def git(repo: Path, *args: str, data: bool = False) -> str | bytes:
    done = subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True)
    return done.stdout if data else done.stdout.decode("utf-8")


def load_bug(bugsinpy: Path, project: str, number: int) -> Bug:
    folder = bugsinpy / "projects" / project / "bugs" / str(number)
    info = parse_bug_info((folder / "bug.info").read_text(encoding="utf-8"))
    test_files = tuple(p.strip() for p in info["test_file"].split(";") if p.strip())
    selectors = parse_run_test((folder / "run_test.sh").read_text(encoding="utf-8"), test_files)
    return Bug(project, number, info["buggy_commit_id"], info["fixed_commit_id"], test_files, selectors)


def changed_paths(mirror: Path, bug: Bug) -> list[tuple[str, bool]]:
    """(path, exists at the fixed commit) for every file the fix changed."""
    out = str(git(mirror, "diff", "--no-renames", "--name-status", bug.buggy, bug.fixed))
    return [(line.split("\t", 1)[1], not line.startswith("D")) for line in out.splitlines() if line]


def write_fixed(mirror: Path, bug: Bug, repo: Path, paths: Sequence[tuple[str, bool]]) -> None:
    for path, exists in paths:
        target = repo / path
        if exists:
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(bytes(git(mirror, "show", f"{bug.fixed}:{path}", data=True)))
        else:
            target.unlink(missing_ok=True)


def harness_yaml(project: Project, python: str, full_suite: Sequence[str]) -> str:
    globs = "".join(f"  - {g!r}\n" for g in project.test_globs)
    return (
        "ledger: docs/fix_plan.md\nevidence_root: plans/active\nknown_failures: ci/known_failures.txt\n"
        f"test_globs:\n{globs}"
        f"pytest:\n  command: [{python!r}, '-m', 'pytest']\n  env: {{PYTHONPATH: '.'}}\n  timeout_s: 900\n"
        f"gates:\n  full_suite:\n    enabled: true\n    args: {list(full_suite)!r}\n    jobs: {project.jobs}\n"
        "commit:\n  name: ptycho-harness\n  email: harness@localhost\n"
    )


def ledger_text(bug: Bug, item: str) -> str:
    reds = "".join(f"- RED: {s}\n" for s in bug.selectors)
    return (f"# Fix Plan\n\n## [{item}] {bug.project} bug {bug.number} (BugsInPy), fixed in {bug.fixed[:10]}\n"
            f"- Status: pending\n- Mode: tdd\n{reds}")


def failing(repo: Path, out: Path, name: str, python: str, args: Sequence[str], jobs: int) -> set[str]:
    workers = ("-p", "xdist", "-n", str(jobs)) if jobs > 1 else ()
    run = run_pytest((*workers, *args), cwd=repo, out_dir=out, name=name, command=(python, "-m", "pytest"),
                     env={"PYTHONPATH": "."}, timeout_s=900)
    return {r.nodeid for r in run.failing()}


def is_bug_test(nodeid: str, selectors: Sequence[str]) -> bool:
    return any(nodeid == s or nodeid.startswith((s + "[", s + "::")) for s in selectors)


@dataclass(frozen=True)
class Result:
    bug: Bug
    got_a: str
    got_b: str
    wall_a: float
    wall_b: float
    known_base: int
    known_fixed: int
    note_a: str
    note_b: str

    @property
    def agree(self) -> tuple[bool, bool]:
        return self.got_a == "GREEN", self.got_b == "FAILED at green"


def run_harness(repo: Path, item: str, log: Path) -> tuple[str, float, str]:
    """`harness run --no-agent ITEM` in `repo`: (the ledger's outcome, or `exit N`; wall s; a reason line)."""
    env = {**os.environ, "PYTHONPATH": str(HARNESS_ROOT)}
    start = time.monotonic()
    done = subprocess.run([sys.executable, "-m", "harness", "run", "--no-agent", "-C", str(repo), item],
                          check=False, env=env, capture_output=True, text=True)
    wall = time.monotonic() - start
    log.write_text(done.stdout + done.stderr, encoding="utf-8")
    ledger = (repo / "docs/fix_plan.md").read_text(encoding="utf-8")
    outcomes = re.findall(r"· #\d+ · (GREEN|(?:FAILED|ABORTED) at [\w-]+) ·", ledger)
    got = outcomes[-1] if outcomes else f"exit {done.returncode}"
    lines = [ln.strip() for ln in (done.stdout + done.stderr).splitlines() if ln.strip()]
    reason = next((ln for ln in lines if "not proven" in ln or "new failure" in ln or "error" in ln.lower()),
                  lines[-1] if lines else "")
    return got, wall, reason[:300]


def prove_bug(bug: Bug, mirror: Path, python: str, work: Path) -> Result:
    project = PROJECTS[bug.project]
    for commit in (bug.buggy, bug.fixed):
        git(mirror, "cat-file", "-e", f"{commit}^{{commit}}")
    item = f"BUG-{bug.project.upper()}-{bug.number}"
    base = work / "base"
    base.mkdir(parents=True)
    archive = bytes(git(mirror, "archive", "--format=tar", bug.buggy, data=True))
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        tar.extractall(base, filter="data")
    paths = changed_paths(mirror, bug)
    tests = [(p, e) for p, e in paths if p in bug.test_files or matches_any(p, project.test_globs)]
    full_suite = project.full_suite or tuple(sorted({s.split("::")[0] for s in bug.selectors} | set(bug.test_files)))
    out = work / "pytest"
    at_base = failing(base, out, "base", python, full_suite, project.jobs)
    probe = work / "probe"
    shutil.copytree(base, probe)
    write_fixed(mirror, bug, probe, paths)
    with_fix = failing(probe, out, "fixed", python, full_suite, project.jobs)
    shutil.rmtree(probe)
    known = sorted(n for n in at_base | with_fix if not is_bug_test(n, bug.selectors))
    (base / "ci").mkdir(exist_ok=True)
    (base / "ci/known_failures.txt").write_text(
        "# failing at the buggy commit, or with the fixed tree and not the bug's tests (environment)\n"
        + "".join(f"{n}\n" for n in known), encoding="utf-8")
    (base / "harness.yaml").write_text(harness_yaml(project, python, full_suite), encoding="utf-8")
    (base / "docs").mkdir(exist_ok=True)
    (base / "docs/fix_plan.md").write_text(ledger_text(bug, item), encoding="utf-8")
    git(base, "init", "-q", "-b", "main")
    git(base, "add", "-A", "-f")
    git(base, "-c", "user.name=bench", "-c", "user.email=bench@localhost", "commit", "-q", "-m",
        f"{bug.project} at {bug.buggy} (BugsInPy bug {bug.number}) with the harness's configuration")
    repo_a, repo_b = work / "a", work / "b"
    shutil.copytree(base, repo_a, symlinks=True)
    shutil.copytree(base, repo_b, symlinks=True)
    write_fixed(mirror, bug, repo_a, paths)
    write_fixed(mirror, bug, repo_b, tests)
    got_a, wall_a, note_a = run_harness(repo_a, item, work / "a.log")
    got_b, wall_b, note_b = run_harness(repo_b, item, work / "b.log")
    base_known = {n for n in at_base if not is_bug_test(n, bug.selectors)}
    return Result(bug, got_a, got_b, wall_a, wall_b, len(base_known), len(known) - len(base_known), note_a, note_b)


def parse_bug_choice(words: Sequence[str]) -> dict[str, tuple[int, ...]]:
    chosen: dict[str, tuple[int, ...]] = {}
    for word in words:
        name, _, numbers = word.partition(":")
        if name not in PROJECTS or not numbers:
            raise SystemExit(f"--bugs {word!r}: expected PROJECT:N[,N...] with PROJECT one of {', '.join(PROJECTS)}")
        chosen[name] = tuple(int(n) for n in numbers.split(","))
    return chosen


def section(results: Sequence[Result], bugsinpy_rev: str, mirrors: dict[str, Path], python: str,
            started: str, load: str) -> str:
    commit = str(git(HARNESS_ROOT, "rev-parse", "--short", "HEAD")).strip()
    dirty = " with uncommitted changes" if str(git(HARNESS_ROOT, "status", "--porcelain", "--", "harness")).strip() else ""
    pytest_version = subprocess.run([python, "-m", "pytest", "--version"], check=False, capture_output=True,
                                    text=True).stdout.strip() or "?"
    agree = sum(r.agree[0] for r in results) + sum(r.agree[1] for r in results)
    total = 2 * len(results)
    rows = "".join(
        f"| {r.bug.project} | {r.bug.number} | {r.bug.buggy[:10]} / {r.bug.fixed[:10]} | {len(r.bug.selectors)} | "
        f"{r.known_base} + {r.known_fixed} | GREEN | {r.got_a} | {r.wall_a:.1f} | FAILED at green | {r.got_b} | "
        f"{r.wall_b:.1f} |\n" for r in results)
    heads = ", ".join(f"{name} {str(git(path, 'rev-parse', '--short', 'HEAD')).strip()}"
                      for name, path in sorted(mirrors.items()))
    return (
        f"\n## bench_realworld: real bug fixes from BugsInPy ({started} UTC)\n\n"
        f"- Command: `python benchmarks/bench_realworld.py` (module docstring) at {commit}{dirty}\n"
        f"- Machine: {platform.platform()}, {os.cpu_count()} logical CPU(s); harness on python "
        f"{platform.python_version()}; the projects' tests on {pytest_version} (Python 3.11 venv)\n"
        f"- Load average (1, 5, 15 min): {load}; the wall times are the harness's whole run (every stage, "
        f"reruns included) on a shared machine, not a measurement\n"
        f"- Inputs: BugsInPy {bugsinpy_rev[:10]}; repositories at {heads}\n"
        f"- Known failures: `k + m` = tests failing at the buggy commit + tests failing only with the fixed "
        f"tree (not the bug's), listed in the base's known-failures file\n\n"
        "| project | bug | buggy / fixed | RED | known | (a) expected | (a) got | (a) s | (b) expected | (b) got | "
        "(b) s |\n|---|---:|---|---:|---:|---|---|---:|---|---|---:|\n"
        f"{rows}\nAgreement: **{agree}/{total}** ({100 * agree / total:.0f} %) over {len(results)} bugs "
        f"from {len({r.bug.project for r in results})} projects.\n"
    )


def main_bench() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bugsinpy", type=Path, required=True, help="a checkout of soarsmu/BugsInPy")
    parser.add_argument("--repo", action="append", default=[], metavar="NAME=PATH",
                        help="a clone or mirror of a project's repository (repeat per project)")
    parser.add_argument("--python", required=True, help="the interpreter that runs the projects' tests")
    parser.add_argument("--bugs", nargs="*", default=None, metavar="PROJECT:N,N")
    parser.add_argument("--keep", type=Path, default=None, help="keep each bug's repositories and logs here")
    parser.add_argument("--results", type=Path, default=Path(__file__).resolve().parent / "RESULTS.md")
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args()
    mirrors = {}
    for spec in args.repo:
        name, _, path = spec.partition("=")
        if name not in PROJECTS or not path:
            raise SystemExit(f"--repo {spec!r}: expected NAME=PATH with NAME one of {', '.join(PROJECTS)}")
        mirrors[name] = Path(path).resolve()
    chosen = parse_bug_choice(args.bugs) if args.bugs else {p: DEFAULT_BUGS[p] for p in mirrors}
    missing = sorted(set(chosen) - set(mirrors))
    if missing:
        raise SystemExit(f"no --repo for {', '.join(missing)}: give --repo NAME=PATH for each")
    started = datetime.now(UTC).strftime("%Y-%m-%d %H:%M")
    bugsinpy_rev = str(git(args.bugsinpy, "rev-parse", "HEAD")).strip()
    load_before = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    results = []
    with tempfile.TemporaryDirectory(prefix="bench-realworld-") as tmp:
        root = args.keep.resolve() if args.keep else Path(tmp)
        for project, numbers in chosen.items():
            for number in numbers:
                bug = load_bug(args.bugsinpy, project, number)
                work = root / f"{project}-{number}"
                shutil.rmtree(work, ignore_errors=True)
                result = prove_bug(bug, mirrors[project], args.python, work)
                results.append(result)
                ok_a, ok_b = result.agree
                print(f"{project} {number}: (a) expected GREEN, got {result.got_a} [{result.wall_a:.1f} s]"
                      f"{'' if ok_a else ' DISAGREES: ' + result.note_a}; (b) expected FAILED at green, got "
                      f"{result.got_b} [{result.wall_b:.1f} s]{'' if ok_b else ' DISAGREES: ' + result.note_b}",
                      flush=True)
    load = f"{load_before} before, {', '.join(f'{x:.1f}' for x in os.getloadavg())} after"
    text = section(results, bugsinpy_rev, mirrors, args.python, started, load)
    print(text)
    if not args.no_write:
        append_section(args.results, text)
        print(f"appended to {args.results}")


if __name__ == "__main__":
    main_bench()
