"""The compose and browser tests: their stack is the session's `compose_stack`
(tests/support/compose_stack.py, shared with the fault tier)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from support.compose_stack import shared_stack
from support.services import REPO

from e2e.stack import Stack


@pytest.fixture(scope="session")
def artifacts_dir() -> Path:
    path = REPO / "artifacts"
    path.mkdir(exist_ok=True)
    return path


@pytest.fixture(scope="session")
def compose_stack(tmp_path_factory) -> Iterator[Stack]:
    """The session's compose stack, the one the fault tier uses too."""
    with shared_stack(tmp_path_factory) as stack:
        yield stack
