"""scripts/deploy_env.py: the object store's key among the generated secrets, and a stack
beside another one with its own store volume and S3 port."""

from __future__ import annotations

import re
from pathlib import Path

import deploy_env
import pytest

pytestmark = pytest.mark.unit

REPO = Path(__file__).resolve().parents[2]


def test_the_object_store_key_is_generated_with_the_other_secrets(tmp_path: Path):
    env_file = tmp_path / ".env"
    added = deploy_env.init(env_file, REPO / ".env.example")
    assert {"APOD_S3_ACCESS_KEY_ID", "APOD_S3_SECRET_ACCESS_KEY"} <= set(added)
    values = deploy_env.read_env(env_file)
    # What the object store image accepts (images/objectstore/README.md, "environment").
    assert re.fullmatch(r"apod[0-9a-f]{16}", values["APOD_S3_ACCESS_KEY_ID"])
    assert re.fullmatch(r"[A-Za-z0-9_-]{16,128}", values["APOD_S3_SECRET_ACCESS_KEY"])
    # Kept on the next init; another file gets another key.
    assert deploy_env.init(env_file, REPO / ".env.example") == []
    assert deploy_env.read_env(env_file) == values
    other = tmp_path / "other.env"
    deploy_env.init(other)
    assert deploy_env.read_env(other)["APOD_S3_ACCESS_KEY_ID"] != values["APOD_S3_ACCESS_KEY_ID"]


def test_a_secret_cannot_be_set_on_a_command_line(tmp_path: Path):
    env_file = tmp_path / ".env"
    deploy_env.init(env_file)
    with pytest.raises(ValueError, match="APOD_S3_SECRET_ACCESS_KEY is a secret"):
        deploy_env.set_value(env_file, "APOD_S3_SECRET_ACCESS_KEY", "typed")


def test_a_new_stack_has_its_own_store_volume_and_s3_port(tmp_path: Path):
    first = deploy_env.new_stack(tmp_path / "a.env", "apod-unit")
    second = deploy_env.new_stack(tmp_path / "b.env", "apod-unit")
    for stack in (first, second):
        assert stack["APOD_OBJECTSTORE_VOLUME"] == f"{stack['APOD_COMPOSE_PROJECT']}-objectstore"
        assert int(stack["APOD_S3_PORT"]) > 0
        ports = [stack[n] for n in ("APOD_UI_PORT", "APOD_PG_PORT", "APOD_S3_PORT")]
        assert len(set(ports)) == 3
        assert "APOD_DVC_VOLUME" not in stack  # compose keeps no DVC remote volume
    assert first["APOD_OBJECTSTORE_VOLUME"] != second["APOD_OBJECTSTORE_VOLUME"]
    assert deploy_env.read_env(tmp_path / "a.env") == first


def test_every_variable_docker_compose_interpolates_is_a_setting_or_generated():
    """A name compose reads from the env file that .env.example lacks would stay empty on a
    fresh `make up` (the store's key included)."""
    compose = (REPO / "docker-compose.yml").read_text(encoding="utf-8")
    used = set(re.findall(r"\$\{([A-Z_0-9]+)", compose))
    example = set(deploy_env.read_env(REPO / ".env.example"))
    # Set by the make targets (scripts/compose-lib.sh), not by the env file.
    by_scripts = {"APOD_IMAGE_TAG", "DOCKER_GID"}
    assert used - example - by_scripts == set()
    assert {"APOD_S3_ACCESS_KEY_ID", "APOD_S3_SECRET_ACCESS_KEY"} <= set(deploy_env.GENERATED)
