"""`harness init`: a commented harness.yaml and an empty ledger, never overwriting work."""
from __future__ import annotations

from pathlib import Path

from harness.atomic import atomic_write_text
from harness.config import DEFAULT_CONFIG_YAML, load_config
from harness.errors import HarnessError
from harness.gitops import open_repo

LEDGER_SKELETON = """# Fix Plan

Items are `## [ID] Title` headings followed by `- Key: value` fields; see docs/specs/ledger.md.
The harness edits only Status lines and appends attempt lines.
"""


def init(*, repo: Path, force: bool = False) -> int:
    """Write the files; commit nothing (a fresh `git init` with no commit is fine) and print the next step."""
    git_repo = open_repo(repo, require_commit=False)
    root = Path(git_repo.working_tree_dir)
    config_path = root / "harness.yaml"
    if config_path.exists() and not force:
        raise HarnessError(f"{config_path} already exists; pass --force to overwrite it")
    atomic_write_text(config_path, DEFAULT_CONFIG_YAML)
    print(f"wrote {config_path}")
    config = load_config(root)
    ledger_path = root / config.ledger
    if ledger_path.exists():
        print(f"kept the existing ledger {ledger_path}")
    else:
        atomic_write_text(ledger_path, LEDGER_SKELETON)
        print(f"wrote {ledger_path}")
    first = "" if git_repo.head.is_valid() else " (this is the repository's first commit; the harness needs one)"
    print(f"next: add an item to {config.ledger} (docs/specs/ledger.md), then commit both files{first}:\n"
          f"  git add harness.yaml {config.ledger} && git commit -m 'harness: init'\n"
          "then `harness next` shows the item and `harness run` proves it")
    return 0
