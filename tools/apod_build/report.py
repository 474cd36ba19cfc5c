"""The JSON build report: what one run of the builder did, node by node. It is the
builder's interface to its readers (the cold bench, the docker tier's tests); its log
lines are for people only.

    {
      "started": "2026-01-02T03:04:05.678901+00:00",   # when the run began (UTC)
      "builder": "BuildKit" | "plain builder",
      "jobs": 2,                                       # builds side by side
      "requested": ["version", "postgres"],            # as asked (every image: all)
      "outcome": "built" | "failed" | "running",
      "seconds": 174.2,                                # the run's wall time so far
      "bases": [NODE, ...], "images": [NODE, ...],     # in the order planned
      "totals": {"images": 5, "built": 5, "failed": 0, "not started": 0,
                 "bases": 2, "size": 1234567890}        # size: bytes of the built images
    }

NODE: {"name", "tag" (an image's) or "image" (a base's, as its command found it),
"parents" (the nodes it waited for: image names, @base names), "start" and "end" (seconds
since "started"; null when not started or not ended), "seconds", "size" (bytes; 0 when
the engine does not hold it), "outcome" ("built", "failed", "running", "not started"),
"log" (relative to the repository), and for a base "made" (true when the image was made
during this run, false when it was present or pulled)}.

It is rewritten after every node, so a reader may follow a run.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

BUILT, FAILED, RUNNING, NOT_STARTED = "built", "failed", "running", "not started"


@dataclass
class Node:
    name: str
    parents: list[str]
    log: str
    tag: str | None = None  # an image's
    image: str | None = None  # a base's
    made: bool | None = None  # a base's
    start: float | None = None
    end: float | None = None
    size: int = 0
    outcome: str = NOT_STARTED

    @property
    def seconds(self) -> float | None:
        if self.start is None or self.end is None:
            return None
        return round(self.end - self.start, 3)

    def to_json(self) -> dict:
        out = {k: v for k, v in asdict(self).items() if v is not None or k in ("start", "end")}
        return {**out, "seconds": self.seconds}


@dataclass
class Report:
    builder: str
    jobs: int
    requested: list[str]
    path: Path
    bases: list[Node] = field(default_factory=list)
    images: list[Node] = field(default_factory=list)
    started: dt.datetime = field(default_factory=lambda: dt.datetime.now(dt.UTC))
    _clock: float = field(default_factory=time.monotonic)
    finished: float | None = None

    def now(self) -> float:
        """Seconds since the run started."""
        return round(time.monotonic() - self._clock, 3)

    def outcome(self) -> str:
        nodes = self.bases + self.images
        if any(n.outcome == FAILED for n in nodes):
            return FAILED
        return BUILT if self.finished is not None else RUNNING

    def to_json(self) -> dict:
        def count(outcome: str) -> int:
            return sum(n.outcome == outcome for n in self.images)

        return {
            "started": self.started.isoformat(),
            "builder": self.builder,
            "jobs": self.jobs,
            "requested": self.requested,
            "outcome": self.outcome(),
            "seconds": self.finished if self.finished is not None else self.now(),
            "bases": [n.to_json() for n in self.bases],
            "images": [n.to_json() for n in self.images],
            "totals": {
                "images": len(self.images),
                "built": count(BUILT),
                "failed": count(FAILED),
                "not started": count(NOT_STARTED),
                "bases": len(self.bases),
                "size": sum(n.size for n in self.images if n.outcome == BUILT),
            },
        }

    def write(self) -> None:
        """Replace the file in one step: a reader never sees half a report."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        partial = self.path.with_name(f".{self.path.name}.{os.getpid()}")
        partial.write_text(json.dumps(self.to_json(), indent=2) + "\n", encoding="utf-8")
        partial.replace(self.path)
