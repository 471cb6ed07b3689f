"""`harness` command line: parse argv, dispatch to one command function, map errors to exit codes.

Each subcommand is one `_add_<name>(sub)` function that declares its arguments and sets `run` to an adapter
calling the command's keyword-argument function in `harness.commands` (which returns an exit code); the
command module is imported only when it runs. Options several commands share come from the parent
parsers below. The exit codes are `harness.errors.ExitCode`, listed in `--help` and the README.
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import traceback
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from harness import __version__
from harness.errors import EXIT_CODE_HELP, ExitCode, HarnessError

Subparsers = Any  # argparse's _SubParsersAction is private


def _parent(*adders: Any) -> argparse.ArgumentParser:
    parent = argparse.ArgumentParser(add_help=False)
    for add in adders:
        add(parent)
    return parent


def _repo_option(p: argparse.ArgumentParser) -> None:
    p.add_argument("-C", "--repo", type=Path, default=Path("."),
                   help="repository to work on (default: current directory)")


def _json_option(p: argparse.ArgumentParser) -> None:
    p.add_argument("--json", dest="as_json", action="store_true", help="machine-readable output")


def _filter_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--group", help="only selectors in this group (a kind, an initiative or an extra group)")
    p.add_argument("--item", help="only selectors of this ledger item")


REPO = _parent(_repo_option)
REPO_JSON = _parent(_repo_option, _json_option)
SELECTOR_FILTER = _parent(_repo_option, _filter_options, _json_option)


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a number >= 1, got {value}")
    return value


def _port(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a port number, got {text!r}") from None
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"expected a port from 0 to 65535, got {value}")
    return value


def _add_init(sub: Subparsers) -> None:
    p = sub.add_parser("init", parents=[REPO], help="write a commented harness.yaml and an empty ledger")
    p.add_argument("--force", action="store_true", help="overwrite an existing harness.yaml")

    def run(a: argparse.Namespace) -> int:
        from harness.commands.init import init

        return init(repo=a.repo, force=a.force)

    p.set_defaults(run=run)


def _add_next(sub: Subparsers) -> None:
    p = sub.add_parser("next", parents=[REPO_JSON], help="show which ledger item runs next, and why")

    def run(a: argparse.Namespace) -> int:
        from harness.commands.next import next_item

        return next_item(repo=a.repo, as_json=a.as_json)

    p.set_defaults(run=run)


def _add_run(sub: Subparsers) -> None:
    p = sub.add_parser("run", parents=[REPO], help="verify and record one iteration for an item")
    p.add_argument("item", nargs="?", help="item id (default: the next actionable item)")
    p.add_argument("--no-agent", action="store_true", help="the change is already in the working tree")
    p.add_argument("--keep-open", action="store_true", help="leave the item in_progress on success")
    p.add_argument("--allow-dirty", action="store_true",
                   help="with an agent: take existing working-tree changes as part of the change")

    def run(a: argparse.Namespace) -> int:
        from harness.commands.run import run as run_command

        return run_command(repo=a.repo, item_id=a.item, no_agent=a.no_agent, keep_open=a.keep_open,
                           allow_dirty=a.allow_dirty)

    p.set_defaults(run=run)


def _add_demo(sub: Subparsers) -> None:
    p = sub.add_parser("demo", help="run the real loop on a small demo repository with a scripted agent")
    p.add_argument("--dir", type=Path, help="build the demo repository here (default: a new temp folder)")

    def run(a: argparse.Namespace) -> int:
        from harness.commands.demo import demo

        return demo(directory=a.dir)

    p.set_defaults(run=run)


def _add_loop(sub: Subparsers) -> None:
    p = sub.add_parser("loop", parents=[REPO_JSON],
                       help="run iterations until nothing is actionable or a stop condition")
    length = p.add_mutually_exclusive_group()
    length.add_argument("--iterations", type=_positive_int, help="stop after N iterations")
    length.add_argument("--until-empty", action="store_true",
                        help="run until no item is actionable (the default without --iterations)")
    p.add_argument("--max-failures", type=_positive_int, default=3,
                   help="circuit breaker: stop after K failures in a row")
    p.add_argument("--budget-minutes", type=float, help="stop starting iterations after M minutes")
    p.add_argument("--no-agent", action="store_true", help="prove the change already in the tree (one iteration)")
    p.add_argument("--allow-dirty", action="store_true",
                   help="take existing working-tree changes as part of the first iteration's change")
    p.add_argument("--workers", type=_positive_int,
                   help="items run at once, each in its own worktree (default: `workers` in harness.yaml, 1)")
    p.add_argument("--plan-every", type=_positive_int, metavar="N",
                   help="run the planner (and record its plan) before iterations 1, N+1, 2N+1, ...")
    p.add_argument("--plan-when-empty", action="store_true",
                   help="run the planner when nothing is actionable; stop when its plan adds nothing actionable")

    def run(a: argparse.Namespace) -> int:
        from harness.commands.loop import loop

        return loop(repo=a.repo, iterations=a.iterations, until_empty=a.until_empty,
                    max_failures=a.max_failures, budget_minutes=a.budget_minutes, no_agent=a.no_agent,
                    allow_dirty=a.allow_dirty, workers=a.workers, as_json=a.as_json, plan_every=a.plan_every,
                    plan_when_empty=a.plan_when_empty)

    p.set_defaults(run=run)


def _add_plan(sub: Subparsers) -> None:
    p = sub.add_parser("plan", parents=[REPO],
                       help="the planner proposes ledger items; show the diff, record it with --apply")
    p.add_argument("--goal", help="what the next items should achieve (goes into the planner's prompt)")
    p.add_argument("--apply", action="store_true", help="write the ledger and make one `plan:` commit")
    p.add_argument("--proposal", type=Path,
                   help="check (and with --apply record) this proposal file instead of running the planner")

    def run(a: argparse.Namespace) -> int:
        from harness.commands.plan import plan

        return plan(repo=a.repo, goal=a.goal, apply=a.apply, proposal=a.proposal)

    p.set_defaults(run=run)


def _add_verify(sub: Subparsers) -> None:
    p = sub.add_parser("verify", parents=[REPO], help="prove RED/GREEN for changes that are already committed")
    p.add_argument("--base", required=True, help="revision before the change (RED runs here + new tests)")
    p.add_argument("--head", default="HEAD", help="revision holding the change (default: HEAD)")
    p.add_argument("--item", help="ledger item the change belongs to")
    p.add_argument("--dry-run", action="store_true", help="write evidence to a temp folder; commit nothing")
    p.add_argument("--keep-open", action="store_true", help="leave the item in_progress on success")

    def run(a: argparse.Namespace) -> int:
        from harness.commands.verify import verify

        return verify(repo=a.repo, base=a.base, head=a.head, item_id=a.item, dry_run=a.dry_run,
                      keep_open=a.keep_open)

    p.set_defaults(run=run)


def _add_ledger(sub: Subparsers) -> None:
    p = sub.add_parser("ledger", parents=[REPO_JSON],
                       help="review the ledger: table, one item, lint, verify evidence; import another loop's")
    p.add_argument("target", nargs="?", help="an item id, or `lint`, or `verify`, or `import`")
    p.add_argument("file", nargs="?", type=Path, metavar="FILE",
                   help="with `import`: the ledger to convert (e.g. a PtychoPINN docs/fix_plan.md)")
    imports = p.add_argument_group("import options")
    imports.add_argument("--format", dest="fmt", choices=("auto", "ptychopinn"),
                         help="the format of FILE (default: auto, detect it)")
    imports.add_argument("--out", type=Path, help="where to write (default: the ledger path of harness.yaml)")
    imports.add_argument("--check", action="store_true",
                         help="print what the import would do and write nothing (exit 1 when lines could not be mapped)")
    imports.add_argument("--force", action="store_true", help="replace an existing ledger")

    def run(a: argparse.Namespace) -> int:
        if a.target == "import":
            if a.file is None:
                p.error("`harness ledger import` needs FILE, the ledger to convert")
            from harness.commands.ledger_import import ledger_import

            return ledger_import(repo=a.repo, file=a.file, fmt=a.fmt or "auto", out=a.out, check=a.check,
                                 force=a.force, as_json=a.as_json)
        given = [name for name, on in (("FILE", a.file is not None), ("--format", a.fmt is not None),
                                       ("--out", a.out is not None), ("--check", a.check), ("--force", a.force)) if on]
        if given:
            p.error(f"{given[0]} only goes with `import` (harness ledger import FILE ...)")
        from harness.commands.ledger import ledger

        return ledger(repo=a.repo, target=a.target, as_json=a.as_json)

    p.set_defaults(run=run)


def _add_report(sub: Subparsers) -> None:
    p = sub.add_parser("report", parents=[REPO], help="write the ledger review as a static web site (or serve it)")
    p.add_argument("--out", type=Path, help="folder for the site (default: plans/report/ in the repository)")
    p.add_argument("--serve", action="store_true", help="serve the site and rebuild it when the ledger changes")
    p.add_argument("--host", help="with --serve: address to listen on (default 127.0.0.1; others only if given)")
    p.add_argument("--port", type=_port, default=8765, help="with --serve: port (default 8765; 0: any free one)")

    def run(a: argparse.Namespace) -> int:
        from harness.commands.report import report

        return report(repo=a.repo, out=a.out, serve=a.serve, host=a.host, port=a.port)

    p.set_defaults(run=run)


def _add_leases(sub: Subparsers) -> None:
    p = sub.add_parser("leases", parents=[REPO_JSON], help="list who holds which item (here and on the push remote)")
    p.add_argument("--remote", action="store_true", help="fetch the push remote's leases first")

    def run(a: argparse.Namespace) -> int:
        from harness.commands.leases import leases

        return leases(repo=a.repo, remote=a.remote, as_json=a.as_json)

    p.set_defaults(run=run)


def _add_selectors(sub: Subparsers) -> None:
    p = sub.add_parser("selectors", help="the selector registry: list, index, run, collect, history")
    actions = p.add_subparsers(dest="action", required=True, metavar="ACTION")

    def dispatch(action: str, **fixed: Any) -> Any:
        def run(a: argparse.Namespace) -> int:
            from harness.commands.selectors import selectors

            options = {name: getattr(a, name) for name in ("group", "item", "as_json", "check", "selector", "jobs")
                       if hasattr(a, name)}
            return selectors(repo=a.repo, action=action, **options, **fixed)
        return run

    a = actions.add_parser("list", parents=[SELECTOR_FILTER],
                           help="every selector with its item, groups, last result and when")
    a.set_defaults(run=dispatch("list"))
    a = actions.add_parser("index", parents=[REPO], help="write docs/TEST_SUITE_INDEX.md from the registry")
    a.add_argument("--check", action="store_true", help="exit 1 when the file is out of date; write nothing")
    a.set_defaults(run=dispatch("index"))
    a = actions.add_parser("run", parents=[SELECTOR_FILTER],
                           help="run selectors in few pytest processes; compare with the history")
    a.add_argument("--jobs", type=_positive_int, default=1, help="pytest-xdist workers per batch (default 1)")
    a.set_defaults(run=dispatch("run"))
    a = actions.add_parser("collect", parents=[SELECTOR_FILTER],
                           help="check that every selector collects at least one test")
    a.set_defaults(run=dispatch("collect"))
    a = actions.add_parser("history", parents=[REPO_JSON], help="one selector's results over time, with commits")
    a.add_argument("selector", help="the selector, as `harness selectors list` shows it")
    a.set_defaults(run=dispatch("history"))


def _add_bisect(sub: Subparsers) -> None:
    p = sub.add_parser("bisect", parents=[REPO_JSON], help="find the first commit where a selector stopped passing")
    p.add_argument("selector", help="a pytest selector (node id, path, or path with pytest args)")
    p.add_argument("--good", help="a commit where it passes (default: its last passing run in the history)")
    p.add_argument("--bad", help="a commit where it fails (default: HEAD)")

    def run(a: argparse.Namespace) -> int:
        from harness.commands.bisect import bisect

        return bisect(repo=a.repo, selector=a.selector, good=a.good, bad=a.bad, as_json=a.as_json)

    p.set_defaults(run=run)


def _add_doctor(sub: Subparsers) -> None:
    p = sub.add_parser("doctor", parents=[REPO_JSON],
                       help="check git, pytest and its plugins, the agent, the sandbox, the config (one screen)")

    def run(a: argparse.Namespace) -> int:
        from harness.commands.doctor import doctor

        return doctor(repo=a.repo, as_json=a.as_json)

    p.set_defaults(run=run)


SUBCOMMANDS = (_add_init, _add_next, _add_run, _add_demo, _add_loop, _add_plan, _add_verify, _add_ledger,
               _add_report, _add_leases, _add_selectors, _add_bisect, _add_doctor)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="harness",
        description="A TDD loop harness: it selects the ledger item, proves RED and GREEN itself, "
        "gates against known failures, writes checksummed evidence, updates the ledger and commits.",
        epilog=EXIT_CODE_HELP, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for add in SUBCOMMANDS:
        add(sub)
    return parser


def _write_crash_log() -> Path:
    fd, name = tempfile.mkstemp(prefix="harness-crash-", suffix=".log")
    with os.fdopen(fd, "w") as fh:
        fh.write(f"harness {__version__}, python {sys.version}\nargv: {sys.argv!r}\n\n")
        fh.write(traceback.format_exc())
    return Path(name)


def _import_gitpython() -> None:
    """Import gitpython with its start-up check for git quiet: without git on PATH it would refuse to be
    imported (a crash); this way the first git call fails instead, with harness.gitops's advice (exit 4),
    and `harness doctor` reports the missing git. The variable is this process's only while importing."""
    if "git" in sys.modules:
        return
    before = os.environ.get("GIT_PYTHON_REFRESH")
    os.environ["GIT_PYTHON_REFRESH"] = "quiet"
    try:
        import git  # noqa: F401
    finally:
        if before is None:
            del os.environ["GIT_PYTHON_REFRESH"]
        else:
            os.environ["GIT_PYTHON_REFRESH"] = before


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        _import_gitpython()
        return int(args.run(args))
    except HarnessError as exc:
        print(f"harness: error: {exc}", file=sys.stderr)
        for note in getattr(exc, "__notes__", ()):
            print(f"harness: {note}", file=sys.stderr)
        return int(exc.exit_code)
    except KeyboardInterrupt:
        print("harness: interrupted", file=sys.stderr)
        return ExitCode.INTERRUPTED
    except Exception as exc:  # noqa: BLE001 - the one place that turns a bug into a crash report
        log = _write_crash_log()
        print(f"harness: internal error (a bug): {type(exc).__name__}: {exc}\n"
              f"A crash report was written to {log}; please attach it to a bug report.", file=sys.stderr)
        return ExitCode.INTERNAL


if __name__ == "__main__":
    raise SystemExit(main())
