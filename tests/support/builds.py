"""The image builder (tools/apod_build) as the scripts run it: `python3 -m apod_build`
with tools/ on PYTHONPATH, in this checkout or another one (a copy of it)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from apod_tools.project import REPO


def build_images(*args: str, root: Path = REPO, **kwargs) -> subprocess.CompletedProcess[str]:
    """`python3 -m apod_build ARGS` in `root`, its output captured."""
    env = {**kwargs.pop("env", os.environ), "PYTHONPATH": str(root / "tools")}
    return subprocess.run(
        [sys.executable, "-m", "apod_build", *args],
        cwd=root, env=env, capture_output=True, text=True, check=False, **kwargs,
    )  # fmt: skip
