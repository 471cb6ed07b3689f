"""The stages that keep a proof from being gamed, as plans for harness.proof.stage_runner:

    integrity    on unless `gates.integrity: false`; after collect, in the tree GREEN runs in (it runs the
                 touched test modules there, and at the base in a worktree of its own; it reads the hooks
                 pytest ran with from collect's runs)
    acceptance   for an item with `- Acceptance:` selectors; after GREEN, in a temporary tree
    mutation     for an item with `- Mutation: required`, or every item with `gates.mutation.enabled`
                 (not one with `- Mutation: off`); after GREEN, in temporary copies

`finished` is filled with each stage's result as it ends; mutation reads GREEN's wall time from it.
"""
from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import git

from harness.config import CONFIG_FILENAME, Config, config_at
from harness.gates.acceptance import acceptance_stage
from harness.gates.integrity.gate import IntegrityInputs, integrity_gate
from harness.gates.mutation.gate import MutationInputs, mutation_gate
from harness.iteration.records import IterationRequest
from harness.ledger import Item
from harness.proof.changes import ChangeSet
from harness.proof.stage_records import StageResult
from harness.proof.stage_runner import StagePlan
from harness.pytest_run.runner import PytestSettings, parse_selector


def mutation_wanted(item: Item, enabled: bool) -> bool:
    return item.mutation == "required" or (enabled and item.mutation != "off")


def integrity_wanted(request: IterationRequest, changeset: ChangeSet, repo: git.Repo) -> bool:
    """The integrity gate runs when the base commit's harness.yaml has it on (the settings the attempt runs
    under, harness.config.judging): a change cannot switch the gate off for its own proof (it runs, and
    reports the change as gates-weakened)."""
    if request.config.gates.integrity:
        return True
    if not any(change.path == CONFIG_FILENAME for change in changeset.changes):
        return False
    at_base = config_at(repo, request.base)  # for a caller that gave the working tree's settings
    return (at_base or Config()).gates.integrity


def proof_plans(request: IterationRequest, changeset: ChangeSet, staging: Path, green_cwd: Path,
                repo: git.Repo, pytest: PytestSettings, finished: Mapping[str, StageResult]) -> dict[str, StagePlan]:
    cfg, item = request.config, request.item
    plans: dict[str, StagePlan] = {}
    if integrity_wanted(request, changeset, repo):
        inputs = IntegrityInputs(repo=repo, root=request.root, base=request.base, head=request.head,
                                 green_cwd=green_cwd, changeset=changeset, config=cfg, allowed=item.allow)
        def integrity_stage() -> StageResult:
            collect = finished.get("collect")
            hooks = [hook for o in (collect.outcomes if collect else ()) for hook in o.run.project_hooks]
            return integrity_gate(inputs, out_dir=staging / "gates", pytest=pytest, hooks=hooks)
        plans["integrity"] = StagePlan("integrity", integrity_stage, after=("collect",))
    if item.acceptance:
        plans["acceptance"] = StagePlan("acceptance", lambda: acceptance_stage(
            repo=repo, root=request.root, base=request.base, head=request.head, changeset=changeset, item=item,
            config=cfg, out_dir=staging / "acceptance", pytest=pytest), tree=None, after=("green",))
    if mutation_wanted(item, cfg.gates.mutation.enabled):
        def mutation_stage() -> StageResult:
            if not item.red:
                return StageResult("mutation", False, "mutation: required, but the item names no RED selector "
                                   "whose tests could kill a mutant")
            green = finished.get("green")
            inputs = MutationInputs(repo=repo, root=request.root, base=request.base, head=request.head,
                                    changeset=changeset, red=tuple(parse_selector(s) for s in item.red),
                                    settings=cfg.gates.mutation, green_wall_s=green.wall_s if green else 0.0)
            return mutation_gate(inputs, out_dir=staging / "gates", pytest=pytest)
        plans["mutation"] = StagePlan("mutation", mutation_stage, tree=None, after=("green",))
    return plans

