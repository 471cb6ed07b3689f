"""Where a parallel worker's things live, named from its item id alone, so that a harness restarted after
a crash finds every one of them without any other record:

    <git dir>/harness/workers/<ITEM>/journal.json      the attempt's journal (harness.durability.lock.Journal)
    <git dir>/harness/workers/<ITEM>/<repo folder>/    the worker's worktree (inside the git dir, never
                                                       inside the working tree)
    refs/heads/harness/work/<ITEM>                     the worktree's branch
    refs/harness/lease/<ITEM>                          the lease on the item (harness.parallel.lease)
    refs/harness/failed/<ITEM>/<n>                     a failed attempt's change (parent: its base)
    refs/harness/aborted/<ITEM>/<n>                    an interrupted attempt's work
    refs/harness/left-out/<ITEM>/<n>                   the files a GREEN attempt's commit left out (a child
                                                       of its change commit)
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from harness.durability.lock import STATE_DIR

WORKERS_DIR = "workers"
BRANCH_PREFIX = "harness/work/"
LEASE_PREFIX = "refs/harness/lease/"
JOURNAL_FILE = "journal.json"


@dataclass(frozen=True)
class WorkerPlace:
    """One item's worker: its folder under the git dir, worktree, branch, lease ref and journal name."""

    item_id: str
    folder: Path
    worktree: Path
    branch: str
    lease_ref: str
    journal_name: str  # relative to <git dir>/harness/, as harness.durability.lock.Journal takes it


def workers_root(git_dir: Path) -> Path:
    return Path(git_dir) / STATE_DIR / WORKERS_DIR


def place_for(git_dir: Path, repo_folder_name: str, item_id: str) -> WorkerPlace:
    """The worker places of `item_id`. The worktree keeps the repository's folder name: some tools and test
    suites look at the root folder's name."""
    folder = workers_root(git_dir) / item_id
    return WorkerPlace(item_id, folder, folder / repo_folder_name, BRANCH_PREFIX + item_id,
                       LEASE_PREFIX + item_id, f"{WORKERS_DIR}/{item_id}/{JOURNAL_FILE}")


def aborted_ref(item_id: str, attempt: int) -> str:
    return f"refs/harness/aborted/{item_id}/{attempt}"


def left_out_ref(item_id: str, attempt: int) -> str:
    return f"refs/harness/left-out/{item_id}/{attempt}"
