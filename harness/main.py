"""`harness` command line: parse argv, dispatch to one command function, map errors to exit codes."""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import traceback
from collections.abc import Sequence
from pathlib import Path

from harness import __version__
from harness.errors import HarnessError

EXIT_CRASH = 3
EXIT_INTERRUPTED = 130


def _add_repo_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("-C", "--repo", default=".", help="repository to work on (default: current directory)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="harness",
        description="A TDD loop harness: it selects the ledger item, proves RED and GREEN itself, "
        "gates against known failures, writes checksummed evidence, updates the ledger and commits.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("init", help="write a commented harness.yaml and an empty ledger")
    _add_repo_option(p)
    p.add_argument("--force", action="store_true", help="overwrite an existing harness.yaml")

    p = sub.add_parser("next", help="show which ledger item runs next, and why")
    _add_repo_option(p)
    p.add_argument("--json", action="store_true", help="print one JSON object")

    p = sub.add_parser("run", help="verify and record one iteration for an item")
    _add_repo_option(p)
    p.add_argument("item", nargs="?", help="item id (default: the next actionable item)")
    p.add_argument("--no-agent", action="store_true", help="the change is already in the working tree")
    p.add_argument("--keep-open", action="store_true", help="leave the item in_progress on success")
    p.add_argument("--allow-dirty", action="store_true",
                   help="with an agent: take existing working-tree changes as part of the change")

    p = sub.add_parser("demo", help="run the real loop on a small demo repository with a scripted agent")
    p.add_argument("--dir", type=Path, help="build the demo repository here (default: a new temp folder)")

    p = sub.add_parser("loop", help="run iterations until nothing is actionable or a stop condition")
    _add_repo_option(p)
    p.add_argument("--iterations", type=int, help="stop after N iterations")
    p.add_argument("--until-empty", action="store_true", help="run until no item is actionable")
    p.add_argument("--max-failures", type=int, default=3, help="circuit breaker: stop after K failures in a row")
    p.add_argument("--budget-minutes", type=float, help="stop starting iterations after M minutes")
    p.add_argument("--no-agent", action="store_true", help="prove the change already in the tree (one iteration)")
    p.add_argument("--allow-dirty", action="store_true",
                   help="take existing working-tree changes as part of the first iteration's change")
    p.add_argument("--workers", type=_positive_int,
                   help="items run at once, each in its own worktree (default: `workers` in harness.yaml, 1)")
    p.add_argument("--json", action="store_true", help="print the events and the summary as JSON lines")

    p = sub.add_parser("verify", help="prove RED/GREEN for changes that are already committed")
    _add_repo_option(p)
    p.add_argument("--base", required=True, help="revision before the change (RED runs here + new tests)")
    p.add_argument("--head", default="HEAD", help="revision holding the change (default: HEAD)")
    p.add_argument("--item", help="ledger item the change belongs to")
    p.add_argument("--dry-run", action="store_true", help="write evidence to a temp folder; commit nothing")
    p.add_argument("--keep-open", action="store_true", help="leave the item in_progress on success")

    p = sub.add_parser("ledger", help="review the ledger: table, one item, lint, verify evidence")
    _add_repo_option(p)
    p.add_argument("target", nargs="?", help="an item id, or `lint`, or `verify`")
    p.add_argument("--json", action="store_true", help="machine-readable output")

    p = sub.add_parser("report", help="write the ledger review as a static web site (or serve it)")
    _add_repo_option(p)
    p.add_argument("--out", type=Path, help="folder for the site (default: plans/report/ in the repository)")
    p.add_argument("--serve", action="store_true", help="serve the site and rebuild it when the ledger changes")
    p.add_argument("--host", help="with --serve: address to listen on (default 127.0.0.1; others only if given)")
    p.add_argument("--port", type=_port, default=8765, help="with --serve: port (default 8765; 0: any free one)")

    p = sub.add_parser("selectors", help="the selector registry: list, index, run, collect, history")
    actions = p.add_subparsers(dest="action", required=True, metavar="ACTION")
    a = actions.add_parser("list", help="every selector with its item, groups, last result and when")
    _add_repo_option(a)
    a.add_argument("--group", help="only selectors in this group (a kind, an initiative or an extra group)")
    a.add_argument("--item", help="only selectors of this ledger item")
    a.add_argument("--json", action="store_true", help="machine-readable output")
    a = actions.add_parser("index", help="write docs/TEST_SUITE_INDEX.md from the registry")
    _add_repo_option(a)
    a.add_argument("--check", action="store_true", help="exit 1 when the file is out of date; write nothing")
    a = actions.add_parser("run", help="run selectors in few pytest processes; compare with the history")
    _add_repo_option(a)
    a.add_argument("--group", help="only selectors in this group (a kind, an initiative or an extra group)")
    a.add_argument("--item", help="only selectors of this ledger item")
    a.add_argument("--jobs", type=_positive_int, default=1, help="pytest-xdist workers per batch (default 1)")
    a.add_argument("--json", action="store_true", help="print the run's results.json")
    a = actions.add_parser("collect", help="check that every selector collects at least one test")
    _add_repo_option(a)
    a.add_argument("--group", help="only selectors in this group")
    a.add_argument("--item", help="only selectors of this ledger item")
    a.add_argument("--json", action="store_true", help="machine-readable output")
    a = actions.add_parser("history", help="one selector's results over time, with commits")
    _add_repo_option(a)
    a.add_argument("selector", help="the selector, as `harness selectors list` shows it")
    a.add_argument("--json", action="store_true", help="machine-readable output")

    p = sub.add_parser("bisect", help="find the first commit where a selector stopped passing")
    _add_repo_option(p)
    p.add_argument("selector", help="a pytest selector (node id, path, or path with pytest args)")
    p.add_argument("--good", help="a commit where it passes (default: its last passing run in the history)")
    p.add_argument("--bad", help="a commit where it fails (default: HEAD)")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    return parser


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


def _dispatch(args: argparse.Namespace) -> int:
    if args.command == "demo":
        from harness.commands.demo import demo

        return demo(directory=args.dir)
    repo = Path(args.repo)
    if args.command == "init":
        from harness.commands.init import init

        return init(repo=repo, force=args.force)
    if args.command == "next":
        from harness.commands.next import next_item

        return next_item(repo=repo, as_json=args.json)
    if args.command == "run":
        from harness.commands.run import run

        return run(repo=repo, item_id=args.item, no_agent=args.no_agent, keep_open=args.keep_open,
                   allow_dirty=args.allow_dirty)
    if args.command == "loop":
        from harness.commands.loop import loop

        return loop(repo=repo, iterations=args.iterations, until_empty=args.until_empty,
                    max_failures=args.max_failures, budget_minutes=args.budget_minutes,
                    no_agent=args.no_agent, allow_dirty=args.allow_dirty, workers=args.workers,
                    as_json=args.json)
    if args.command == "verify":
        from harness.commands.verify import verify

        return verify(
            repo=repo, base=args.base, head=args.head, item_id=args.item,
            dry_run=args.dry_run, keep_open=args.keep_open,
        )
    if args.command == "ledger":
        from harness.commands.ledger import ledger

        return ledger(repo=repo, target=args.target, as_json=args.json)
    if args.command == "report":
        from harness.commands.report import report

        return report(repo=repo, out=args.out, serve=args.serve, host=args.host, port=args.port)
    if args.command == "selectors":
        from harness.commands.selectors import selectors

        return selectors(
            repo=repo, action=args.action, group=getattr(args, "group", None),
            item=getattr(args, "item", None), jobs=getattr(args, "jobs", 1),
            as_json=getattr(args, "json", False), check=getattr(args, "check", False),
            selector=getattr(args, "selector", None),
        )
    if args.command == "bisect":
        from harness.commands.bisect import bisect

        return bisect(repo=repo, selector=args.selector, good=args.good, bad=args.bad, as_json=args.json)
    raise AssertionError(f"unhandled command {args.command}")


def _write_crash_log() -> Path:
    fd, name = tempfile.mkstemp(prefix="harness-crash-", suffix=".log")
    with os.fdopen(fd, "w") as fh:
        fh.write(f"harness {__version__}, python {sys.version}\nargv: {sys.argv!r}\n\n")
        fh.write(traceback.format_exc())
    return Path(name)


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return _dispatch(args)
    except HarnessError as exc:
        print(f"harness: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("harness: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except Exception as exc:  # noqa: BLE001 - the one place that turns a bug into a crash report
        log = _write_crash_log()
        print(f"harness: unexpected error: {type(exc).__name__}: {exc}\n"
              f"A crash report was written to {log}; please attach it to a bug report.", file=sys.stderr)
        return EXIT_CRASH


if __name__ == "__main__":
    raise SystemExit(main())
