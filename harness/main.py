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
    return parser


def _dispatch(args: argparse.Namespace) -> int:
    repo = Path(args.repo)
    if args.command == "init":
        from harness.commands.init import init

        return init(repo=repo, force=args.force)
    if args.command == "next":
        from harness.commands.next import next_item

        return next_item(repo=repo, as_json=args.json)
    if args.command == "run":
        from harness.commands.run import run

        return run(repo=repo, item_id=args.item, no_agent=args.no_agent, keep_open=args.keep_open)
    if args.command == "verify":
        from harness.commands.verify import verify

        return verify(
            repo=repo, base=args.base, head=args.head, item_id=args.item,
            dry_run=args.dry_run, keep_open=args.keep_open,
        )
    if args.command == "ledger":
        from harness.commands.ledger import ledger

        return ledger(repo=repo, target=args.target, as_json=args.json)
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
