"""The Airflow UI on the compose stack, driven by headless Chromium (Debian's) via Playwright."""

from __future__ import annotations

import re
import subprocess
from collections.abc import Iterator

import pytest
from support.services import REPO

from e2e.stack import DAG_ID

pytestmark = pytest.mark.browser

CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
TIMEOUT_MS = 60_000


@pytest.fixture(scope="module")
def chromium() -> str:
    result = subprocess.run(
        [str(REPO / "scripts" / "ensure-chromium.sh")],
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    if result.returncode != 0:
        pytest.skip(f"no Chromium: {result.stderr.strip()[-500:]}")
    return result.stdout.strip()


@pytest.fixture
def page(chromium, compose_stack) -> Iterator:
    playwright_api = pytest.importorskip("playwright.sync_api")
    # The UI fetches as it renders; on a busy 2-core machine that takes longer than 5 s.
    playwright_api.expect.set_options(timeout=TIMEOUT_MS)
    with playwright_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=chromium, headless=True, args=CHROMIUM_ARGS
        )
        try:
            page = browser.new_page(viewport={"width": 1440, "height": 900})
            page.set_default_timeout(TIMEOUT_MS)
            yield page
        finally:
            browser.close()


def sign_in(page, password: str) -> None:
    page.get_by_label("Username").fill("admin")
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()


def test_ui_shows_the_successful_demo_run(page, compose_stack, artifacts_dir):
    from playwright.sync_api import expect

    run_id = compose_stack.demo["run_id"]
    assert compose_stack.demo["state"] == "success"

    page.goto(f"{compose_stack.ui_url}/dags/{DAG_ID}/runs")
    expect(page).to_have_url(re.compile(r"/auth/login"))  # not signed in yet
    sign_in(page, compose_stack.env["AIRFLOW_ADMIN_PASSWORD"])
    expect(page).to_have_url(re.compile(rf"/dags/{DAG_ID}/runs"))

    row = page.locator("table tbody tr").filter(has_text=run_id)
    expect(row).to_have_count(1)
    expect(row.get_by_text("Success", exact=True)).to_be_visible()
    page.screenshot(path=str(artifacts_dir / "ui-apod_etl-runs.png"), full_page=True)

    # The run's task grid: every step of the demo run shown.
    page.goto(f"{compose_stack.ui_url}/dags/{DAG_ID}")
    for task in ("extract", "transform", "load_postgres", "load_csv", "version"):
        expect(page.get_by_text(task, exact=True).first).to_be_visible()
    expect(page.get_by_text(re.compile(r"Last \d+ Dag Runs"))).to_be_visible()
    page.screenshot(path=str(artifacts_dir / "ui-apod_etl-grid.png"), full_page=True)


def test_ui_refuses_a_wrong_password(page, compose_stack):
    from playwright.sync_api import expect

    page.goto(f"{compose_stack.ui_url}/dags/{DAG_ID}")
    sign_in(page, "certainly-not-the-password")
    expect(page).to_have_url(re.compile(r"/auth/login"))
    expect(page.get_by_role("button", name="Sign in")).to_be_visible()
    response = page.goto(f"{compose_stack.ui_url}/api/v2/dags/{DAG_ID}")
    assert response is not None
    assert response.status == 401
    assert response.json() == {"detail": "Not authenticated"}
