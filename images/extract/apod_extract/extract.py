"""The extract run: plan the chunks, reuse what an earlier attempt left, fetch the rest."""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass
from pathlib import Path

from apod_common import exit_codes, layout
from apod_common.errors import NothingToDo, StepError
from apod_extract import dates, store
from apod_extract.client import ApodClient, entry_count

log = logging.getLogger("extract")


@dataclass(frozen=True)
class Request:
    start: dt.date
    end: dt.date
    run_id: str
    data_dir: Path
    chunk_days: int
    api_url: str  # already stripped of credentials, for the manifest and logs
    refetch: bool = False  # ignore chunks an earlier attempt left (upstream edits, late days)


def run(request: Request, client: ApodClient) -> dict:
    raw = layout.raw_dir(request.data_dir, request.run_id)
    manifest_path = layout.manifest_path(request.data_dir, request.run_id)
    try:
        raw.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise StepError(
            f"cannot create {raw}: {exc.strerror}", exit_codes.UPSTREAM_UNAVAILABLE
        ) from None

    plan = dates.spans(request.start, request.end, request.chunk_days)
    present = {
        span: None if request.refetch else store.valid_chunk(raw / store.chunk_name(*span))
        for span in plan
    }
    to_fetch = [span for span in plan if present[span] is None]
    earlier = {c.get("file"): c for c in store.read_manifest(manifest_path).get("chunks", [])}
    log.info(
        "%s..%s from %s: %d chunk(s), %d already present in %s",
        request.start,
        request.end,
        request.api_url,
        len(plan),
        len(plan) - len(to_fetch),
        raw,
    )

    chunks = []
    for number, span in enumerate(plan, start=1):
        name = store.chunk_name(*span)
        path = raw / name
        label = f"chunk {number}/{len(plan)} {span[0]}..{span[1]}"
        data = present[span]
        if data is not None:
            entries = entry_count(data)
            fetched_at = _earlier_fetch_time(earlier.get(name), data) or store.utc_text(
                store.modified_at(path)
            )
            log.info("%s: %d entries (kept from an earlier attempt)", label, entries)
        else:
            page = _fetch(client, span, raw, plan, to_fetch)
            data, entries, fetched_at = page.body, page.entries, store.utc_text(page.fetched_at)
            _write(path, data, mtime=page.fetched_at)
            to_fetch.remove(span)
            remaining = "unknown" if page.remaining is None else page.remaining
            log.info("%s: %d entries (rate limit remaining %s)", label, entries, remaining)
            if page.remaining == 0 and to_fetch:
                raise StepError(
                    f"rate limit used up (X-RateLimit-Remaining: 0) with {len(to_fetch)} "
                    f"chunk(s) still to fetch; {_kept(raw, plan, to_fetch)}",
                    exit_codes.UPSTREAM_UNAVAILABLE,
                )
        chunks.append(
            {
                "file": name,
                "start": span[0].isoformat(),
                "end": span[1].isoformat(),
                "entries": entries,
                "bytes": len(data),
                "sha256": store.sha256(data),
                "fetched_at": fetched_at,
            }
        )

    for stray in store.strays(raw, {c["file"] for c in chunks}):
        log.info("removing %s (not part of this run's range)", stray.name)
        stray.unlink(missing_ok=True)

    manifest = _manifest(request, chunks)
    _write(manifest_path, store.manifest_bytes(manifest))
    total = manifest["totals"]["entries"]
    fetched = len(plan) - sum(data is not None for data in present.values())
    summary = {
        "run_id": request.run_id,
        "start": request.start.isoformat(),
        "end": request.end.isoformat(),
        "raw_dir": str(raw),
        "manifest": str(manifest_path),
        "chunks": len(plan),
        "chunks_fetched": fetched,
        "chunks_reused": len(plan) - fetched,
        "requests": client.requests,
        "entries": total,
    }
    if total == 0:
        raise NothingToDo(
            f"the API has no entries for {request.start}..{request.end} "
            f"(manifest written to {manifest_path})"
        )
    return summary


def _manifest(request: Request, chunks: list[dict]) -> dict:
    return {
        "run_id": request.run_id,
        "range": {
            "start": request.start.isoformat(),
            "end": request.end.isoformat(),
            "days": (request.end - request.start).days + 1,
        },
        "api_url": request.api_url,
        "chunk_days": request.chunk_days,
        "chunks": chunks,
        "totals": {
            "chunks": len(chunks),
            "entries": sum(c["entries"] for c in chunks),
            "bytes": sum(c["bytes"] for c in chunks),
        },
    }


def _write(path: Path, data: bytes, mtime: dt.datetime | None = None) -> None:
    try:
        store.atomic_write(path, data, mtime)
    except OSError as exc:
        raise StepError(
            f"cannot write {path}: {exc.strerror}", exit_codes.UPSTREAM_UNAVAILABLE
        ) from None


def _fetch(client: ApodClient, span: dates.Span, raw: Path, plan: list, to_fetch: list):
    try:
        return client.fetch(*span)
    except StepError as exc:
        if exc.code == exit_codes.UPSTREAM_UNAVAILABLE:
            raise StepError(f"{exc.reason}; {_kept(raw, plan, to_fetch)}", exc.code) from None
        raise


def _kept(raw: Path, plan: list, to_fetch: list) -> str:
    done = len(plan) - len(to_fetch)
    return (
        f"{done} of {len(plan)} chunk(s) are kept in {raw}; rerun with the same run id "
        "to fetch only the rest"
    )


def _earlier_fetch_time(earlier: dict | None, data: bytes) -> str | None:
    if earlier and earlier.get("sha256") == store.sha256(data):
        return earlier.get("fetched_at")
    return None
