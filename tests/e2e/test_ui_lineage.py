"""Lineage on the compose stack: the asset events of a run name the data version the
data volume's repository holds, a batch with a hostile entry shows its rejected rows in
its events, `make lineage ON=compose` answers for a loaded date, and the Airflow UI shows
the md5 and the commit on the asset's page (screenshot in artifacts/).
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from urllib.parse import quote

import pytest
from support.services import REPO

from e2e.stack import DEMO_DATE
from e2e.test_ui_browser import chromium, page, sign_in  # noqa: F401 - fixtures

pytestmark = [pytest.mark.compose, pytest.mark.browser]

# The sample holds January 2024 only (the other compose tests use it): these ten days are
# served from entries put into the stack's test server, the last one hostile.
GOOD_DAYS = [f"2024-02-{day:02d}" for day in range(1, 10)]
HOSTILE_DAY = "2024-02-10"
HOSTILE_RANGE = (GOOD_DAYS[0], HOSTILE_DAY)
PUT_ENTRY = """\
import json, sys, urllib.request
request = urllib.request.Request(
    "http://127.0.0.1:8000/_control/entries/" + sys.argv[1], data=sys.argv[2].encode(),
    method="PUT", headers={"Content-Type": "application/json"})
print(urllib.request.urlopen(request, timeout=10).status)
"""


def entry(day: str, media_type: str = "image") -> dict:
    return {
        "date": day,
        "title": f"Entry {day}",
        "explanation": f"Explanation {day}",
        "media_type": media_type,
        "url": f"https://apod.nasa.gov/apod/image/2402/{day}.jpg",
        "service_version": "v1",
    }


def events_of(stack, run_id: str) -> dict[str, dict]:
    """The run's asset events through the REST API: asset name -> extra."""
    path = f"/api/v2/assets/events?source_run_id={quote(run_id, safe='')}"
    found = stack.api().call("GET", path)["asset_events"]
    return {event["name"]: event["extra"] for event in found}


@pytest.fixture(scope="module")
def hostile_run(compose_stack) -> dict:
    """A run over ten days whose served entries include one with an unknown media type
    (one in ten: within transform's default reject ratio)."""
    served = [entry(day) for day in GOOD_DAYS] + [entry(HOSTILE_DAY, media_type="hologram")]
    for item in served:
        put = compose_stack.compose(
            "exec", "-T", "apod-testserver", "python", "-c", PUT_ENTRY, item["date"],
            json.dumps(item),
        )  # fmt: skip
        assert put.stdout.strip() in ("200", "201")
    summary = compose_stack.run_dag(*HOSTILE_RANGE)
    assert summary["state"] == "success", summary["log"][-3000:]
    return summary


def test_the_demo_run_events_name_the_repository_version(compose_stack):
    run_id = compose_stack.demo["run_id"]
    events = events_of(compose_stack, run_id)
    assert set(events) == {"apod_data.csv", "apod.apod_entries"}
    csv_event = events["apod_data.csv"]
    (commit_line,) = [c for c in compose_stack.commits_of_dvc_file() if run_id in c]
    assert csv_event["commit"] == commit_line.split()[0]
    dvc_file = compose_stack.in_data_volume(
        "git", "-C", "/data", "show", f"{csv_event['commit']}:apod_data.csv.dvc"
    )
    assert f"md5: {csv_event['md5']}" in dvc_file
    assert csv_event["dvc_pushed"] is True
    table_event = events["apod.apod_entries"]
    assert table_event["rows"] == csv_event["accepted"] == 1
    assert table_event["rejected"] == csv_event["rejected"] == 0


def test_hostile_rows_show_in_the_events_of_their_run(compose_stack, hostile_run):
    events = events_of(compose_stack, hostile_run["run_id"])
    for extra in events.values():
        assert extra["rejected"] == 1
        assert extra["reject_reasons"] == {"unknown media_type": 1}
        assert HOSTILE_DAY in compose_stack.in_data_volume("cat", extra["rejected_file"])
    assert events["apod.apod_entries"]["inserted"] == events["apod.apod_entries"]["rows"] == 9


def test_make_lineage_on_compose_names_the_demo_run_and_version(compose_stack):
    result = subprocess.run(
        [sys.executable, str(REPO / "scripts" / "lineage.py"), DEMO_DATE, "--compose", "--json"],
        env=compose_stack.script_env(),
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    lineage = json.loads(result.stdout)
    run_id = compose_stack.demo["run_id"]
    csv_event = events_of(compose_stack, run_id)["apod_data.csv"]
    assert (lineage["commit"], lineage["md5"]) == (csv_event["commit"], csv_event["md5"])
    assert lineage["run_id"] == lineage["commit_run_id"] == run_id
    assert lineage["loaded_at"]
    assert compose_stack.env["APOD_LOADER_PASSWORD"] not in result.stdout + result.stderr


def unfold_event_extras(shown) -> None:
    """Each asset event's `extra` is a JSON editor folded to `{ ⋯ }` until clicked open."""
    from playwright.sync_api import expect

    folded = shown.locator(".codicon-folding-collapsed")
    expect(folded.first).to_be_visible()  # the editors load after the page
    for _ in range(20):  # a page shows a few events; bounded in case a fold will not open
        if not folded.count():
            break
        folded.first.click(force=True)


def test_ui_shows_md5_and_commit_on_the_asset(page, compose_stack, hostile_run, artifacts_dir):  # noqa: F811
    from playwright.sync_api import expect

    csv_event = events_of(compose_stack, compose_stack.demo["run_id"])["apod_data.csv"]
    assets = compose_stack.api().call("GET", "/api/v2/assets?name_pattern=apod_data.csv")
    (asset,) = assets["assets"]

    page.goto(f"{compose_stack.ui_url}/assets/{asset['id']}")
    sign_in(page, compose_stack.env["AIRFLOW_ADMIN_PASSWORD"])
    # The login form sends the browser back to the asset by itself; a second goto here
    # would race that redirect (net::ERR_ABORTED).
    expect(page).to_have_url(re.compile(rf"/assets/{asset['id']}$"))
    unfold_event_extras(page)
    # A long value wraps onto two screen lines: the commit is looked for in its short form.
    expect(page.get_by_text(csv_event["md5"]).first).to_be_visible()
    expect(page.get_by_text(csv_event["commit"][:12]).first).to_be_visible()
    page.screenshot(path=str(artifacts_dir / "ui-lineage-asset.png"), full_page=True)

    # The hostile run's event, the newest on the same page (a run's own "Asset Events" tab
    # lists the events that triggered it, not those it produced), names its rejects.
    run_id = hostile_run["run_id"]
    expect(page.locator(f'a[href*="{run_id}"]').first).to_be_visible()
    expect(page.get_by_text("unknown media_type").first).to_be_visible()
    page.screenshot(path=str(artifacts_dir / "ui-lineage-rejected.png"), full_page=True)
