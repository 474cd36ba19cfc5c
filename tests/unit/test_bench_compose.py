"""The compose bench's choice of days: each week it times is new to the stack."""

from __future__ import annotations

import pytest

from apod_tools.bench_compose import weeks_before

pytestmark = pytest.mark.unit


def test_weeks_end_the_day_before_and_follow_each_other_back_without_overlap():
    assert weeks_before("2026-08-22", 3) == [
        ("2026-08-15", "2026-08-21"),
        ("2026-08-08", "2026-08-14"),
        ("2026-08-01", "2026-08-07"),
    ]


def test_a_week_crosses_a_month_and_a_year():
    assert weeks_before("2024-01-03", 1) == [("2023-12-27", "2024-01-02")]
