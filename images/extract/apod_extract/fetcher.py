"""Fetch day ranges concurrently: a few requests in flight, as many as the API keeps up with.

The real service answers a range by scraping one page per day, so a request costs
seconds and a backfill is hundreds of them; in flight side by side they take a fraction
of the time. All decisions are taken in the calling thread (which range next, retry,
split, stop); the worker threads only send one request each and hand back its outcome.
"""

from __future__ import annotations

import logging
import math
import statistics
from collections import deque
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass

from apod_common import exit_codes
from apod_common.errors import StepError
from apod_extract import pieces
from apod_extract.client import ApodClient, Page, Retryable
from apod_extract.dates import Span
from apod_extract.pool import Pool

log = logging.getLogger("extract")

# Answers whose time per day makes the pace: a median of this many, so that one slow
# answer (a busy moment, a hang that did get through) does not move it.
PACE_SAMPLES = 16


@dataclass
class Job:
    span: Span
    chunk: int  # the planned chunk (0-based) this range belongs to
    retries: int = 0  # retries spent on this range
    not_before: float = 0.0  # monotonic time before which it waits (backoff, Retry-After)
    sent_at: float = 0.0  # when its request went out


class QuotaUsedUp(StepError):
    """X-RateLimit-Remaining reached 0 with ranges still to fetch."""

    def __init__(self) -> None:
        super().__init__(
            "rate limit used up (X-RateLimit-Remaining: 0)", exit_codes.UPSTREAM_UNAVAILABLE
        )


class Fetcher:
    def __init__(self, client: ApodClient, concurrency: int):
        self.client = client
        self.policy = client.policy
        self.clock = client.policy.clock
        self.pool = Pool(concurrency)
        self.max_days = math.inf  # lowered when the gateway cuts a range for its length
        self.cut_after = math.inf  # the quickest cut seen: about the gateway's time limit
        self._pace: deque[float] = deque(maxlen=PACE_SAMPLES)  # seconds per day, recent
        self.requests = 0  # sent, retries and split parts included
        self.most_in_flight = 0
        # Turns of the scheduling loop: each one launches, waits for an answer or sleeps
        # until a job is due, so a loop that waits without spinning takes about one per
        # request (tests count them instead of timing the CPU).
        self.turns = 0
        self._queue: list[Job] = []
        self._running: dict[Future, Job] = {}
        self._failure: BaseException | None = None
        self._longest = 1  # days of the longest range to fetch

    @property
    def in_flight(self) -> int:
        return len(self._running)

    def run(self, jobs: list[Job], done: Callable[[Job, Page], None]) -> None:
        """Fetch every job's range and hand each page to `done` (in this thread).

        On the first failure no new request is sent; those in flight are let finish (and
        their pages handed over, so they are kept), then the failure is raised.
        """
        self._queue = list(jobs)
        self._longest = max((pieces.days(job.span) for job in jobs), default=1)
        with ThreadPoolExecutor(self.pool.ceiling, thread_name_prefix="extract") as workers:
            while self._queue or self._running:
                self.turns += 1
                now = self.clock.monotonic()
                if self._failure is None:
                    self._launch(workers, now)
                if not self._running:
                    if self._failure is not None or not self._queue:
                        break
                    # Nothing in flight: some job is waiting for its time, never for an answer.
                    self.clock.sleep(max(0.0, self._next_start(now) - now))
                    continue
                timeout = None  # wait for an answer, unless a job's time comes first
                if self._failure is None and (start := self._next_start(now)) is not None:
                    timeout = max(0.0, start - now)
                finished, _ = wait(self._running, timeout=timeout, return_when=FIRST_COMPLETED)
                for future in sorted(finished, key=lambda f: self._running[f].span):
                    self._settle(future, self._running.pop(future), done)
        if self._failure is not None:
            raise self._failure

    # --- what to send next ---------------------------------------------------------------

    def _takers(self) -> list[Job]:
        """The jobs a free slot may take, due or not.

        A range waiting to be retried keeps its slot, as a request sleeping on its backoff
        would: backing off means fewer requests, not the next range sooner. So with one
        slot the run is strictly in order, and retries never starve behind fresh ranges.
        """
        width = self.pool.width
        if len(self._running) >= width:
            return []
        retries = [job for job in self._queue if job.retries]
        if len(self._running) + len(retries) >= width:
            return retries
        return self._queue

    def _next_job(self, now: float) -> Job | None:
        """A retry that is due first, else the oldest due days, if a slot is free."""
        if now < self.pool.paused_until:
            return None
        due = [job for job in self._takers() if job.not_before <= now]
        retries = [job for job in due if job.retries]
        return min(retries or due, key=lambda job: job.span, default=None)

    def _next_start(self, now: float) -> float | None:
        """When a request may go next; None when only an answer can free a slot."""
        takers = self._takers()
        if not takers:
            return None
        first = min(job.not_before for job in takers)
        return max(first, self.pool.paused_until, now)

    def _launch(self, workers: ThreadPoolExecutor, now: float) -> None:
        while (job := self._next_job(now)) is not None:
            self._queue.remove(job)
            parts = pieces.within(job.span, self.max_days)
            if len(parts) > 1:  # the gateway cut ranges this long earlier in the run
                job.span = parts[0]
                self._queue += [Job(part, job.chunk, not_before=now) for part in parts[1:]]
            self.requests += 1
            job.sent_at = now
            self._running[workers.submit(self.client.attempt, *job.span)] = job
            self.most_in_flight = max(self.most_in_flight, len(self._running))

    # --- what an answer means ------------------------------------------------------------

    def _settle(self, future: Future, job: Job, done: Callable[[Job, Page], None]) -> None:
        try:
            page = future.result()
        except Retryable as exc:
            if self._failure is None:
                self._again(job, exc)
            return
        except Exception as exc:  # noqa: BLE001 - StepError or a bug: raised after the drain
            self._failure = self._failure or exc
            return
        self.pool.answered(page.remaining)
        self._pace.append((self.clock.monotonic() - job.sent_at) / pieces.days(job.span))
        self._widen()
        try:
            done(job, page)
        except Exception as exc:  # noqa: BLE001 - a file not written: raised after the drain
            self._failure = self._failure or exc
            return
        if page.remaining == 0 and (self._queue or self._running) and self._failure is None:
            self._failure = QuotaUsedUp()

    def _per_day(self) -> float | None:
        """What a day of a range costs now, from the recent answers; None before any."""
        return statistics.median(self._pace) if self._pace else None

    def _explained_by_length(self, days: int) -> bool:
        """Whether a cut of `days` days fits the pace: a range that should take well under
        the cut's time was cut by a hang, not by its length."""
        per_day = self._per_day()
        return per_day is None or per_day * days >= self.cut_after / 2

    def _widen(self) -> None:
        """Ask longer ranges again once twice the length would take under half the time
        after which the gateway cut."""
        per_day = self._per_day()
        if self.max_days == math.inf or per_day is None:
            return
        if per_day * 2 * self.max_days < self.cut_after / 2:
            self.max_days = 2 * self.max_days if 2 * self.max_days < self._longest else math.inf
            log.info(
                "answers take %.3f s per day, the gateway cut after %.1f s: up to %s per "
                "request again",
                per_day, self.cut_after,
                "whole chunks" if self.max_days == math.inf else f"{self.max_days:g} days",
            )  # fmt: skip

    def _again(self, job: Job, exc: Retryable) -> None:
        now = self.clock.monotonic()
        start, end = job.span
        if exc.cut and pieces.days(job.span) > 1:
            self.cut_after = min(self.cut_after, now - job.sent_at)
            first, second = pieces.halves(job.span)
            if self._explained_by_length(pieces.days(job.span)):
                self.max_days = min(self.max_days, pieces.days(first))
                why = f"at most {self.max_days:g} day(s) per request from now on"
            else:
                why = f"a hang, not the length: answers take {self._per_day():.3f} s per day"
            self.pool.troubled()
            log.warning(
                "%s..%s: %s; asking %s..%s and %s..%s instead (%s; at most %d in flight)",
                start, end, exc, *first, *second, why, self.pool.width,
            )  # fmt: skip
            self._queue += [
                Job(first, job.chunk, not_before=now),
                Job(second, job.chunk, not_before=now),
            ]
            return
        if job.retries >= self.policy.max_retries:
            self._failure = StepError(
                f"API unavailable for {start}..{end} after {job.retries + 1} attempt(s): {exc}",
                exit_codes.UPSTREAM_UNAVAILABLE,
            )
            return
        delay = self.policy.delay(job.retries) if exc.wait is None else exc.wait
        if exc.limited:
            self.pool.rate_limited(now, delay)
        else:
            self.pool.troubled()
        job.retries += 1
        job.not_before = now + delay
        log.warning(
            "%s..%s: %s; retry %d/%d in %.1f s (at most %d in flight)",
            start, end, exc, job.retries, self.policy.max_retries, delay, self.pool.width,
        )  # fmt: skip
        self._queue.append(job)
