"""`harness verify --base REV [--head REV] [--item ITEM]`: the same proof for committed changes."""
from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from harness.commands._shared import print_result, repo_lock
from harness.config import judging_settings
from harness.errors import HarnessError
from harness.gitops import commits_between, head_sha, is_ancestor, resolve, trailers_of, working_changes
from harness.iteration import IterationRequest, execute
from harness.ledger import Ledger, ensure_plain_names
from harness.workspace import Workspace, open_workspace


def _item_from_trailers(ws: Workspace, ledger: Ledger, base: str, head: str) -> str:
    shas = commits_between(ws.repo, base, head)
    ids = sorted({value for sha in shas for value in trailers_of(ws.repo, sha).get("Harness-Item", [])})
    if len(ids) == 1:
        return ids[0]
    raise HarnessError("name the ledger item with --item ITEM (the commits "
                       f"{base[:10]}..{head[:10]} carry {'no' if not ids else 'several'} Harness-Item "
                       f"trailers{': ' + ', '.join(ids) if ids else ''})")


def verify(*, repo: Path, base: str, head: str = "HEAD", item_id: str | None = None,
           dry_run: bool = False, keep_open: bool = False) -> int:
    ws = open_workspace(repo)
    with repo_lock(ws, "harness verify"):
        base_sha, head_sha_ = resolve(ws.repo, base), resolve(ws.repo, head)
        if base_sha == head_sha_:
            raise HarnessError(f"--base {base} and --head {head} are the same commit: there is no change")
        if not is_ancestor(ws.repo, base_sha, head_sha_):
            raise HarnessError(f"--base {base} is not an ancestor of --head {head}")
        judged = judging_settings(ws.repo, base_sha, ws.config)  # B's harness.yaml judges, not the change's
        ws = replace(ws, config=judged.config)
        if not dry_run:
            dirty = [c.path for c in working_changes(ws.repo)
                     if c.path == ws.config.ledger or c.path.startswith(ws.config.evidence_root.rstrip("/") + "/")]
            if dirty:
                raise HarnessError("the ledger or evidence folders have uncommitted edits ("
                                   + ", ".join(dirty) + "); commit or discard them first")
            if head_sha(ws.repo) != head_sha_ and not is_ancestor(ws.repo, head_sha_, head_sha(ws.repo)):
                raise HarnessError(f"--head {head} is not HEAD nor an ancestor of it; check out the branch "
                                   "that holds the change first")
        ledger = ws.load_ledger()
        item = ledger.get(item_id or _item_from_trailers(ws, ledger, base_sha, head_sha_))
        ensure_plain_names(item)
        request = IterationRequest(root=ws.root, config=ws.config, item=item, base=base_sha, head=head_sha_,
                                   keep_open=keep_open, dry_run=dry_run, ledger=ledger, judged=judged)
        result = execute(request, ws.repo)
    print_result(result)
    return 0 if result.succeeded else 1
