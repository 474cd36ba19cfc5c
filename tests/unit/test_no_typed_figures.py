"""No figure typed by hand: durations, rates and ratios come only from the benchmark
reports (docs/BENCHMARKS*.md, written by `make bench` / `make bench-cold`); READMEs and
comments cite a section there instead.

The scan covers what people read about the project: README.md, everything under images/
(READMEs, Dockerfiles, scripts, code comments), dags/, k8s/ (the manifests), compose/,
docker-compose.yml, docs/*.md, the Makefile, mk/ and scripts/*.sh. tests/ is left out
(its assertions quote the steps' own messages) and so are the bench's own reports
(docs/BENCHMARKS*).

How a quantity is told to be a setting (fine) or a figure (fails):
1. A quantity is a number with a unit of time (ms, s, min, h and their words), a rate
   (rows/s, MB/s, per second) or a ratio (32x, 10 %, "3 times faster"); or a duration in
   words ("a quarter of an hour", "a few minutes"). "429s" (HTTP statuses) is not one.
2. It is a setting when it is written as one: the value of a key (a YAML key starting its
   line or in backticks: `interval: 5s`; an assignment: `retry_delay=30s`), of a
   command-line flag (`--timeout 1`, `--wait 180s`), or a bound (`<= 1.5x`, `≥ 2 s`).
3. Or when its sentence (the text between `.`, `|` and blank lines) names what it
   configures: a timeout, limit, interval, period, delay, retry, back-off, wait, deadline,
   grace period, default, threshold, schedule ("every 30 s"), an API's quota, or an
   issue's target/goal.
4. Unless the words just before it say it was observed: "takes", "took", "lasts", "about",
   "around", "roughly", "nearly", "~" ... A setting is exact; "about 16 s" is a
   measurement typed by hand, whatever the sentence around it configures.
Anything else is a figure. ALLOWED holds the few quantities these rules misjudge, each
with why.
"""

from __future__ import annotations

import re
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

pytestmark = pytest.mark.unit

REPO = Path(__file__).resolve().parents[2]

# (path, the line's text around the quantity): misjudged by the rules above.
ALLOWED = {
    # Quotes extract's own message, computed from the 3000 s Retry-After of that scenario.
    ("docs/RELIABILITY.md", "try again in about 50 min"),
    # The real API gateway's time-out as its users report it: a setting of a service that
    # cannot be reached here, modelled by the test server's --gateway-timeout.
    ("images/testserver/README.md", "users report it after about 60 s"),
}

_NUMBER = r"(?<![\w.\-/])(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?"
_TIME = r"(?:ms|milliseconds?|s|secs?|seconds?|min|mins|minutes?|h|hrs?|hours?)"
_UNIT = (
    rf"\s?{_TIME}(?![\w/])"  # a duration
    rf"|\s?[A-Za-z]+/(?:s|sec|second|min|minute|h|hour)\b"  # a rate: rows/s, MB/s
    r"|\s(?:[A-Za-z]+\s)?per\s(?:second|minute|hour)\b"  # a rate in words
    r"|[x×](?![\w])|\s?%"  # a ratio: 32x, 10 %
    r"|\stimes\s(?:faster|slower|quicker|longer|shorter|as\sfast)\b"
)
_HOW_MANY = (
    r"one|two|three|four|five|six|seven|eight|nine|ten|twenty|thirty|a\sfew|few|several"
    r"|half\san?|a\squarter\sof\san?|a\scouple\sof|an?(?=\s(?:minute|hour))"
)
QUANTITY = re.compile(
    rf"(?P<number>{_NUMBER})(?P<unit>{_UNIT})"
    rf"|(?<![\w-])(?P<words>(?:{_HOW_MANY})\s(?:second|minute|hour)s?)\b",
    re.IGNORECASE,
)
_HTTP_STATUSES = re.compile(r"^[1-5]\d\ds$")  # "429s": answers with that status
_WRITTEN_AS_SETTING = re.compile(
    r"(?:^\s*(?:-\s+)?[\w.\-]+:|`[\w.\-]+:|[\w\]]=|--[\w-]+[ =]|[<>≤≥]=?)\s*[\"'`]?$"
)
_SETTING_WORDS = re.compile(
    r"time-?outs?|timed\sout|_timeout|limit|interval|period|delay|retr(?:y|ies)|back-?off"
    r"|\bwait|deadline|grace|default|threshold|\bevery\b|schedule|quota|\btarget|\bgoal",
    re.IGNORECASE,
)
_OBSERVED = re.compile(
    r"(?:\b(?:takes?|took|taking|lasts?|lasted|about|around|roughly|approximately|nearly"
    r"|almost|typically|usually)|~)\s*(?:\w+\s+){0,2}$",
    re.IGNORECASE,
)
_SENTENCE_END = re.compile(r"(?<=[.!?])\s|\||\n[ \t#]*\n")


@dataclass(frozen=True)
class Finding:
    path: str
    line: int
    text: str  # the quantity as written
    context: str  # its line

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {self.text!r} in: {self.context.strip()}"


def sentence_around(text: str, start: int, end: int) -> str:
    ends = [m for m in _SENTENCE_END.finditer(text)]
    before = max((m.end() for m in ends if m.end() <= start), default=0)
    after = min((m.start() for m in ends if m.start() >= end), default=len(text))
    return text[before:after]


def figures(text: str, path: str = "<text>") -> list[Finding]:
    """The quantities of `text` that are not settings (the module's docstring says how)."""
    found = []
    for match in QUANTITY.finditer(text):
        if match["number"] and _HTTP_STATUSES.match(match["number"] + match["unit"]):
            continue
        line_start = text.rfind("\n", 0, match.start()) + 1
        line_end = text.find("\n", match.end())
        line = text[line_start : None if line_end < 0 else line_end]
        before = text[line_start : match.start()]
        observed = _OBSERVED.search(before[-40:])
        if not observed:
            if _WRITTEN_AS_SETTING.search(before):
                continue
            if _SETTING_WORDS.search(sentence_around(text, match.start(), match.end())):
                continue
        number = text.count("\n", 0, match.start()) + 1
        if any(path == where and snippet in line for where, snippet in ALLOWED):
            continue
        found.append(Finding(path, number, match.group(0).strip(), line))
    return found


def scanned_files() -> list[Path]:
    listed = subprocess.run(
        ["git", "-C", str(REPO), "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        capture_output=True,
        check=True,
    ).stdout.split(b"\0")
    names = sorted({n.decode() for n in listed if n})
    scope = re.compile(
        r"^(?:README\.md|docker-compose\.yml|docs/(?!BENCHMARKS)[^/]+\.md|Makefile|mk/[^/]+\.mk"
        r"|scripts/[^/]+\.sh|images/.+|dags/.+|k8s/.+|compose/.+)$"
    )
    return [REPO / n for n in names if scope.match(n) and (REPO / n).is_file()]


def test_no_figure_is_typed_in_the_docs_manifests_or_comments():
    found = []
    for path in scanned_files():
        try:
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            continue  # not text
        found += figures(text, str(path.relative_to(REPO)))
    assert not found, (
        "figures typed by hand (cite the section of docs/BENCHMARKS*.md instead; a "
        "setting is written as one, tests/unit/test_no_typed_figures.py says how):\n"
        + "\n".join(map(str, found))
    )


# --- the scanner itself ------------------------------------------------------------------


@pytest.mark.parametrize(
    "figure",
    [
        "The upsert loads 100,000 rows in 1.87 s.",
        "It reaches 53,584 rows/s on this machine.",
        "That is 32x a row-by-row loop.",
        "The merge is 2.67x slower than a bare COPY.",
        "weed's graceful stop takes about 16 s.",
        "`make bench` takes about a quarter of an hour.",
        "A warm build is 3 times faster.",
        "Waiting costs ~5 % of a core.",
        "The transform of the archive: 1.18 s wall.",
    ],
)
def test_a_figure_added_to_a_readme_fails(figure):
    readme = f"# apod-load\n\nLoads a staged batch.\n\n{figure}\n\n## Tests\n"
    assert [f.line for f in figures(readme, "images/load/README.md")] == [5]


@pytest.mark.parametrize(
    "setting",
    [
        "    healthcheck:\n      interval: 5s\n      timeout: 20s\n      start_period: 90s",
        "HEALTHCHECK --interval=5s --timeout=6s --start-period=60s --retries=3 \\",
        "Every task: `retries=3`, `retry_delay=30s`, `max_retry_delay=10min`.",
        "`execution_timeout` (extract 45 min, version 30 min, the others 15 min).",
        "The image's `HEALTHCHECK` runs it every 5 s.",
        "a retry waits behind it up to `--lock-timeout` (600 s), then exits 5.",
        "against issue 16's target (under 240 s) and goal (180 s).",
        "| 1.3 | 429 with a short `Retry-After` (2 s) | exit 0 after ≥ 2 s |",
        "stops instead of spending requests on 429s.",
        "the default threshold (10 %) would stop the run.",
        "weed stops in its own time: give it 30 s (`stop_grace_period`).",
    ],
)
def test_a_setting_passes(setting):
    assert figures(setting) == []


def test_an_observed_duration_fails_even_beside_a_setting():
    text = "weed's graceful stop takes about 16 s: give it 30 s (`stop_grace_period`)."
    assert [f.text for f in figures(text)] == ["16 s"]


def test_the_scan_covers_the_guides_in_docs_but_not_the_bench_reports():
    scanned = {str(p.relative_to(REPO)) for p in scanned_files()}
    guides = {p for p in scanned if p.startswith("docs/")}
    assert {"docs/RELIABILITY.md", "docs/by-hand.md"} <= guides
    assert not {p for p in guides if p.startswith("docs/BENCHMARKS")}
