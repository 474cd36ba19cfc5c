"""Per-image content tags (apod_build.content_tags), on a temporary copy of the build
inputs: each image's tag moves with its own inputs and the images built FROM it, and
with nothing else. No image is built: the tags are known from the sources."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from k8s_render import REPO

pytestmark = pytest.mark.k8s

sys.path.insert(0, str(REPO / "scripts"))
import k8s_images  # noqa: E402 - scripts/ is no package

from apod_build import content_tags  # noqa: E402
from apod_build.graph import Graph  # noqa: E402

STEPS = ("extract", "transform", "load", "version")
PYTHON_PACKAGES = (*STEPS, "testserver", "alertcatcher")  # built over apod-package-builder


@pytest.fixture
def inputs(tmp_path: Path) -> Path:
    """What the builds read, copied: the build context as .dockerignore leaves it, the
    Dockerfiles, the image graph's data, VERSION and PG_MAJOR."""
    root = tmp_path / "repo"
    wanted = set(content_tags.context_files(REPO))
    wanted |= {p.relative_to(REPO).as_posix() for p in REPO.glob("images/*/Dockerfile")}
    wanted |= {".dockerignore", "VERSION", "images/postgres/PG_MAJOR", "images/build.toml"}
    for relative in wanted:
        target = root / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(REPO / relative, target)
    return root


def changed(root: Path, relative: str, text: str = "\n# changed by a test\n") -> set[str]:
    """The images whose tag moves when `text` is appended to `relative`."""
    before = content_tags.content_tags(root)
    with (root / relative).open("a", encoding="utf-8") as file:
        file.write(text)
    after = content_tags.content_tags(root)
    assert set(before) == set(after)
    return {name for name in before if before[name] != after[name]}


def test_the_copy_has_the_repositorys_tags(inputs):
    tags = content_tags.content_tags(inputs)
    assert tags == content_tags.content_tags(REPO)
    assert set(tags) == {p.parent.name for p in REPO.glob("images/*/Dockerfile")}
    # Every image has a tag of its own (no two share one), of the documented form.
    assert len(set(tags.values())) == len(tags)
    for name, tag in tags.items():
        base = (REPO / "images/postgres/PG_MAJOR") if name == "postgres" else (REPO / "VERSION")
        assert content_tags.is_content_tag(tag, base.read_text().strip()), (name, tag)


def test_a_dag_change_moves_only_the_airflow_tag(inputs):
    assert changed(inputs, "dags/apod_etl_k8s.py") == {"airflow"}
    # The compose stack's Docker gate derives its rules from the step definition; no
    # cluster runs it.
    assert changed(inputs, "dags/apod_pipeline/steps.py") == {"airflow", "docker-gate"}


@pytest.mark.parametrize("step", STEPS)
def test_a_change_in_one_steps_source_moves_only_that_steps_tag(inputs, step):
    (module, *_) = sorted((inputs / "images" / step / f"apod_{step}").glob("*.py"))
    assert changed(inputs, module.relative_to(inputs).as_posix()) == {step}


def test_the_object_store_and_postgres_move_only_with_their_own_inputs(inputs):
    assert changed(inputs, "images/objectstore/entrypoint.sh") == {"objectstore"}
    assert changed(inputs, "images/postgres/docker-entrypoint.sh") == {"postgres"}
    assert changed(inputs, "images/postgres/Dockerfile") == {"postgres"}
    # A new PostgreSQL major is an input of the Postgres image only.
    before = content_tags.content_tags(inputs)
    (inputs / "images/postgres/PG_MAJOR").write_text("16\n")
    tags = content_tags.content_tags(inputs)
    assert tags["postgres"].startswith("16-k8s.")
    assert {n for n, t in tags.items() if t != before[n]} == {"postgres"}


def test_a_change_reaches_every_image_built_from_it_and_no_other(inputs):
    shared = changed(inputs, "images/common/apod_common/settings.py")
    assert shared == set(PYTHON_PACKAGES)
    # The lock is read by apod-builder: every image with Python packages.
    locked = changed(inputs, "uv.lock")
    assert locked == {"builder", "package-builder", *PYTHON_PACKAGES, "airflow", "objectstore"}
    # A new version is every project image's (Postgres is tagged by its major).
    (inputs / "VERSION").write_text("9.9.9\n")
    tags = content_tags.content_tags(inputs)
    assert {n for n, t in tags.items() if not t.startswith("9.9.9-k8s.")} == {"postgres"}


def test_what_dockerignore_leaves_out_is_no_input(inputs):
    cache = inputs / "dags" / "apod_pipeline" / "__pycache__"
    cache.mkdir(exist_ok=True)
    before = content_tags.content_tags(inputs)
    (cache / "steps.cpython-311.pyc").write_bytes(b"not source")
    (inputs / "images" / "extract" / "README.md").write_text("docs only\n")
    assert content_tags.content_tags(inputs) == before


def test_the_executable_bit_is_an_input(inputs):
    before = content_tags.content_tags(inputs)
    (inputs / "images/objectstore/healthcheck.sh").chmod(0o644)
    after = content_tags.content_tags(inputs)
    assert {n for n in before if before[n] != after[n]} == {"objectstore"}


def test_a_base_image_override_is_an_input(inputs):
    plain = content_tags.content_tags(inputs, environ={})
    other = content_tags.content_tags(inputs, environ={"DEBIAN_IMAGE": "debian:trixie-slim"})
    # The images on the Debian base, and no other.
    debian = {
        p.parent.name
        for p in REPO.glob("images/*/Dockerfile")
        if "ARG DEBIAN_IMAGE" in p.read_text()
    }
    assert {"postgres", "objectstore"} <= debian
    assert {n for n in plain if plain[n] != other[n]} == debian


def test_every_file_sent_to_the_builds_is_an_input_of_some_image():
    """A COPY the parser misread would leave files out of every tag: then a change to
    them would deploy nothing new. Every file the build context holds is some image's."""
    graph = Graph.load(REPO)
    files = content_tags.context_files(REPO)
    hashed: set[str] = set()
    for name in graph.names():
        hashed |= content_tags.copied(content_tags.read_inputs(graph, name).sources, files)
    assert set(files) - hashed == set()


def test_a_copy_source_outside_the_context_is_an_error(inputs):
    dockerfile = inputs / "images" / "extract" / "Dockerfile"
    dockerfile.write_text(dockerfile.read_text() + "COPY images/extract/missing.txt /x\n")
    with pytest.raises(content_tags.InputError, match=r"missing\.txt is not in the build context"):
        content_tags.content_tags(inputs)


def test_the_cli_prints_the_tags_the_cluster_deploys():
    result = subprocess.run(
        [sys.executable, str(REPO / "scripts" / "k8s_images.py"), "tags"],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    printed = dict(line.split() for line in result.stdout.splitlines())
    assert list(printed) == list(k8s_images.cluster_images())
    assert printed == {n: t for n, t in content_tags.content_tags(REPO).items() if n in printed}
