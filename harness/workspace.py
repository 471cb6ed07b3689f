"""The repository a command works on: git repo, root, config and ledger path, opened once.

`config` is the working tree's harness.yaml. An attempt runs under the base commit's instead (with the
working tree's operator settings: harness.config.judging); the commands that prove make that Workspace
with `dataclasses.replace(ws, config=judging_settings(...).config)`."""
from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

import git

from harness.config import Config, load_config
from harness.gitops import common_git_dir, open_repo
from harness.ledger import Ledger, load_ledger, unknown_status_warnings


@dataclass(frozen=True)
class Workspace:
    repo: git.Repo
    root: Path
    config: Config

    @property
    def git_dir(self) -> Path:
        """The common git dir: shared by all worktrees, so one lock covers the whole repository."""
        return common_git_dir(self.repo)

    @property
    def ledger_path(self) -> Path:
        return self.root / self.config.ledger

    def load_ledger(self) -> Ledger:
        """The ledger, with a warning on stderr for each item whose Status is unknown (it never runs)."""
        ledger = load_ledger(self.ledger_path)
        for warning in unknown_status_warnings(ledger, self.config.ledger):
            print(f"harness: warning: {warning}", file=sys.stderr)
        return ledger


def open_workspace(path: Path) -> Workspace:
    repo = open_repo(path)
    root = Path(repo.working_tree_dir).resolve()
    return Workspace(repo, root, load_config(root))
