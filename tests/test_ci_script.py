"""`.ci/run` is what CI executes: every repository file it cites must exist."""
from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_files_cited_by_the_ci_script_exist() -> None:
    text = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    cited = set(re.findall(r"\b([\w./-]+\.(?:md|txt|toml|yaml|yml|py|cfg))\b", text))
    assert cited, "the CI script cites no file; this test would check nothing"
    missing = sorted(name for name in cited if not (ROOT / name).exists())
    assert not missing, f".ci/run cites files that are not in the repository: {missing}"
