from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from tests.harness.gitops.helpers import BASE_FILES


@pytest.fixture
def repo_path(make_repo: Callable[..., Path]) -> Path:
    return make_repo(BASE_FILES)
