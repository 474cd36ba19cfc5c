"""Building a plan side by side: every node whose parents are built, at most `jobs` at a
time, the first ready in the plan's order first (so a caller puts first what it needs
first). After a failure nothing new starts; what runs is let finish."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait


def schedule(
    order: Sequence[str],
    waits_for: Mapping[str, Sequence[str]],
    jobs: int,
    build: Callable[[str], None],
    started: Callable[[str], None],
    ended: Callable[[str, BaseException | None], None],
    stop: Callable[[], None] = lambda: None,
) -> bool:
    """Build every node of `order` (parents first) with `build`, which raises when it
    fails; `started` and `ended` (with the error, or None) are called in this thread.
    True when every node was built. Interrupted (a signal, ^C), it calls `stop`, which
    ends what the builds run, before it waits for them."""
    jobs = max(1, jobs)
    built: set[str] = set()
    begun: set[str] = set()
    running: dict[Future, str] = {}
    failed = False
    with ThreadPoolExecutor(max_workers=jobs) as pool:
        try:
            while True:
                for node in order if not failed else ():
                    if len(running) >= jobs:
                        break
                    if node not in begun and all(p in built for p in waits_for[node]):
                        begun.add(node)
                        started(node)
                        running[pool.submit(build, node)] = node
                if not running:
                    break
                finished, _ = wait(running, return_when=FIRST_COMPLETED)
                for future in finished:
                    node = running.pop(future)
                    error = future.exception()
                    ended(node, error)
                    if error is None:
                        built.add(node)
                    else:
                        failed = True
        except BaseException:
            stop()
            raise
    return not failed and len(built) == len(order)
