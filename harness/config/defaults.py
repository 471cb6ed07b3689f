"""The commented default harness.yaml that `harness init` writes (a test checks it parses to `Config()`)."""
from __future__ import annotations

DEFAULT_CONFIG_YAML = """\
# harness.yaml: configuration of the TDD loop harness. Every key is optional; the values below are
# the defaults. Unknown keys are rejected. Paths are relative to the repository root.
# A change is proven under the harness.yaml of its base commit: an edit here takes effect once it is
# committed (agent, commit, push, leases, workers and planner are read from the working tree at once).

ledger: docs/fix_plan.md            # the fix plan: items, status, attempts
evidence_root: plans/active         # evidence goes to <evidence_root>/<initiative>/reports/<stamp>/<slug>/
test_globs:                         # changed files matching these are "test changes" (used for the RED proof)
  - "tests/**"
  - "**/test_*.py"
  - "**/*_test.py"
  - "**/conftest.py"

pytest:
  command: ["{python}", "-m", "pytest"]   # "{python}" is the harness's own interpreter
  args: []                                 # extra arguments for every pytest run
  env: {}                                  # extra environment, e.g. {PYTHONPATH: src}; your shell's
                                           # PYTEST_* variables never reach pytest: set them here
  timeout_s: 1800
  warm_start: true     # the default command starts as a fork of a server that imported pytest already
                       # (about a third of the CPU per run; a run that would differ starts cold)

known_failures: ci/known_failures.txt   # node ids allowed to fail in the full suite (null: none)

gates:
  collect: true             # `pytest --collect-only` must succeed
  regression: true          # the item's regression selectors must pass
  full_suite:               # the full suite must pass, apart from known failures (or `full_suite: false`)
    enabled: true
    args: []
    jobs: auto              # auto: pytest-xdist, one worker per CPU, when it is installed; or a number
  lint: null                # or {command: ["ruff", "check", "."]}
  integrity: true           # no test removed, skipped or weakened; no known failure or test filter added
  reruns: 1                 # a proven RED or GREEN selector runs again this many times; a flaky test proves nothing
  mutation:                 # mutation strength on the changed lines, for items with `- Mutation: required`
    enabled: false          # true: for every item
    min_score: 0.8          # killed / (killed + survived)
    max_mutants: 40
    timeout_s: null         # per mutant; null: 10 s + 4 x the GREEN stage's time
    jobs: auto              # mutants run at once, each in its own copy of the tree

holdout: null               # or {dir: ../holdout}: held-out tests for `- Acceptance:` selectors (outside the repo)
concurrent_stages: auto     # stages in different trees (RED's worktree, GREEN's tree, copies) run at once:
                            # auto: with 4 or more usable cores; true or false: always or never

max_attempts: 3
workers: 1                  # `harness loop`: items run at once, each in its own worktree (--workers N)

caps:
  changed_file_bytes: 5000000     # changed files larger than this are left out of the commit (and listed)
  evidence_file_bytes: 1000000    # evidence files larger than this are stored gzip-compressed

ignore: []                        # globs of changed files never committed (listed in the summary)

commit:                           # identity of the harness's commits
  name: ptycho-harness
  email: harness@localhost

agent:
  preset: null              # claude-code | codex | aider | gemini-cli: that CLI's documented non-interactive
                            # argv, timeout and env (README, "Agent presets"); a key set here wins over it
  command: null             # argv list, e.g. ["claude", "-p"]; with shell: true, one string for /bin/sh -c
  shell: false
  timeout_s: 3600           # a preset's own when it sets one
  env: {}                   # extra environment for the agent, laid over a preset's (committed: no secrets)
  prompt_template: null     # repo-relative path of a jinja2 template; null: the built-in prompt
  phases: null              # or [red, green]: the agent is run once per phase
  findings: docs/findings.md  # the prompt quotes the entries of this file that name the item; null: none
  sandbox: auto             # auto: in bubblewrap where a working bwrap is found, else off with a warning;
                            # bwrap: refuse to run the agent without it; off: no sandbox (README, Sandbox)
  network: on               # off: the sandboxed agent has no network (most agents call an API: keep on)
  writable: []              # paths the sandboxed agent may write besides its tree, e.g. [~/.codex]

push: null                  # or {remote: origin, branch: main}
leases:                     # several machines, one remote (README): with push, the loop leases each item there
  enabled: false
  ttl: 600                  # seconds without a heartbeat after which another harness may take an item over

planner: null               # or {command: [...], shell: false, timeout_s: 1800, prompt_template: null,
                            #     require_acceptance: false}: `harness plan` proposes items through it

selectors:
  extra: []                 # [{selector: "tests/test_x.py::test_y", name: "...", groups: [...]}]
  history: plans/selectors/history.jsonl
"""
