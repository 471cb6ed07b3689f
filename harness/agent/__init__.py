"""The agent: any command that edits the working tree. `prompt` renders what it is asked, `run` starts it in
its own process group with a timeout, `stage` is its turn in an iteration (and takes back its edits to
harness-owned files). Nothing the agent says is evidence: the harness proves the change itself."""
