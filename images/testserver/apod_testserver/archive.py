"""The entries the server answers with: year files on disk plus edits made at run time.

The year files have the layout of the public archive dump (one `YYYY.json` object per
year, keyed by `YYYY-MM-DD`). Their entries carry a `credit` key that api.nasa.gov never
sends, so it is dropped when an entry is served.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import threading
from pathlib import Path

YEAR_FILE = re.compile(r"^\d{4}\.json$")
NOT_SERVED = ("credit",)

_YOUTUBE_ID = re.compile(r"(?:(?<=[vV]/)|(?<=be/)|(?<=[?&]v=)|(?<=embed/))([\w-]+)")
_VIMEO_ID = re.compile(r"/video/(\d+)")


class ArchiveError(Exception):
    """The fixture directory cannot be served."""


def load_year_files(directory: Path) -> dict[str, dict]:
    if not directory.is_dir():
        raise ArchiveError(f"fixture directory {directory} does not exist")
    entries: dict[str, dict] = {}
    files = sorted(p for p in directory.iterdir() if YEAR_FILE.match(p.name))
    if not files:
        raise ArchiveError(f"no YYYY.json files in {directory}")
    for path in files:
        try:
            year = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise ArchiveError(f"cannot read {path}: {exc}") from exc
        if not isinstance(year, dict):
            raise ArchiveError(f"{path} is not an object keyed by date")
        for day, entry in year.items():
            dt.date.fromisoformat(day)  # a malformed key is a broken fixture: fail loudly
            entries[day] = entry
    return entries


def thumbnail_for(url: str) -> str:
    """What the service puts in `thumbnail_url` for a video at `url`."""
    if "youtube" in url or "youtu.be" in url:
        match = _YOUTUBE_ID.search(url)
        return f"https://img.youtube.com/vi/{match.group(1) if match else ''}/0.jpg"
    if "vimeo" in url:
        match = _VIMEO_ID.search(url)
        # The service asks Vimeo's API for this; the test server makes up the same shape.
        return f"https://i.vimeocdn.com/video/{match.group(1) if match else '0'}_640.jpg"
    return ""


class Archive:
    """Thread-safe view of the fixtures with an overlay of upstream edits."""

    def __init__(self, entries: dict[str, dict]):
        self._base = dict(entries)
        self._edits: dict[str, dict | None] = {}  # None marks a day removed upstream
        self._lock = threading.Lock()

    @classmethod
    def from_directory(cls, directory: Path) -> Archive:
        return cls(load_year_files(directory))

    def __len__(self) -> int:
        with self._lock:
            return sum(self._lookup(d) is not None for d in {*self._base, *self._edits})

    def _lookup(self, day: str) -> dict | None:
        return self._edits[day] if day in self._edits else self._base.get(day)

    def put(self, day: dt.date, entry: dict) -> None:
        with self._lock:
            self._edits[day.isoformat()] = {**entry, "date": day.isoformat()}

    def remove(self, day: dt.date) -> bool:
        with self._lock:
            existed = self._lookup(day.isoformat()) is not None
            self._edits[day.isoformat()] = None
            return existed

    def reset(self) -> None:
        with self._lock:
            self._edits.clear()

    def get(self, day: dt.date, thumbs: bool = False) -> dict | None:
        with self._lock:
            entry = self._lookup(day.isoformat())
        return None if entry is None else served(entry, thumbs)

    def days_until(self, today: dt.date) -> list[dt.date]:
        with self._lock:
            days = [d for d in {*self._base, *self._edits} if self._lookup(d) is not None]
        return sorted(d for d in map(dt.date.fromisoformat, days) if d <= today)


def served(entry: dict, thumbs: bool) -> dict:
    """The entry as api.nasa.gov returns it."""
    out = {k: v for k, v in entry.items() if k not in NOT_SERVED}
    out["service_version"] = "v1"
    if thumbs and out.get("media_type") == "video":
        out["thumbnail_url"] = thumbnail_for(out.get("url", ""))
    return out
