"""`harness doctor`: what this machine and this repository have of what the harness needs, in one screen.

One line per check: `ok`, `info` (worth knowing, nothing to do), `warn` (works, but a proof may not mean
what it seems, or an optional part is missing) or `FAIL` (something required is missing), what was found
(a version, a path), and under each problem what to do. Exit 0 when nothing required is missing, 1
(ExitCode.REFUSED) otherwise. It reads and asks; it changes nothing, and takes no lock.

    repository    -C names a git repository with a working tree and a commit
    harness.yaml  it loads (its error otherwise; the checks that need it are left out)
    ledger        it parses
    git           on PATH, and 2.38 or later (`git merge-tree --write-tree`: the merge queue, the re-proof
                  of a rejected push)
    pytest        importable where `pytest.command` runs it; pytest-xdist for the full suite's workers;
                  each installed plugin known to change outcomes (reruns, random order, deselection)
    agent         the program of `agent.command` or `agent.preset`
    planner       the program of `planner.command`, when `planner:` is set
    sandbox       what `agent.sandbox` comes to here: which bwrap, or why none can run (harness.agent.sandbox)
    holdout       `holdout.dir` exists outside the repository, when configured
    chromium      for the README's report screenshots and the browser tests (optional)
"""
from __future__ import annotations

import importlib.util
import json
import shutil
import sys
from dataclasses import asdict, dataclass
from importlib import metadata
from pathlib import Path

from harness.agent.presets import PRESETS
from harness.agent.prompt import AgentError
from harness.agent.run import agent_argv
from harness.agent.sandbox import INSTALL_ADVICE, describe_sandbox
from harness.config import PYTHON_PLACEHOLDER, Config, load_config
from harness.errors import ExitCode, HarnessError
from harness.gates.acceptance import holdout_files, holdout_root
from harness.gitops import MERGE_TREE_WRITE_TREE, git_version, open_repo
from harness.iteration.preflight import agent_program_problem, program_problem
from harness.ledger import load_ledger
from harness.pytest_run.plugins import installed_plugins
from harness.pytest_run.xdist_jobs import xdist_available

OK, INFO, WARN, FAIL = "ok", "info", "warn", "fail"
MIN_GIT = ".".join(str(n) for n in MERGE_TREE_WRITE_TREE)


@dataclass(frozen=True)
class Check:
    """One line of the report: `status` is ok, info, warn or fail; `fix` says what to do (None: nothing)."""

    name: str
    status: str
    found: str
    fix: str | None = None


def doctor(*, repo: Path, as_json: bool = False) -> int:
    """Run every check and print them (one screen, or JSON); exit 1 when one FAILs."""
    checks = run_checks(Path(repo))
    failures = sum(c.status == FAIL for c in checks)
    warnings = sum(c.status == WARN for c in checks)
    if as_json:
        print(json.dumps({"repo": str(Path(repo).resolve()), "ok": not failures, "failures": failures,
                          "warnings": warnings, "checks": [asdict(c) for c in checks]}, indent=2))
    else:
        _print(Path(repo), checks, failures, warnings)
    return ExitCode.REFUSED if failures else ExitCode.OK


def run_checks(repo: Path) -> list[Check]:
    """Every check, in the order they print. The machine's checks run even where the repository or its
    harness.yaml cannot be read; those that need the configuration are left out then."""
    root, checks = _repository(repo)
    cfg = None
    if root is not None:
        config_check, cfg = _configuration(root)
        checks.append(config_check)
        if cfg is not None:
            checks.append(_ledger(root, cfg))
    where = root or Path.cwd()
    checks.append(_git(where))
    checks += _pytest(cfg or Config(), where)
    if cfg is not None and root is not None:
        checks += _programs(cfg, root)
    checks.append(_sandbox(cfg or Config()))
    if cfg is not None and root is not None and cfg.holdout is not None:
        checks.append(_holdout(cfg, root))
    checks.append(_chromium())
    return checks


def _repository(repo: Path) -> tuple[Path | None, list[Check]]:
    try:
        opened = open_repo(repo)
    except HarnessError as exc:
        return None, [Check("repository", FAIL, f"{repo}: not usable", str(exc))]
    root = Path(opened.working_tree_dir).resolve()
    return root, [Check("repository", OK, str(root))]


def _configuration(root: Path) -> tuple[Check, Config | None]:
    try:
        cfg = load_config(root)
    except HarnessError as exc:
        return Check("harness.yaml", FAIL, "does not load", str(exc)), None
    if not (root / "harness.yaml").is_file():
        return Check("harness.yaml", INFO, "none: the defaults apply",
                     "`harness init` writes a commented one"), cfg
    return Check("harness.yaml", OK, str(root / "harness.yaml")), cfg


def _ledger(root: Path, cfg: Config) -> Check:
    try:
        ledger = load_ledger(root / cfg.ledger)
    except HarnessError as exc:
        return Check("ledger", FAIL, f"{cfg.ledger} does not parse", str(exc))
    return Check("ledger", OK, f"{cfg.ledger}: {len(ledger.items)} items")


def _git(cwd: Path) -> Check:
    found = git_version(cwd)
    if found is None:
        return Check("git", FAIL, "no git on PATH", f"install git {MIN_GIT} or later and put it on PATH")
    version = f"git {'.'.join(map(str, found.number))} at {found.path}"
    if not found.supports_merge_tree_write_tree:
        return Check("git", FAIL, f"{version}: too old for `git merge-tree --write-tree` (the merge queue of "
                                  "`harness loop --workers`, the re-proof of a rejected push)",
                     f"upgrade git to {MIN_GIT} or later (your package manager, or https://git-scm.com)")
    return Check("git", OK, version)


def _pytest(cfg: Config, cwd: Path) -> list[Check]:
    command = cfg.pytest.command
    here = command[:1] == (PYTHON_PLACEHOLDER,) or command[:1] == (sys.executable,)
    if not here:
        argv = cfg.pytest.argv()
        problem = program_problem(argv[0], cwd)
        if problem:
            return [Check("pytest", FAIL, f"`pytest.command` {list(command)!r}: {problem}",
                          "install it or fix `pytest.command` in harness.yaml")]
        xdist = xdist_available(tuple(argv), str(cwd))
        return [Check("pytest", INFO, f"runs as {' '.join(argv)} (another interpreter: its plugins are not "
                                      "listed here)"),
                _xdist(cfg, xdist)]
    if importlib.util.find_spec("pytest") is None:
        return [Check("pytest", FAIL, f"not importable in {sys.executable}",
                      f"{sys.executable} -m pip install pytest")]
    checks = [Check("pytest", OK, f"pytest {metadata.version('pytest')} in {sys.executable}"),
              _xdist(cfg, importlib.util.find_spec("xdist") is not None)]
    autoload = "PYTEST_DISABLE_PLUGIN_AUTOLOAD" not in cfg.pytest.env
    plugins = installed_plugins()
    listed = ", ".join(f"{p.distribution} {p.version}" for p in plugins) or "none"
    if not autoload:
        listed += " (autoload off in `pytest.env`: each loads only when named with -p)"
    checks.append(Check("plugins", INFO, listed))
    for plugin in plugins:
        if plugin.changes_outcomes is None:
            continue
        names = ", ".join(f"-p no:{name}" for name in plugin.entry_points)
        if autoload:
            checks.append(Check(plugin.distribution, WARN,
                                f"{plugin.version} installed: it {plugin.changes_outcomes}",
                                f"uninstall it, or keep it out of the harness's runs with "
                                f"`pytest.args: [{names}]` in harness.yaml"))
        else:
            checks.append(Check(plugin.distribution, INFO, f"{plugin.version} installed; not loaded: "
                                "PYTEST_DISABLE_PLUGIN_AUTOLOAD is set in `pytest.env`"))
    return checks


def _xdist(cfg: Config, available: bool) -> Check:
    if available:
        return Check("pytest-xdist", OK, "installed: the full suite runs in worker processes")
    wanted = cfg.gates.full_suite and cfg.gates.full_suite_jobs != 1
    return Check("pytest-xdist", WARN if wanted else INFO, "not installed: the full suite runs in one process",
                 "pip install pytest-xdist (where pytest runs)" if wanted else None)


def _programs(cfg: Config, root: Path) -> list[Check]:
    """The external programs harness.yaml configures, each found or not: the agent, and the planner when
    `planner:` is set."""
    return [_agent(cfg, root)] + ([_planner(cfg, root)] if cfg.planner is not None else [])


def _planner(cfg: Config, root: Path) -> Check:
    planner = cfg.planner
    assert planner is not None
    try:
        argv, by_file = agent_argv(planner, root / ".harness-doctor.plan.md", role="planner")
    except AgentError as exc:
        return Check("planner", FAIL, f"{list(planner.command)!r}", str(exc))
    problem = program_problem(argv[0], root)
    if problem:
        return Check("planner", FAIL, problem,
                     f"fix `planner.command` in harness.yaml ({list(planner.command)!r}): install the program, "
                     "put it on PATH or give its full path")
    via = "prompt in a file ({prompt_file})" if by_file else "prompt on stdin"
    return Check("planner", OK, f"{argv[0]} (planner.command; {via}; timeout {planner.timeout_s} s)")


def _agent(cfg: Config, root: Path) -> Check:
    agent = cfg.agent
    if not agent.command:
        return Check("agent", INFO, "none configured: only `harness run --no-agent` and `harness verify` work",
                     f"set `agent.preset` ({', '.join(PRESETS)}) or `agent.command` in harness.yaml")
    if agent.command_from_preset:
        source = f"preset {agent.preset}"
    else:
        source = "agent.command" + (f", which wins over preset {agent.preset}" if agent.preset else "")
    try:
        cannot_start = agent_program_problem(agent, root)
        argv, by_file = agent_argv(agent, root / ".harness-doctor.prompt.md")
    except AgentError as exc:
        return Check("agent", FAIL, f"{list(agent.command)!r} ({source})", str(exc))
    if cannot_start:
        return Check("agent", FAIL, cannot_start.problem, cannot_start.fix)
    program = argv[0]
    where = shutil.which(program) if "/" not in program else (root / program).resolve()
    via = "prompt in a file ({prompt_file})" if by_file else "prompt on stdin"
    return Check("agent", OK, f"{program} at {where} ({source}; {via}; timeout {agent.timeout_s} s)")


def _sandbox(cfg: Config) -> Check:
    """What `agent.sandbox` comes to here (harness.agent.sandbox), as the agent's turn would find it."""
    status = describe_sandbox(cfg.agent)
    if status.mode == "bwrap":
        return Check("sandbox", OK, status.line())
    if status.refused:
        return Check("sandbox", FAIL, f"`agent.sandbox: bwrap`, and no working bwrap: {status.problem}",
                     f"{INSTALL_ADVICE}; a bwrap that cannot run needs unprivileged user namespaces")
    held_out = " (it can read holdout.dir)" if cfg.holdout is not None else ""
    if status.setting == "off":
        return Check("sandbox", WARN if held_out else INFO,
                     f"off (`agent.sandbox: off`): the agent runs unsandboxed{held_out}")
    return Check("sandbox", WARN, f"none: {status.problem}; the agent runs unsandboxed{held_out}",
                 f"{INSTALL_ADVICE}; a bwrap that cannot run needs unprivileged user namespaces")


def _holdout(cfg: Config, root: Path) -> Check:
    assert cfg.holdout is not None
    try:
        folder = holdout_root(cfg, root)
    except HarnessError as exc:
        return Check("holdout", FAIL, f"holdout.dir {cfg.holdout.dir!r}", str(exc))
    return Check("holdout", OK, f"{folder}: {len(holdout_files(folder))} files")


def _chromium() -> Check:
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    playwright = importlib.util.find_spec("playwright") is not None
    if browser and playwright:
        return Check("chromium", OK, f"{browser}, with playwright: report screenshots can be made")
    missing = [what for what, there in (("chromium", browser), ("playwright", playwright)) if not there]
    return Check("chromium", WARN, f"{' and '.join(missing)} missing: optional, only for the report's "
                                   "screenshots (docs/report/screenshots.py) and the browser tests",
                 "apt-get install chromium; pip install -e '.[test]' (playwright)")


def _print(repo: Path, checks: list[Check], failures: int, warnings: int) -> None:
    width = max(len(c.name) for c in checks)
    print(f"harness doctor: {repo.resolve()}")
    for check in checks:
        label = "FAIL" if check.status == FAIL else check.status
        print(f"{label:<5} {check.name:<{width}}  {check.found}")
        if check.fix and check.status in (FAIL, WARN):
            for number, line in enumerate(check.fix.splitlines()):
                print(f"{'':<5} {'':<{width}}  {'-> ' if number == 0 else '   '}{line}")
    if failures:
        print(f"{failures} required {'thing is' if failures == 1 else 'things are'} missing (FAIL); "
              f"{warnings} warning{'s' * (warnings != 1)}")
    else:
        print(f"nothing required is missing; {warnings} warning{'s' * (warnings != 1)}")
