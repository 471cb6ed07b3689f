"""`pip install -e .` alone must give the harness everything it imports: pytest above all, since the
harness runs it on every repository (a fresh venv without it failed `harness demo`)."""
from __future__ import annotations

import ast
import re
import sys
import tomllib
from importlib.metadata import packages_distributions
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _normal(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _third_party_imports() -> dict[str, str]:
    """Top-level module -> a file of the harness package that imports it (stdlib and the harness left out)."""
    found: dict[str, str] = {}
    for path in sorted((ROOT / "harness").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else \
                [node.module] if isinstance(node, ast.ImportFrom) and node.module and not node.level else []
            for name in names:
                top = name.split(".")[0]
                if top not in sys.stdlib_module_names and top != "harness":
                    found.setdefault(top, str(path.relative_to(ROOT)))
    return found


def test_every_module_the_harness_imports_is_a_declared_dependency() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    declared = {_normal(re.split(r"[<>=!~\[; ]", requirement, maxsplit=1)[0]) for requirement in project["dependencies"]}
    providers = packages_distributions()
    imports = _third_party_imports()
    assert "pytest" in imports  # the recorder plugin the harness loads into every pytest run
    missing = {module: where for module, where in imports.items()
               if not {_normal(d) for d in providers.get(module, [module])} & declared}
    assert not missing, f"imported by the harness but not in [project.dependencies]: {missing}"
