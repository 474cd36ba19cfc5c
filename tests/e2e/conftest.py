"""The compose and browser tests: their stack is the session's `compose_stack`
(tests/support/compose_stack.py, shared with the fault tier)."""

from __future__ import annotations

from pathlib import Path

import pytest
from support.services import REPO


@pytest.fixture(scope="session")
def artifacts_dir() -> Path:
    path = REPO / "artifacts"
    path.mkdir(exist_ok=True)
    return path
