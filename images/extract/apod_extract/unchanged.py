"""Whether a run has nothing to do: the API answered it byte for byte as it answered the
last batch that went all the way through (apod_common.versioned), and the CSV is still
the one versioned with it. Transforming, loading and versioning the same bytes again
would change nothing, so extract stops there (exit 99) and the steps after it are skipped.
"""

from __future__ import annotations

from pathlib import Path

from apod_common import files, layout, manifest, versioned
from apod_common.errors import StepError
from apod_common.manifest import Manifest


def _content(fetched: Manifest) -> tuple:
    """What a batch is made of: its days, and every answer's file and bytes (not when or
    from which address they were fetched)."""
    return (fetched.start, fetched.end, tuple((c.file, c.sha256) for c in fetched.chunks))


def reason(data_dir: Path, fetched: Manifest) -> str | None:
    """Why `fetched` has nothing to do, or None when it must go through."""
    last = versioned.read(data_dir)
    if last is None:
        return None
    try:
        earlier = manifest.read(layout.manifest_path(data_dir, last.run_id))
        current_md5 = files.md5_of(layout.dataset_csv(data_dir))
    except (OSError, StepError):  # the batch or the CSV is gone or unreadable: go through
        return None
    if _content(earlier) != _content(fetched) or current_md5 != last.md5:
        return None
    return (
        f"unchanged: the API answered {fetched.start}..{fetched.end} ({fetched.entries} "
        f"entries, {len(fetched.chunks)} chunk(s)) byte for byte as for run {last.run_id}, "
        f"whose batch is loaded and versioned (CSV md5 {last.md5}): nothing to load or "
        "commit (--always-load loads it anyway)"
    )
