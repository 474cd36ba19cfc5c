"""The images themselves: what each one installs, runs and shares.

Every image the builder knows (`python3 -m apod_build --tags`) is checked; what an image should hold
is read from its Dockerfile (built over apod-package-builder: its folder's package; an
`apod-install --group` line: that group) and the workspace lock, not from a list.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import time
import tomllib
from functools import cache
from pathlib import Path

import pytest
from packaging.markers import Marker
from packaging.utils import canonicalize_name
from support.builds import build_images
from support.services import REPO, VERSION, docker, docker_available

pytestmark = [pytest.mark.docker, pytest.mark.timeout(300)]


@cache
def tags() -> dict[str, str]:
    listing = build_images("--tags", timeout=30)
    assert listing.returncode == 0, listing.stderr
    return dict(line.split() for line in listing.stdout.splitlines())


def dockerfile(name: str) -> str:
    return (REPO / "images" / name / "Dockerfile").read_text()


def require(name: str) -> str:
    if not docker_available():
        pytest.skip("no Docker engine answers (make test starts one)")
    tag = tags()[name]
    if docker("image", "inspect", tag, check=False).returncode != 0:
        pytest.skip(f"{tag} not built (make images)")
    return tag


def inspect(tag: str, template: str):
    return json.loads(docker("image", "inspect", "-f", f"{{{{json {template}}}}}", tag).stdout)


def installs(name: str) -> tuple[str, str] | None:
    """What the image's virtualenv /opt/apod takes from the lock: ("package", "apod-load")
    or ("group", "airflow"); None for an image without one (the object store keeps one
    binary of its group)."""
    text = dockerfile(name)
    if not re.search(r"^COPY --from=\S+ (--chown=\S+ )?/opt/apod /opt/apod$", text, re.M):
        return None
    # apod-package-builder's triggers install package apod-<STEP>, STEP the folder's name
    # (the builder passes it: images/build.toml).
    if re.search(r"^FROM apod-package-builder:", text, re.M):
        return ("package", f"apod-{name}")
    match = re.search(r"apod-install --group ([a-z0-9-]+)\s*$", text, re.M)
    assert match, f"images/{name}/Dockerfile copies /opt/apod but installs nothing known"
    return ("group", match.group(1))


def lock_closure(kind: str, root: str) -> dict[str, str]:
    """Name -> version of everything the lock installs for a package or a root group, on
    Linux with Python 3.11 (the images' interpreter)."""
    lock = tomllib.loads((REPO / "uv.lock").read_text())
    packages = {p["name"]: p for p in lock["package"]}
    environment = {
        "sys_platform": "linux",
        "python_version": "3.11",
        "python_full_version": "3.11.2",
    }

    def applies(dep: dict) -> bool:
        return "marker" not in dep or Marker(dep["marker"]).evaluate(environment)

    if kind == "package":
        todo = [{"name": root}]
    else:
        root_package = next(p for p in lock["package"] if p["source"].get("virtual") == ".")
        todo = list(root_package["dev-dependencies"][root])
    found: dict[str, str] = {}
    while todo:
        dep = todo.pop()
        if not applies(dep):
            continue
        package = packages[dep["name"]]
        for extra in dep.get("extra", []):
            todo += package["optional-dependencies"][extra]
        if dep["name"] in found:
            continue
        # Workspace members take their version from VERSION (dynamic: not in the lock).
        found[dep["name"]] = package.get("version", VERSION)
        todo += package.get("dependencies", [])
    return found


def installed(tag: str) -> dict[str, str]:
    code = (
        "import importlib.metadata as m, json; "
        "print(json.dumps({d.metadata['Name']: d.version for d in m.distributions()}))"
    )
    out = docker("run", "--rm", "--entrypoint", "python", tag, "-c", code).stdout
    return {canonicalize_name(n): v for n, v in json.loads(out).items()}


def lock_images() -> list[str]:
    return [name for name in tags() if installs(name)]


def console_script_images() -> list[str]:
    return [name for name in lock_images() if installs(name)[0] == "package"]


def test_every_image_is_listed_and_labelled_with_its_tag():
    """Title and version from the tag; license and source from the root pyproject.toml; a
    workspace package's description from its own pyproject.toml, any other image's from its
    Dockerfile."""
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    for name, tag in tags().items():
        assert (REPO / "images" / name / "Dockerfile").is_file()
        assert tag.startswith(f"apod-{name}:")
    for name in tags():
        tag = require(name)
        labels = {
            key.removeprefix("org.opencontainers.image."): value
            for key, value in inspect(tag, ".Config.Labels").items()
        }
        assert labels["title"] == f"apod-{name}"
        assert labels["version"] == tag.split(":", 1)[1]
        assert labels["licenses"] == project["license"]["text"]
        assert labels["source"] == project["urls"]["Source"]
        package = REPO / "images" / name / "pyproject.toml"
        if package.is_file():
            description = tomllib.loads(package.read_text())["project"]["description"]
            assert labels["description"] == description
        else:
            assert "org.opencontainers.image.description=" in dockerfile(name)
            assert labels["description"]


@pytest.mark.parametrize("name", lock_images())
def test_image_holds_exactly_its_part_of_the_lock(name):
    """Nothing another step needs (pandas in extract, dvc in load...), nothing missing,
    every version the lock's: the image was installed from the one lock."""
    tag = require(name)
    assert installed(tag) == lock_closure(*installs(name))


@pytest.mark.parametrize("name", console_script_images())
def test_entrypoint_is_the_console_script_and_answers_help(name):
    tag = require(name)
    package = installs(name)[1]
    assert inspect(tag, ".Config.Entrypoint") == [package]
    result = docker("run", "--rm", tag, "--help", check=False)
    assert result.returncode == 0, result.stderr
    assert "usage" in result.stdout.lower()


@pytest.mark.parametrize(
    "name", [n for n in tags() if re.search(r"^FROM apod-base:", dockerfile(n), re.M)]
)
def test_step_images_share_the_base_layers(name):
    base = inspect(require("base"), ".RootFS.Layers")
    layers = inspect(require(name), ".RootFS.Layers")
    assert layers[: len(base)] == base
    assert len(layers) > len(base)


def test_airflow_image_launches_step_images_of_its_own_version():
    env = inspect(require("airflow"), ".Config.Env")
    assert f"APOD_IMAGE_TAG={VERSION}" in env


def test_postgres_image_is_the_declared_major_and_never_root():
    tag = require("postgres")
    major = (REPO / "images" / "postgres" / "PG_MAJOR").read_text().strip()
    assert tag == f"apod-postgres:{major}"
    assert inspect(tag, ".Config.User") == "999:999"
    version = docker("run", "--rm", "--entrypoint", "postgres", tag, "--version").stdout
    assert re.search(rf"\(PostgreSQL\) {major}\.\d+", version), version


def test_postgres_image_initialises_a_named_volume_as_its_own_user(tmp_path: Path):
    """First start with a password file and init scripts, without root; a second start
    keeps the data and skips the scripts."""
    tag = require("postgres")
    password = secrets.token_urlsafe(18)
    (tmp_path / "password").write_text(password + "\n")
    init = tmp_path / "init"
    init.mkdir()
    (init / "01-table.sql").write_text("CREATE TABLE probe (n int); INSERT INTO probe VALUES (1);")
    (init / "02-row.sh").write_text(
        '#!/bin/bash\npsql -v ON_ERROR_STOP=1 -U "$POSTGRES_USER" -d "$POSTGRES_DB" '
        '-c "INSERT INTO probe VALUES ($(id -u))"\n'
    )
    (init / "02-row.sh").chmod(0o755)
    for path in (tmp_path, init, *init.iterdir(), tmp_path / "password"):
        path.chmod(path.stat().st_mode | 0o005)  # the container's uid 999 reads them
    suffix = secrets.token_hex(4)
    container, volume = f"apod-test-pg-{suffix}", f"apod-test-pgdata-{suffix}"
    run = [
        "run", "-d", "--name", container, "-e", "POSTGRES_DB=probe",
        "-e", "POSTGRES_PASSWORD_FILE=/run/secrets/password",
        "-v", f"{tmp_path / 'password'}:/run/secrets/password:ro",
        "-v", f"{init}:/docker-entrypoint-initdb.d:ro",
        "-v", f"{volume}:/var/lib/postgresql/data", tag,
    ]  # fmt: skip

    def rows() -> str:
        deadline = time.monotonic() + 90
        ready = ("exec", container, "pg_isready", "-q", "-h", "127.0.0.1")
        while docker(*ready, check=False).returncode:
            assert time.monotonic() < deadline, docker("logs", container, check=False).stderr
            time.sleep(1)
        query = "SELECT string_agg(n::text, ',' ORDER BY n) FROM probe"
        # Over TCP with the password from the file; handed to docker by name only.
        return docker(
            "exec", "-e", "PGPASSWORD", container,
            "psql", "-h", "127.0.0.1", "-U", "postgres", "-d", "probe", "-Atc", query,
            env={**os.environ, "PGPASSWORD": password},
        ).stdout.strip()  # fmt: skip

    try:
        docker(*run)
        assert rows() == "1,999"  # the SQL file, then the script, run as uid 999
        docker("rm", "-f", container)
        docker(*run)
        assert rows() == "1,999"  # same volume: initialised once
        top = docker("top", container, "-eo", "pid,uid").stdout.splitlines()[1:]
        uids = [line.split()[1] for line in top]
        assert uids
        assert set(uids) == {"999"}
    finally:
        docker("rm", "-f", container, check=False)
        docker("volume", "rm", "-f", volume, check=False)


def test_builds_announce_each_image_and_make_the_bases_in_the_same_graph(tmp_path: Path):
    """`--announce DIR` (what compose-up.sh starts services by) marks every image it built,
    the ones built FROM included; the bases are nodes of the graph, each reported once in
    the JSON build report, which says what was built, after what, and where it logged."""
    require("version")
    require("postgres")
    announced, report = tmp_path / "announced", tmp_path / "report.json"
    announced.mkdir()
    result = build_images(
        "--announce", str(announced), "--report", str(report), "version", "postgres",
        timeout=600,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-2000:]
    built = ["base", "builder", "package-builder", "postgres", "version"]
    assert sorted(p.name for p in announced.iterdir()) == built
    run = json.loads(report.read_text())
    assert (run["outcome"], run["requested"], run["totals"]["built"]) == (
        "built", ["version", "postgres"], 5,
    )  # fmt: skip
    assert sorted(b["name"] for b in run["bases"]) == ["debian", "python"]
    images = {i["name"]: i for i in run["images"]}
    assert sorted(images) == built
    assert images["version"]["tag"] == tags()["version"]
    assert images["version"]["parents"] == ["package-builder", "base"]
    assert images["postgres"]["parents"] == ["@debian"]
    ends = {f"@{b['name']}": b["end"] for b in run["bases"]}
    ends |= {i["name"]: i["end"] for i in run["images"]}
    for node in run["images"]:
        assert node["size"] > 0
        assert (REPO / node["log"]).is_file()
        # Built after its parents: nothing starts before what it builds FROM is there.
        assert all(node["start"] >= ends[parent] for parent in node["parents"])
