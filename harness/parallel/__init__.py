"""Parallel loops with proven merges: `harness loop --workers N`.

Up to N ledger items run at once, each by a worker in its own git worktree on its own branch (under the
git dir), proven there as `harness run` proves; their changes land on the branch one at a time, each
merged onto the current head and gated again on the merged tree before its one commit. Every GREEN commit
was proven on the tree it produced.

    places      where a worker's journal, worktree, branch, lease and saved work live
    lease       `refs/harness/lease/<ITEM>` by compare-and-swap, naming its holder
    ready       which items may start beside the running ones (dependencies, leases)
    worker      a worker's set-up and its thread: agent and proof in the worktree
    landing     the merge queue's step: merge, merged-tree gates, record and commit
    pool        the loop: start workers, land them one at a time, stop conditions, Ctrl-C
    recovery    workers left behind by a killed harness: groups ended, work saved, attempt ABORTED
    events      one line (or JSON line) per worker event, and the summary table
"""
