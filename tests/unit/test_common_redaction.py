"""The one redactor: what it masks, and that the runner puts it in front of every output
of every step (log records, the summary, the one-line reason)."""

import json
import logging
import sys

import pytest

from apod_common import redaction, runner, settings
from apod_common.errors import StepError
from apod_common.redaction import RedactingFilter, Redactor

pytestmark = pytest.mark.unit

SECRET = "s3cr/t:p@ss"  # '/', ':' and '@' are legal in a password


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # URL user-info: the password, and a user name that may itself be a token.
        ("postgresql://loader:hunter22@db:5432/apod", "postgresql://***@db:5432/apod"),
        ("postgres://:hunter22@db/apod", "postgres://***@db/apod"),
        ("postgresql://loader:a/b:c@db/apod", "postgresql://***@db/apod"),
        ("postgresql://u:p@ss@db/apod", "postgresql://***@db/apod"),
        (
            "failed for postgresql://u:pw1@h/db and postgresql://v:pw2@k/db2",
            "failed for postgresql://***@h/db and postgresql://***@k/db2",
        ),
        ("https://user:tok3n@git.example/repo.git", "https://***@git.example/repo.git"),
        ("fatal: 'https://tok3n@host/x' failed", "fatal: 'https://***@host/x' failed"),
        ("ssh://git@host:22/repo", "ssh://***@host:22/repo"),
        ("a https://u:p@h/1 and http://v:q@h/2", "a https://***@h/1 and http://***@h/2"),
        (
            "fatal: unable to access 'https://u:tok@host/r.git/'",
            "fatal: unable to access 'https://***@host/r.git/'",
        ),
        # key=value pairs: libpq strings, URL queries.
        (
            "host=db user=loader password=hunter22 dbname=apod",
            "host=db user=loader password=*** dbname=apod",
        ),
        ("host=db password='it\\'s a secret' dbname=apod", "host=db password=*** dbname=apod"),
        (
            "postgresql://db/apod?user=u&password=hunter22&sslmode=require",
            "postgresql://db/apod?user=u&password=***&sslmode=require",
        ),
        ("PASSWORD = hunter22", "PASSWORD = ***"),
        ("GET /apod?api_key=zzz&date=1", "GET /apod?api_key=***&date=1"),
        ("nasa_api_key=zzz", "nasa_api_key=***"),
    ],
)
def test_structural_secrets_are_masked(text, expected):
    assert Redactor()(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "http://db:5432/apod",
        "no url here",
        "/var/tmp/apod-dvc-remote",
        "s3://bucket/path",
        "https://api.nasa.gov/planetary/apod?date=2024-01-01",
    ],
)
def test_text_without_credentials_is_left_alone(text):
    assert Redactor()(text) == text


def test_known_values_are_masked_raw_percent_and_form_encoded():
    key = "a b+c/d"
    redact = Redactor([key, None, ""])
    text = "GET /apod?api_key=a%20b%2Bc%2Fd&date=1 failed; key a b+c/d; plus form a+b%2Bc%2Fd"
    cleaned = redact(text)
    for form in (key, "a%20b%2Bc%2Fd", "a+b%2Bc%2Fd"):
        assert form not in cleaned
    assert "api_key=***&date=1" in cleaned


def test_a_value_inside_a_url_is_masked_whole():
    out = Redactor([SECRET])(f"bad value {SECRET} in postgresql://u:s3cr%2Ft%3Ap%40ss@h/db")
    assert SECRET not in out
    assert "s3cr%2Ft%3Ap%40ss" not in out
    assert "p@ss" not in out


def test_short_values_do_not_mangle_text():
    assert Redactor(["db"])("connecting to db") == "connecting to db"


def test_summaries_are_redacted_value_by_value():
    redact = Redactor([SECRET])
    summary = {"reason": f"x {SECRET}", "n": 3, "list": [SECRET, None], "nested": {"k": SECRET}}
    assert redact.value(summary) == {
        "reason": "x ***",
        "n": 3,
        "list": ["***", None],
        "nested": {"k": "***"},
    }


def test_secret_variables_and_their_files_are_known_at_start(tmp_path):
    key_file = tmp_path / "key"
    key_file.write_text("from-a-file-123\n")
    environ = {
        "NASA_API_KEY": "nasa-key-1",
        "APOD_DATABASE_URL": "postgresql://u:p@h/d",
        "PGPASSWORD": "pg-pass-1",
        "APOD_LOADER_PASSWORD": "loader-pass-1",
        "AWS_SECRET_ACCESS_KEY": "aws-secret-1",
        "GITHUB_TOKEN": "gh-token-1",
        "MY_SERVICE_API_KEY_FILE": str(key_file),
        "PGPASSWORD_FILE": str(tmp_path / "absent"),
        "APOD_DATA_DIR": "/data",
        "HOME": "/tmp",
    }
    assert sorted(redaction.secrets_in(environ)) == sorted(
        [
            "nasa-key-1",
            "postgresql://u:p@h/d",
            "pg-pass-1",
            "loader-pass-1",
            "aws-secret-1",
            "gh-token-1",
            "from-a-file-123",
        ]
    )


def test_log_filter_masks_messages_arguments_and_tracebacks(caplog):
    redaction.remember(SECRET)
    logger = logging.getLogger("test_common_redaction")
    redact_filter = RedactingFilter()
    caplog.handler.addFilter(redact_filter)
    try:
        logger.warning("url %s", f"postgresql://u:{SECRET}@h/db")
        try:
            raise RuntimeError(f"boom {SECRET}")
        except RuntimeError:
            logger.exception("failed")
    finally:
        caplog.handler.removeFilter(redact_filter)
    assert SECRET not in caplog.text
    assert "postgresql://***@h/db" in caplog.text
    assert "boom ***" in caplog.text


# --- the runner puts the redactor in front of every step's output -----------------------


def _step(monkeypatch, tmp_path):
    """A step that reads a secret from a file, logs it, and returns or raises with it."""
    secret_file = tmp_path / "secret"
    secret_file.write_text("file-borne-secret-42\n")
    monkeypatch.setenv("APOD_LOADER_PASSWORD_FILE", str(secret_file))
    monkeypatch.setenv("NASA_API_KEY", "env-borne-key-42")

    def main(argv):
        value = settings.secret("APOD_LOADER_PASSWORD")
        logging.getLogger("demo").warning("using %s and env-borne-key-42", value)
        if argv == ["fail"]:
            raise StepError(f"refused with {value}", 4)
        if argv == ["crash"]:
            raise RuntimeError(f"crashed at https://u:{value}@host/x?api_key=env-borne-key-42")
        return {"echo": value, "urls": ["postgresql://u:pw-4242@h/db"]}

    return main


@pytest.mark.parametrize("argv", [[], ["fail"], ["crash"]])
def test_the_runner_redacts_logs_summary_and_reason(monkeypatch, tmp_path, capfd, argv):
    main = _step(monkeypatch, tmp_path)
    monkeypatch.setenv("APOD_LOG_LEVEL", "DEBUG")
    code = runner.run("demo", main, argv)
    sys.stderr.flush()
    out, err = capfd.readouterr()
    summary = json.loads(out.strip().splitlines()[-1])
    assert code == {(): 0, ("fail",): 4, ("crash",): 1}[tuple(argv)]
    for secret in ("file-borne-secret-42", "env-borne-key-42", "pw-4242"):
        assert secret not in out + err
    assert "***" in json.dumps(summary)
    assert "using *** and ***" in err
