"""This checkout: where it is, its version and what its images are called."""

from __future__ import annotations

from pathlib import Path

from apod_pipeline.settings import Settings
from apod_pipeline.steps import steps

REPO = Path(__file__).resolve().parents[2]
SAMPLE_FIXTURES = REPO / "tests" / "fixtures" / "apod"  # the test server's small sample

# Not from the environment: an image name here is always this checkout's own build.
_SETTINGS = Settings()
VERSION = _SETTINGS.image_tag
image = _SETTINGS.image
# The pipeline's images, in order (two steps share apod-load).
STEP_IMAGES = tuple(dict.fromkeys(step.image for step in steps(_SETTINGS)))
