"""Fixtures shared by the fault-tier modules that give each scenario a world of its own."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from e2e.stack import Stack
from support.compose_stack import shared_stack
from support.services import apod_test_server, require_images

from faults.world import World, fresh_world


@pytest.fixture(scope="module")
def server():
    require_images("extract", "transform", "load", "version")
    with apod_test_server() as srv:
        yield srv


@pytest.fixture
def w(server, request) -> Iterator[World]:
    """A fresh database and fresh volumes; the server's faults and edits reset around it."""
    server.control("reset")
    with fresh_world(server, request.node.name[5:25].strip("_").lower()) as fresh:
        yield fresh
    server.control("reset")  # entry edits must not leak into the next scenario


@pytest.fixture(scope="session")
def compose_stack(tmp_path_factory) -> Iterator[Stack]:
    """The session's compose stack, the one the e2e tier uses too."""
    with shared_stack(tmp_path_factory) as stack:
        yield stack
