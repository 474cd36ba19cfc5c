"""Suite-wide rules: in CI (CI=true) a skipped test is a failed run; every run leaves a
per-tier report (tier = the folder under tests/) that .ci/run prints last.

The report (REPORT_DIR): summary.txt and summary.json (outcomes and seconds per tier),
durations.json (each test's seconds: setup, call and teardown, as pytest measured them,
so a session fixture's start counts in the first test that uses it) and slowest.txt (the
SLOWEST tests). A report left by the previous run (REPORT_DIR with ".previous" appended,
where .ci/run moves it) is compared with: each tier's and each slow test's seconds then.
"""

import json
import os
from collections import Counter
from pathlib import Path

import pytest

REPORT_DIR = Path(
    os.environ.get("APOD_TEST_REPORT_DIR")
    or Path(__file__).resolve().parents[1] / "artifacts" / "test-report"
)
# pytest's own outcome names, in the order its closing line uses them.
OUTCOMES = ("passed", "failed", "skipped", "error", "xfailed", "xpassed")
SLOWEST = 25
# Seconds per test id, summed over its setup, call and teardown.
_durations: dict[str, float] = {}


def _in_ci() -> bool:
    return os.environ.get("CI", "").lower() in ("1", "true", "yes")


def _tier(nodeid: str) -> str:
    parts = nodeid.split("::", 1)[0].split("/")
    return parts[1] if len(parts) > 2 and parts[0] == "tests" else "other"


def tier_counts(stats: dict) -> dict[str, Counter]:
    """Outcome counts per tier, from the same reports pytest's closing line counts."""
    tiers: dict[str, Counter] = {}
    for outcome in OUTCOMES:
        for report in stats.get(outcome, []):
            nodeid = getattr(report, "nodeid", "")
            if not nodeid:
                continue  # a collection-level warning, not a test
            tiers.setdefault(_tier(nodeid), Counter())[outcome] += 1
    return tiers


def tier_seconds(durations: dict[str, float]) -> dict[str, float]:
    tiers: dict[str, float] = {}
    for nodeid, seconds in durations.items():
        tiers[_tier(nodeid)] = tiers.get(_tier(nodeid), 0.0) + seconds
    return tiers


def _previous(report_dir: Path) -> dict:
    path = report_dir.with_name(report_dir.name + ".previous") / "durations.json"
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}


def _was(seconds: float | None) -> str:
    return "" if seconds is None else f" (was {seconds:.1f} s)"


def write_report(
    tiers: dict[str, Counter], exitstatus: int, durations: dict[str, float] | None = None
) -> Path:
    REPORT_DIR.mkdir(parents=True, exist_ok=True)
    durations = durations or {}
    seconds = tier_seconds(durations)
    before = _previous(REPORT_DIR)
    total = sum(tiers.values(), Counter())
    lines = [
        f"tier {name:<12} "
        + "  ".join(f"{o} {counts[o]}" for o in OUTCOMES[:4])
        + f"  {seconds.get(name, 0.0):.1f} s{_was(before.get('tiers', {}).get(name))}"
        for name, counts in sorted(tiers.items())
    ]
    # Same wording as pytest's closing line, so the totals can be compared at a glance.
    lines.append(
        f"total: {total['passed']} passed, {total['failed'] + total['error']} failed, "
        f"{total['skipped']} skipped"
    )
    (REPORT_DIR / "summary.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")
    data = {
        "exit_status": int(exitstatus),
        "tiers": {name: dict(counts) for name, counts in sorted(tiers.items())},
        "seconds": {name: round(value, 3) for name, value in sorted(seconds.items())},
        "total": dict(total),
    }
    (REPORT_DIR / "summary.json").write_text(json.dumps(data, indent=2) + "\n", "utf-8")
    tests = dict(sorted(durations.items(), key=lambda item: -item[1]))
    (REPORT_DIR / "durations.json").write_text(
        json.dumps({"tiers": data["seconds"], "tests": tests}, indent=2) + "\n", "utf-8"
    )
    then = before.get("tests", {})
    slowest = [
        f"{value:8.1f} s  {nodeid}{_was(then.get(nodeid))}"
        for nodeid, value in list(tests.items())[:SLOWEST]
    ]
    (REPORT_DIR / "slowest.txt").write_text("\n".join(slowest) + "\n", encoding="utf-8")
    return REPORT_DIR / "summary.txt"


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    _durations[report.nodeid] = _durations.get(report.nodeid, 0.0) + report.duration


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    if reporter is None:
        return
    skipped = reporter.stats.get("skipped", [])
    if _in_ci() and skipped:
        reporter.write_line(
            f"CI=true: {len(skipped)} test(s) skipped; every tier must run in CI", red=True
        )
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
    if not hasattr(session.config, "workerinput"):
        write_report(tier_counts(reporter.stats), session.exitstatus, _durations)
