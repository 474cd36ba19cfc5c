"""The extract run: plan the chunks, reuse what an earlier attempt left, fetch the rest
a few requests at a time, and write the manifest in date order whatever the order of
arrival."""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import time
from dataclasses import dataclass
from pathlib import Path

from apod_common import exit_codes, files, layout, manifest
from apod_common.errors import NothingToDo, StepError
from apod_common.manifest import Chunk, Manifest
from apod_extract import dates, pieces, store, unchanged
from apod_extract.client import ApodClient, Page, entry_count
from apod_extract.dates import Span
from apod_extract.fetcher import Fetcher, Job, QuotaUsedUp

log = logging.getLogger("extract")

DEFAULT_CONCURRENCY = 4


@dataclass(frozen=True)
class Request:
    start: dt.date
    end: dt.date
    run_id: str
    data_dir: Path
    chunk_days: int
    api_url: str  # already stripped of credentials, for the manifest and logs
    refetch: bool = False  # ignore chunks an earlier attempt left (upstream edits, late days)
    concurrency: int = DEFAULT_CONCURRENCY  # most requests in flight at once
    always_load: bool = False  # go through even when nothing changed (apod_extract.unchanged)


class Progress:
    """Chunks done, days fetched and days left, for the progress lines and their ETA."""

    def __init__(self, plan: list[Span], jobs: list[Job]):
        self.plan = plan
        self.missing = [pieces.days(chunk) for chunk in plan]  # days of each not on disk yet
        self.days_to_fetch = sum(pieces.days(job.span) for job in jobs)
        self.days_fetched = 0
        self.started = time.monotonic()

    def add(self, chunk: int, span: Span, fetched: bool) -> None:
        self.missing[chunk] -= pieces.days(span)
        if fetched:
            self.days_fetched += pieces.days(span)

    @property
    def done(self) -> int:
        return sum(days == 0 for days in self.missing)

    def label(self, chunk: int, span: Span) -> str:
        part = "" if span == self.plan[chunk] else " (part)"
        return f"chunk {chunk + 1}/{len(self.plan)} {span[0]}..{span[1]}{part}"

    def eta(self) -> str:
        # Days, not requests, measure the work: the service's cost is per day answered.
        if not self.days_fetched:
            return "unknown"
        elapsed = time.monotonic() - self.started
        left = elapsed / self.days_fetched * (self.days_to_fetch - self.days_fetched)
        return f"{left:.0f} s" if left < 120 else f"{left / 60:.0f} min"


@dataclass(frozen=True)
class Plan:
    """The run's chunks, each tiled with the files an earlier attempt kept (True) and the
    ranges still to fetch (False); `jobs` are those ranges."""

    chunks: list[Span]
    tilings: list[list[tuple[Span, bool]]]
    kept: dict[Span, bytes]  # the earlier attempt's files, by their day range
    jobs: list[Job]


def run(request: Request, client: ApodClient) -> dict:
    """The run's summary, once every chunk of the range is on disk and listed."""
    raw = layout.raw_dir(request.data_dir, request.run_id)
    manifest_path = layout.manifest_path(request.data_dir, request.run_id)
    try:
        files.make_dirs(raw)
    except OSError as exc:
        raise StepError(
            f"cannot create {raw}: {exc.strerror}", exit_codes.UPSTREAM_UNAVAILABLE
        ) from None

    plan = plan_chunks(request, raw)
    progress = Progress(plan.chunks, plan.jobs)
    chunks = reuse_kept_chunks(plan, raw, manifest_path, progress)
    requests = fetch_missing(plan, client, request.concurrency, raw, chunks, progress)
    written = write_manifest(request, raw, manifest_path, chunks)
    fetched = len({job.chunk for job in plan.jobs})
    summary = {
        "run_id": request.run_id,
        "start": request.start.isoformat(),
        "end": request.end.isoformat(),
        "raw_dir": str(raw),
        "manifest": str(manifest_path),
        "chunks": len(plan.chunks),
        "chunks_fetched": fetched,
        "chunks_reused": len(plan.chunks) - fetched,
        "requests": requests,
        "entries": written.entries,
    }
    if written.entries == 0:
        raise NothingToDo(
            f"the API has no entries for {request.start}..{request.end} "
            f"(manifest written to {manifest_path})"
        )
    if not request.always_load and (why := unchanged.reason(request.data_dir, written)):
        raise NothingToDo(why)
    return summary


def plan_chunks(request: Request, raw: Path) -> Plan:
    """Split the range into chunks and tile each with what is kept in `raw` (nothing with
    --refetch): what is left to fetch are the jobs."""
    chunks = dates.spans(request.start, request.end, request.chunk_days)
    kept = {} if request.refetch else store.kept_chunks(raw)
    tilings = [pieces.tile(chunk, kept) for chunk in chunks]
    jobs = [
        Job(span, number)
        for number, tiling in enumerate(tilings)
        for span, was_kept in tiling
        if not was_kept
    ]
    log.info(
        "%s..%s from %s: %d chunk(s), %d already present in %s; at most %d request(s) at once",
        request.start,
        request.end,
        request.api_url,
        len(chunks),
        sum(all(was_kept for _, was_kept in tiling) for tiling in tilings),
        raw,
        request.concurrency,
    )
    return Plan(chunks, tilings, kept, jobs)


def reuse_kept_chunks(
    plan: Plan, raw: Path, manifest_path: Path, progress: Progress
) -> dict[Span, Chunk]:
    """The manifest entries of the kept files the plan uses, with the fetch time the
    earlier manifest gave their bytes (else the file's mtime, which is its fetch time)."""
    chunks: dict[Span, Chunk] = {}
    earlier = {c.file: c for c in _earlier_chunks(manifest_path)}
    for number, tiling in enumerate(plan.tilings):
        for span in (span for span, was_kept in tiling if was_kept):
            name = store.chunk_name(*span)
            data = plan.kept[span]
            fetched_at = _earlier_fetch_time(earlier.get(name), data) or store.utc_text(
                store.modified_at(raw / name)
            )
            chunks[span] = _chunk(span, data, fetched_at)
            progress.add(number, span, fetched=False)
            log.info(
                "%s: %d entries (kept from an earlier attempt)",
                progress.label(number, span),
                chunks[span].entries,
            )
    return chunks


def fetch_missing(
    plan: Plan,
    client: ApodClient,
    concurrency: int,
    raw: Path,
    chunks: dict[Span, Chunk],
    progress: Progress,
) -> int:
    """Fetch the plan's jobs, writing each answer to its file in `raw` and its entry into
    `chunks` as it arrives; the number of requests sent. A failure says what is kept."""
    fetcher = Fetcher(client, concurrency)

    written: list[Path] = []  # made durable together, before the manifest names them

    def arrived(job: Job, page: Page) -> None:
        written.append(raw / store.chunk_name(*job.span))
        _write(written[-1], page.body, mtime=page.fetched_at, durable=False)
        chunks[job.span] = _chunk(job.span, page.body, store.utc_text(page.fetched_at))
        progress.add(job.chunk, job.span, fetched=True)
        log.info(
            "%s: %d entries (rate limit remaining %s); %d/%d chunk(s) done, %d in flight, ETA %s",
            progress.label(job.chunk, job.span),
            page.entries,
            "unknown" if page.remaining is None else page.remaining,
            progress.done,
            len(plan.chunks),
            fetcher.in_flight,
            progress.eta(),
        )

    try:
        try:
            fetcher.run(plan.jobs, arrived)
        except BaseException:
            # The chunks fetched so far are kept for a rerun: on disk, if it can be had.
            with contextlib.suppress(OSError):
                files.make_durable(written)
            raise
        _make_durable(written)
    except QuotaUsedUp:
        raise StepError(
            f"rate limit used up (X-RateLimit-Remaining: 0) with "
            f"{len(plan.chunks) - progress.done} chunk(s) still to fetch; "
            f"{_kept(raw, plan.chunks, progress.done)}",
            exit_codes.UPSTREAM_UNAVAILABLE,
        ) from None
    except StepError as exc:
        if exc.code == exit_codes.UPSTREAM_UNAVAILABLE:
            kept = _kept(raw, plan.chunks, progress.done)
            raise StepError(f"{exc.reason}; {kept}", exc.code) from None
        raise
    if plan.jobs:
        log.info(
            "fetched %d day(s) with %d request(s) in %.1f s, at most %d in flight",
            progress.days_fetched,
            fetcher.requests,
            time.monotonic() - progress.started,
            fetcher.most_in_flight,
        )
    return fetcher.requests


def write_manifest(
    request: Request, raw: Path, manifest_path: Path, chunks: dict[Span, Chunk]
) -> Manifest:
    """Remove the files the run does not list, then write the manifest, chunks in date
    order whatever the order of arrival."""
    listed = tuple(chunks[span] for span in sorted(chunks))
    for stray in store.strays(raw, {c.file for c in listed}):
        log.info("removing %s (not part of this run's range)", stray.name)
        stray.unlink(missing_ok=True)
    written = Manifest(
        run_id=request.run_id,
        start=request.start,
        end=request.end,
        api_url=request.api_url,
        chunk_days=request.chunk_days,
        chunks=listed,
    )
    _write(manifest_path, written.to_bytes())
    return written


def _chunk(span: Span, data: bytes, fetched_at: str) -> Chunk:
    return Chunk(
        file=store.chunk_name(*span),
        start=span[0],
        end=span[1],
        entries=entry_count(data),
        bytes=len(data),
        sha256=files.sha256(data),
        fetched_at=fetched_at,
    )


def _write(path: Path, data: bytes, mtime: dt.datetime | None = None, durable: bool = True) -> None:
    try:
        files.atomic_write(path, data, mtime, durable)
    except OSError as exc:
        raise StepError(
            f"cannot write {path}: {exc.strerror}", exit_codes.UPSTREAM_UNAVAILABLE
        ) from None


def _make_durable(paths: list[Path]) -> None:
    try:
        files.make_durable(paths)
    except OSError as exc:
        raise StepError(
            f"cannot sync {len(paths)} chunk file(s) to disk: {exc.strerror}",
            exit_codes.UPSTREAM_UNAVAILABLE,
        ) from None


def _kept(raw: Path, plan: list, done: int) -> str:
    return (
        f"{done} of {len(plan)} chunk(s) are kept in {raw}; rerun with the same run id "
        "to fetch only the rest"
    )


def _earlier_chunks(path: Path) -> tuple[Chunk, ...]:
    """The chunks an earlier attempt's manifest lists; none when it is missing or broken."""
    try:
        return manifest.read(path).chunks
    except (FileNotFoundError, StepError):
        return ()


def _earlier_fetch_time(earlier: Chunk | None, data: bytes) -> str | None:
    if earlier and earlier.sha256 == files.sha256(data):
        return earlier.fetched_at
    return None
