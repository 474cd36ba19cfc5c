"""The compose stack of a test session, one for the e2e and fault tiers: each tier's
conftest has a session fixture `compose_stack` that enters `shared_stack`, which starts
the stack for the first and removes it after the last (they end together, at the end of
the session).

The session fixture writes an env file with its own project name, ports, volume and
network names (e2e/stack.py), does what `make demo` does against it
(scripts/compose-up.sh --offline, then one run of apod_etl for DEMO_DATE) and removes the
stack with its volumes at the end (APOD_KEEP_STACK=1 leaves it running to look at).
Its alerts go to its own alert catcher (profile alerts; e2e/stack.py).
Any other stack, the user's `make up` included, is never reused, changed or stopped:
the fixture checks at the end that every container and volume that was not its own is
still there as it was.
"""

from __future__ import annotations

import contextlib
import json
import os
import time
from collections.abc import Iterator

import pytest
from e2e.stack import DEMO_DATE, UP_TIMEOUT, Stack, new_env_file

from support.services import docker, docker_available


def others(stack: Stack) -> dict[str, dict]:
    """The containers (project, state, start time, restarts) and volumes of every other
    compose project: what a stack of the user's is made of."""
    ids = docker("ps", "-aq", "--filter", "label=com.docker.compose.project").stdout.split()
    containers = {}
    for info in json.loads(docker("inspect", *ids).stdout) if ids else []:
        if info["Config"]["Labels"].get("com.docker.compose.project") == stack.project:
            continue
        state, project = info["State"], info["Config"]["Labels"]["com.docker.compose.project"]
        containers[info["Id"]] = (
            project,
            state["Status"],
            state["StartedAt"],
            info["RestartCount"],
        )
    listing = docker(
        "volume", "ls", "--filter", "label=com.docker.compose.project",
        "--format", '{{.Name}} {{.Label "com.docker.compose.project"}}',
    ).stdout.split("\n")  # fmt: skip
    volumes = {
        name: project
        for name, _, project in (line.partition(" ") for line in listing if line)
        if project != stack.project
    }
    return {"containers": containers, "volumes": volumes}


def leftovers(stack: Stack) -> list[str]:
    """What of this stack is still there after its teardown."""
    label = f"label=com.docker.compose.project={stack.project}"
    found = docker("ps", "-aq", "--filter", label).stdout.split()
    found += docker("ps", "-aq", "--filter", f"network={stack.network}").stdout.split()
    exists = [docker("volume", "inspect", v, check=False).returncode == 0 for v in stack.volumes]
    found += [v for v, there in zip(stack.volumes, exists, strict=True) if there]
    found += docker("volume", "ls", "-q", "--filter", label).stdout.split()
    found += docker("network", "ls", "-q", "--filter", f"name=^{stack.network}$").stdout.split()
    return found


_shared: dict = {"stack": None, "users": 0}


@contextlib.contextmanager
def shared_stack(tmp_path_factory) -> Iterator[Stack]:
    """The session's stack: started on first use, removed when its last user is done."""
    if _shared["stack"] is None:
        _shared["stack"] = _start(tmp_path_factory)
    _shared["users"] += 1
    try:
        yield _shared["stack"][0]
    finally:
        _shared["users"] -= 1
        if _shared["users"] == 0:
            stack, before = _shared["stack"]
            _shared["stack"] = None
            _remove(stack, before)


def _start(tmp_path_factory) -> tuple[Stack, dict]:
    if not docker_available():
        pytest.skip("no Docker engine answers (make test starts one)")
    stack = Stack(env_file=new_env_file(tmp_path_factory.mktemp("stack") / "stack.env"))
    before = others(stack)
    try:
        started = time.monotonic()
        up = stack.script("compose-up.sh", "--offline", timeout=UP_TIMEOUT)
        stack.up_seconds = time.monotonic() - started
        if up.returncode != 0:
            pytest.fail(f"compose-up.sh --offline failed ({up.returncode}):\n{up.stderr[-5000:]}")
        stack.demo = stack.run_dag(DEMO_DATE)
    except BaseException:
        _remove(stack, before)
        raise
    return stack, before


def _remove(stack: Stack, before: dict) -> None:
    if os.environ.get("APOD_KEEP_STACK") != "1":
        down = stack.script("compose-down.sh", "--volumes")
        assert down.returncode == 0, down.stderr[-3000:]
        assert leftovers(stack) == [], f"{stack.project} was not removed"
    # Judged on the stacks still up at the end: one its owner took down meanwhile (another
    # test session's, say) is gone for reasons of its own.
    after = others(stack)
    live = {container[0] for container in after["containers"].values()}
    gone = {v for v, project in before["volumes"].items() if project in live} - set(
        after["volumes"]
    )
    assert not gone, f"volumes of another stack were removed: {sorted(gone)}"
    changed = {
        cid: state
        for cid, state in before["containers"].items()
        if state[0] in live and after["containers"].get(cid) != state
    }
    assert changed == {}, "containers of another stack were stopped, removed or restarted"
