"""Database passwords never leave the load step: not in messages, logs or summaries."""

import logging

import pytest

from apod_load import redact

pytestmark = pytest.mark.unit

SECRET = "s3cr/t:p@ss"  # '/', ':' and '@' are legal in a password


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "postgresql://loader:hunter22@db:5432/apod",
            "postgresql://loader:***@db:5432/apod",
        ),
        ("postgres://:hunter22@db/apod", "postgres://:***@db/apod"),
        ("postgresql://loader:a/b:c@db/apod", "postgresql://loader:***@db/apod"),
        (
            "failed for postgresql://u:pw1@h/db and postgresql://v:pw2@k/db2",
            "failed for postgresql://u:***@h/db and postgresql://v:***@k/db2",
        ),
        (
            "host=db user=loader password=hunter22 dbname=apod",
            "host=db user=loader password=*** dbname=apod",
        ),
        ("host=db password='it\\'s a secret' dbname=apod", "host=db password=*** dbname=apod"),
        ("postgresql://u:p@ss@db/apod", "postgresql://u:***@db/apod"),
        (
            "postgresql://db/apod?user=u&password=hunter22&sslmode=require",
            "postgresql://db/apod?user=u&password=***&sslmode=require",
        ),
        ("PASSWORD = hunter22", "PASSWORD = ***"),
    ],
)
def test_structural_passwords_are_masked(text, expected):
    assert redact.redact(text) == expected


def test_urls_without_a_password_are_left_alone():
    for text in ("postgresql://loader@db:5432/apod", "http://db:5432/apod", "no url here"):
        assert redact.redact(text) == text


def test_known_secret_values_are_masked_raw_and_percent_encoded():
    text = f"bad value {SECRET} in postgresql://u:s3cr%2Ft%3Ap%40ss@h/db"
    out = redact.redact(text, [SECRET, None, ""])
    assert SECRET not in out
    assert "s3cr%2Ft%3Ap%40ss" not in out
    assert "p@ss" not in out


def test_short_secret_values_do_not_mangle_text():
    assert redact.redact("connecting to db", ["db"]) == "connecting to db"


def test_log_filter_masks_messages_arguments_and_tracebacks(caplog):
    logger = logging.getLogger("test_load_redact")
    handler = logging.StreamHandler()
    redact_filter = redact.RedactingFilter([SECRET])
    caplog.handler.addFilter(redact_filter)
    try:
        logger.warning("url %s", f"postgresql://u:{SECRET}@h/db")
        try:
            raise RuntimeError(f"boom {SECRET}")
        except RuntimeError:
            logger.exception("failed")
    finally:
        caplog.handler.removeFilter(redact_filter)
    handler.close()
    assert SECRET not in caplog.text
    assert "postgresql://u:***@h/db" in caplog.text
    assert "boom ***" in caplog.text
