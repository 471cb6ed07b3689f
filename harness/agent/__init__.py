"""The agent: any command that edits the working tree. `prompt` renders what it is asked, `run` starts it in
its own process group with a timeout, `sandbox` (with `sandbox_mounts`) runs it in bubblewrap and records
what it could reach, `stage` is its turn in an iteration (and takes back its edits to harness-owned files).
Nothing the agent says is evidence: the harness proves the change itself. `planner/` is the other role run
the same way: it proposes ledger items, and nothing enters the ledger before the harness has checked them."""
