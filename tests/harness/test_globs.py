"""gitignore-like matching of repo-relative paths."""
from __future__ import annotations

import pytest

from harness.globs import matches_any


@pytest.mark.parametrize(
    ("path", "glob", "expected"),
    [
        ("tests/a/b.py", "tests/**", True),
        ("tests_x/a.py", "tests/**", False),
        ("test_top.py", "**/test_*.py", True),
        ("pkg/sub/test_x.py", "**/test_*.py", True),
        ("pkg/sub/mytest_x.py", "**/test_*.py", False),
        ("pkg/a_test.py", "**/*_test.py", True),
        ("conftest.py", "**/conftest.py", True),
        ("a/b/conftest.py", "**/conftest.py", True),
        ("deep/x.log", "*.log", True),
        ("deep/x.log", "/*.log", False),
        ("x.log", "/*.log", True),
        ("src/build/out.o", "build/", True),
        ("docs/guide/a.md", "docs", True),
        ("a/b/c/d.py", "a/**/d.py", True),
        ("a/d.py", "a/**/d.py", True),
        ("a/x/y.py", "a/*.py", False),
        ("f1.txt", "f[0-9].txt", True),
        ("fx.txt", "f[0-9].txt", False),
        ("fx.txt", "f[!0-9].txt", True),
        ("./tests/x.py", "tests/**", True),
    ],
)
def test_matches_any_gitignore_semantics(path: str, glob: str, expected: bool) -> None:
    assert matches_any(path, [glob]) is expected


def test_matches_any_over_several_globs() -> None:
    assert matches_any("src/x.py", ["*.md", "src/**"])
    assert not matches_any("src/x.py", [])
