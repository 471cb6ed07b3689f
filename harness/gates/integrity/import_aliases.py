"""What each name a module imports stands for, as the integrity gate's source scans read it."""
from __future__ import annotations

import ast


def import_aliases(tree: ast.AST) -> dict[str, str]:
    """Every name `tree`'s absolute imports bind, mapped to the dotted name it stands for: `import numpy as np`
    -> {"np": "numpy"}, `import os.path` -> {"os": "os"}, `from pytest import raises as r` ->
    {"r": "pytest.raises"}. Imports anywhere in the tree count (a function's own import included); relative
    imports are left out."""
    aliases: dict[str, str] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                head = alias.name.partition(".")[0]
                aliases[alias.asname or head] = alias.name if alias.asname else head
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            for alias in node.names:
                aliases[alias.asname or alias.name] = f"{node.module}.{alias.name}"
    return aliases
