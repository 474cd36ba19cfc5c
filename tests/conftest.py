"""Suite-wide rules: in CI (CI=true) a skipped test is a failed run; every run leaves a
per-tier report (tier = the folder under tests/) that .ci/run prints last."""

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


def write_report(tiers: dict[str, Counter], exitstatus: int) -> Path:
    REPORT_DIR.mkdir(parents=True, exist_ok=True)
    total = sum(tiers.values(), Counter())
    lines = [
        f"tier {name:<12} " + "  ".join(f"{o} {counts[o]}" for o in OUTCOMES[:4])
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
        "total": dict(total),
    }
    (REPORT_DIR / "summary.json").write_text(json.dumps(data, indent=2) + "\n", "utf-8")
    return REPORT_DIR / "summary.txt"


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
        write_report(tier_counts(reporter.stats), session.exitstatus)
