"""The repository a command works on: git repo, root, config and ledger path, opened once."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import git

from harness.config import Config, load_config
from harness.gitops import common_git_dir, open_repo


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


def open_workspace(path: Path) -> Workspace:
    repo = open_repo(path)
    root = Path(repo.working_tree_dir).resolve()
    return Workspace(repo, root, load_config(root))
