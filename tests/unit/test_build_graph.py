"""The image builder's plan, without building: the graph images/build.toml and the
Dockerfiles describe (parents, order, cycles and missing parents), tags, labels, the
`docker build` each image gets (the plain builder's Dockerfile too), and the scheduler."""

from __future__ import annotations

import shutil
import subprocess
import sys
import threading
import time
import tomllib
from pathlib import Path

import pytest

from apod_build.builder import BUILDKIT, PLAIN, Builder, NodeBuilder, Processes
from apod_build.content_tags import LABEL_KEY
from apod_build.dockerfile import without_run_mounts
from apod_build.errors import InputError
from apod_build.graph import REPO, Graph
from apod_build.labels import labels
from apod_build.scheduler import schedule

pytestmark = pytest.mark.unit

VERSION = (REPO / "VERSION").read_text().strip()
PG_MAJOR = (REPO / "images" / "postgres" / "PG_MAJOR").read_text().strip()


def checkout(tmp_path: Path, dockerfiles: dict[str, str]) -> Path:
    """A checkout with the graph's data and these images/<name>/Dockerfile."""
    for relative in ("images/build.toml", "VERSION", "images/postgres/PG_MAJOR"):
        (tmp_path / relative).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(REPO / relative, tmp_path / relative)
    for name, text in dockerfiles.items():
        (tmp_path / "images" / name).mkdir(parents=True, exist_ok=True)
        (tmp_path / "images" / name / "Dockerfile").write_text(text)
    return tmp_path


def test_every_dockerfile_is_an_image_and_its_parents_are_what_it_builds_from():
    graph = Graph.load()
    assert graph.names() == sorted(p.parent.name for p in REPO.glob("images/*/Dockerfile"))
    extract = graph.image("extract")
    assert (extract.parents, extract.bases) == (("package-builder", "base"), ())
    airflow = graph.image("airflow")
    assert (airflow.parents, airflow.bases) == (("builder",), ("python",))
    assert graph.image("postgres").bases == ("debian",)
    assert graph.image("base").bases == ("python",)
    # A stage of its own (COPY --from=weed) is no parent.
    assert graph.image("objectstore").parents == ("builder",)


def test_a_new_image_is_picked_up_from_its_dockerfile_alone(tmp_path):
    root = checkout(tmp_path, {
        "base": "ARG PYTHON_IMAGE=python:3.11-slim-bookworm\nFROM ${PYTHON_IMAGE}\n",
        "alerts": "ARG VERSION\nFROM apod-base:${VERSION} AS run\nCOPY --from=run /a /b\n",
    })  # fmt: skip
    graph = Graph.load(root)
    assert graph.names() == ["alerts", "base"]
    assert graph.image("alerts").parents == ("base",)
    assert graph.plan(["alerts"]) == ["@python", "base", "alerts"]


def test_the_plan_puts_parents_first_and_otherwise_keeps_the_order_asked_for():
    graph = Graph.load()
    plan = graph.plan(["version", "postgres"])
    # Made locally, the Python base builds on the Debian one: after it when both are asked.
    assert plan == [
        "@debian", "@python", "base", "builder", "package-builder", "version", "postgres",
    ]  # fmt: skip
    assert graph.waits_for("@python", plan) == ("@debian",)
    assert graph.plan(["airflow"]) == ["@python", "base", "builder", "airflow"]
    assert graph.waits_for("@python", graph.plan(["airflow"])) == ()
    assert graph.plan(["postgres", "airflow"])[:2] == ["@debian", "postgres"]
    everything = graph.plan(graph.names())
    for node in everything:
        assert all(
            everything.index(p) < everything.index(node) for p in graph.waits_for(node, everything)
        )


def test_a_cycle_and_a_missing_parent_are_refused_with_what_to_fix(tmp_path):
    root = checkout(tmp_path, {
        "a": "FROM apod-b:${VERSION}\n",
        "b": "ARG VERSION\nFROM apod-c:${VERSION}\n",
        "c": "FROM apod-a:1\n",
        "lost": "FROM apod-nowhere:1\n",
    })  # fmt: skip
    graph = Graph.load(root)
    with pytest.raises(InputError, match=r"in a cycle: a -> b -> c -> a$"):
        graph.plan(["a"])
    with pytest.raises(
        InputError, match=r"images/lost/Dockerfile builds FROM apod-nowhere:\S+: no images/nowhere/"
    ):
        graph.plan(["lost"])
    with pytest.raises(InputError, match=r"no images/ghost/Dockerfile"):
        graph.plan(["ghost"])


def build_cli(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "apod_build", *args],
        env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(REPO / "tools"), **env},
        capture_output=True, text=True, check=False, timeout=60,
    )  # fmt: skip


def test_the_command_line_lists_tags_and_refuses_unknown_images_without_building():
    listed = build_cli("--tags")
    assert listed.returncode == 0, listed.stderr
    graph = Graph.load()
    assert dict(line.split() for line in listed.stdout.splitlines()) == {
        name: graph.tag(name, environ={}) for name in graph.names()
    }
    unknown = build_cli("nothere")
    assert unknown.returncode == 2
    assert "no images/nothere/Dockerfile" in unknown.stderr
    assert build_cli("--tag", "x:1", "load", "version").returncode == 2


def test_tags_come_from_the_data_postgres_by_its_major():
    graph = Graph.load()
    assert graph.tag("extract", environ={}) == f"apod-extract:{VERSION}"
    assert graph.tag("postgres", environ={}) == f"apod-postgres:{PG_MAJOR}"
    assert graph.tag("postgres", environ={"APOD_LOCAL_POSTGRES": "apod-postgres:x"}) == (
        "apod-postgres:x"
    )
    assert graph.tag("load", environ={}, VERSION="other") == "apod-load:other"
    assert graph.build_tag("postgres") == PG_MAJOR
    assert graph.build_args("extract") == {
        "VERSION": VERSION,
        "PG_MAJOR": PG_MAJOR,
        "STEP": "extract",
    }


def test_labels_come_from_the_pyproject_files():
    graph = Graph.load()
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    package = tomllib.loads((REPO / "images/extract/pyproject.toml").read_text())["project"]
    assert labels(graph, "extract", environ={}) == {
        "org.opencontainers.image.title": "apod-extract",
        "org.opencontainers.image.version": VERSION,
        "org.opencontainers.image.licenses": project["license"]["text"],
        "org.opencontainers.image.source": project["urls"]["Source"],
        "org.opencontainers.image.description": package["description"],
    }
    postgres = labels(graph, "postgres", environ={"APOD_LOCAL_POSTGRES": "apod-postgres:15-x"})
    assert postgres["org.opencontainers.image.version"] == "15-x"
    assert "org.opencontainers.image.description" not in postgres  # in its Dockerfile


def test_each_image_gets_its_arguments_bases_and_labels(tmp_path):
    graph = Graph.load()
    builder = Builder.of(graph, BUILDKIT)
    nodes = NodeBuilder(graph, builder, tmp_path, {"airflow": "c0ffee"}, Processes(), environ={})
    nodes.base_images["python"] = "apod-local/python:3.11"
    command = nodes.command("airflow", "apod-airflow:t")
    assert command[:4] == ["docker", "build", "-f", str(REPO / "images/airflow/Dockerfile")]
    assert command[-3:] == ["-t", "apod-airflow:t", "."]
    pairs = list(zip(command[4:-3:2], command[5:-3:2], strict=True))
    assert ("--build-arg", "PYTHON_IMAGE=apod-local/python:3.11") in pairs
    assert ("--build-arg", "STEP=airflow") in pairs
    assert ("--label", f"{LABEL_KEY}=c0ffee") in pairs
    assert ("--label", "org.opencontainers.image.title=apod-airflow") in pairs
    assert not any(v.startswith("APOD_WHEELHOUSE") for _, v in pairs)


def test_the_plain_builder_builds_the_dockerfiles_without_their_run_mounts(tmp_path):
    graph = Graph.load()
    nodes = NodeBuilder(graph, Builder.of(graph, PLAIN), tmp_path, {"package-builder": "t"},
                        Processes(), environ={})  # fmt: skip
    command = nodes.command("package-builder", "apod-package-builder:t")
    assert command[3] == str(tmp_path / "package-builder.Dockerfile")
    assert "APOD_WHEELHOUSE=1" in command
    original = (REPO / "images/package-builder/Dockerfile").read_text()
    rewritten = (tmp_path / "package-builder.Dockerfile").read_text()
    assert "--mount=" in original
    assert "--mount=" not in rewritten
    assert rewritten == without_run_mounts(original)
    assert len(rewritten.splitlines()) == len(original.splitlines())
    assert without_run_mounts(
        "RUN --mount=type=cache,target=/c \\\n  --mount=type=tmpfs,target=/t x\n"
    ) == ("RUN \\\n  x\n")


def test_the_scheduler_builds_parents_first_side_by_side_and_stops_after_a_failure():
    waits = {"a": (), "b": (), "c": ("a",), "d": ("c",), "e": ()}
    lock, running, peak, events = threading.Lock(), [0], [0], []

    def build(node: str) -> None:
        with lock:
            running[0] += 1
            peak[0] = max(peak[0], running[0])
        time.sleep(0.05)
        with lock:
            running[0] -= 1
        if node == failing:
            raise RuntimeError(f"{node} failed")

    def started(node):
        events.append(("start", node))

    def ended(node, error):
        events.append(("end", node, error is None))

    failing = None
    assert schedule(list(waits), waits, 2, build, started, ended)
    assert peak[0] == 2
    assert events.index(("start", "c")) > events.index(("end", "a", True))
    assert events.index(("start", "d")) > events.index(("end", "c", True))
    events.clear()
    failing = "a"
    assert not schedule(list(waits), waits, 2, build, started, ended)
    begun = [e[1] for e in events if e[0] == "start"]
    assert "c" not in begun
    assert "d" not in begun
    assert ("end", "a", False) in events
