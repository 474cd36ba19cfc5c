"""Session-wide services of the k8s tier: one project registry for every test that pulls
from one (the pod contract, the up scripts' kind path, the smoke), and the removal of
whatever Docker objects the cluster stand-in made (its kind nodes and network)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import stand_in
import stub_registry
from support.registry import Registry, project_registry


@pytest.fixture(scope="session")
def registry() -> Iterator[Registry]:
    with project_registry() as running:
        yield running
        stub_registry.remove_leftovers(stand_in.SESSION)
