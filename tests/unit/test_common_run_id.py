"""The run id, one contract for every step (apod_common.settings): each step checks it the
same way, and steps run one after another without one meet in the same default batch."""

import datetime as dt
import json
from pathlib import Path

import pytest

from apod_common import exit_codes, layout, runner, settings
from apod_extract.main import main as extract_main
from apod_load.main import main as load_main
from apod_testserver.server import Config, serving
from apod_transform.main import main as transform_main
from apod_version.main import main as version_main

pytestmark = pytest.mark.unit

SAMPLE = Path(__file__).resolve().parents[2] / "tests" / "fixtures" / "apod"

# Each step's command line, but for its --run-id, on a data directory.
STEPS = {
    "extract": (extract_main, lambda data: ["--start", "2024-01-01", "--data-dir", data]),
    "transform": (transform_main, lambda data: ["--data-dir", data]),
    "load": (load_main, lambda data: ["csv", "--data-dir", data]),
    "version": (version_main, lambda data: ["--csv", f"{data}/{layout.CSV_NAME}"]),
}


@pytest.fixture(autouse=True)
def no_run_id_in_the_environment(monkeypatch):
    for name in ("APOD_RUN_ID", "APOD_DATA_DIR", "NASA_API_KEY_FILE", "APOD_API_URL"):
        monkeypatch.delenv(name, raising=False)


def step(capsys, name: str, argv: list[str]) -> tuple[int, dict]:
    code = runner.run(name, STEPS[name][0], argv)
    out, _ = capsys.readouterr()
    return code, json.loads(out.strip().splitlines()[-1])


@pytest.mark.parametrize("run_id", ["a\nb", "tab\there", "   "])
@pytest.mark.parametrize("name", STEPS)
def test_every_step_refuses_an_unprintable_run_id(tmp_path, capsys, name, run_id):
    code, summary = step(capsys, name, [*STEPS[name][1](str(tmp_path)), "--run-id", run_id])
    assert code == exit_codes.USAGE
    assert "run id" in summary["reason"]


def test_without_a_run_id_the_steps_meet_in_the_default_batch(monkeypatch, tmp_path, capsys):
    with serving(Config(SAMPLE, port=0, today=dt.date(2024, 3, 31))) as server:
        monkeypatch.setenv("APOD_API_URL", server.apod_url)
        extracted = step(capsys, "extract", STEPS["extract"][1](str(tmp_path)))
    transformed = step(capsys, "transform", STEPS["transform"][1](str(tmp_path)))
    assert [code for code, _ in (extracted, transformed)] == [exit_codes.OK] * 2
    assert {summary["run_id"] for _, summary in (extracted, transformed)} == {"manual"}
    assert settings.DEFAULT_RUN_ID == "manual"
    assert transformed[1]["staged"] == str(layout.staged_batch(tmp_path, "manual"))
