"""The checkout a bench measures, and where its report may go.

The commit and whether the tree has changes are read when the run starts (a report
stamped when it is written could name a commit made while it ran), and again when it
ends. The committed reports (docs/BENCHMARKS*.md/.json) are written only for a whole run
of a clean tree whose HEAD did not move and that nothing changed while it ran; any other
run's report goes to a scratch folder under artifacts/bench/ and says why. Standard
library only.
"""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path

from apod_tools.project import REPO

DOCS = REPO / "docs"
SCRATCH = REPO / "artifacts" / "bench"
# What the benches write themselves: an earlier run's uncommitted report is not a change
# to the code measured (make bench writes BENCHMARKS.md, then runs make bench-cold).
OWN_OUTPUTS = ("docs/BENCHMARKS",)
SHOWN_CHANGES = 10


@dataclass(frozen=True)
class Tree:
    commit: str | None  # None: not a git checkout, or no commit yet
    changes: tuple[str, ...] = ()  # paths changed or new (not ignored), the bench's own left out

    @property
    def dirty(self) -> bool:
        return bool(self.changes)

    def short(self) -> str:
        return (self.commit or "none")[:12]


def read_tree(repo: Path = REPO) -> Tree:
    def git(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            ["git", "-C", str(repo), *args], capture_output=True, text=True, check=False
        )

    head = git("rev-parse", "--verify", "HEAD")
    status = git("status", "--porcelain=v1", "-z", "--untracked-files=all")
    if head.returncode != 0 or status.returncode != 0:
        return Tree(None, ("not a git checkout with a commit",))
    return Tree(head.stdout.strip(), changed_paths(status.stdout))


def changed_paths(porcelain_z: str) -> tuple[str, ...]:
    """The paths of `git status --porcelain=v1 -z`, but the bench's own outputs."""
    fields = porcelain_z.split("\0")
    paths = []
    index = 0
    while index < len(fields):
        entry = fields[index]
        index += 1
        if len(entry) < 4:
            continue
        status, path = entry[:2], entry[3:]
        if "R" in status or "C" in status:
            index += 1  # a rename's or copy's source path follows
        if not path.startswith(OWN_OUTPUTS):
            paths.append(path)
    return tuple(paths)


@dataclass(frozen=True)
class Destination:
    directory: Path
    reasons: tuple[str, ...]  # why not the committed docs (empty: the docs, or as asked)

    @property
    def scratch(self) -> bool:
        return bool(self.reasons)


def destination(
    requested: Path,
    start: Tree,
    end: Tree,
    run_name: str,
    other_reasons: tuple[str, ...] = (),
    docs: Path = DOCS,
    scratch: Path = SCRATCH,
) -> Destination:
    """Where a run's report goes: `requested`, unless it is the committed docs and the run
    does not qualify (then scratch/run_name). `other_reasons`: the caller's own reasons
    to keep it from the docs (a partial run, say)."""
    if requested.resolve() != docs.resolve():
        return Destination(requested, ())
    reasons = []
    if start.commit is None:
        reasons.append("no commit to name")
    elif start.dirty:
        shown = ", ".join(start.changes[:SHOWN_CHANGES])
        more = len(start.changes) - SHOWN_CHANGES
        reasons.append(
            f"the tree had uncommitted changes when the run started: {shown}"
            + (f" and {more} more" if more > 0 else "")
        )
    if end.commit != start.commit:
        reasons.append(f"HEAD moved during the run: {start.short()} to {end.short()}")
    elif end.changes != start.changes:
        changed = sorted(set(end.changes) ^ set(start.changes))[:SHOWN_CHANGES]
        reasons.append(f"files changed during the run: {', '.join(changed) or 'their content'}")
    reasons += other_reasons
    if not reasons:
        return Destination(docs, ())
    return Destination(scratch / run_name, tuple(reasons))
