"""Logging to stderr (stdout is reserved for the summary line), one format for all, and
every record through the redactor."""

import logging
import os
import sys

from apod_common.redaction import RedactingFilter


def setup(step: str) -> logging.Logger:
    level = os.environ.get("APOD_LOG_LEVEL", "INFO").upper()
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        logging.Formatter(f"%(asctime)s %(levelname)s {step}: %(message)s", "%Y-%m-%dT%H:%M:%S%z")
    )
    handler.addFilter(RedactingFilter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # Library chatter (urllib3 retries, dvc internals) only when debugging.
    for noisy in ("urllib3", "dvc", "git", "asyncio", "filelock"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, root.level))
    return logging.getLogger(step)
