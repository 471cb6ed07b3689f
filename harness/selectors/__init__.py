"""Selectors: the pytest selectors a repository names, run together, remembered, and bisected.

    registry    every selector the ledger (RED, Regression) and harness.yaml (`selectors.extra`) name,
                with its groups; docs/TEST_SUITE_INDEX.md rendered from it
    runs        many selectors in few pytest processes, each result mapped back to its selector
    history     one JSON line per `harness selectors run`, and a run compared against it
    bisect      the first commit where a selector stopped passing (`git bisect run` in a worktree)

The `harness selectors` and `harness bisect` commands (harness/commands/) are their user interface.
"""
