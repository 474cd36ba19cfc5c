"""`make help` (scripts/make_help.py): every described target once, under the area its
`##@` line gives it, areas in the order make reads them."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import make_help
import pytest

pytestmark = pytest.mark.unit

REPO = Path(__file__).resolve().parents[2]
_DESCRIBED = re.compile(r"^([A-Za-z0-9][A-Za-z0-9_.-]*)\s*:(?!=)[^#]*##\s", re.MULTILINE)


def listed(help_text: str) -> dict[str, list[str]]:
    areas: dict[str, list[str]] = {}
    for block in help_text.strip().split("\n\n"):
        title, *rows = block.splitlines()
        areas[title.rstrip(":")] = [row.split()[1] for row in rows]
    return areas


def test_make_help_lists_every_described_target_once_by_area():
    makefiles = [REPO / "Makefile", *sorted((REPO / "mk").glob("*.mk"))]
    described = {t for f in makefiles for t in _DESCRIBED.findall(f.read_text(encoding="utf-8"))}
    out = subprocess.run(
        ["make", "--no-print-directory", "help"], cwd=REPO, capture_output=True, text=True,
        check=True,
    ).stdout  # fmt: skip
    areas = listed(out)
    shown = [t for targets in areas.values() for t in targets]
    assert sorted(shown) == sorted(described)  # each once
    assert make_help.OTHER not in areas, "a target above every `##@ Area` line of its file"
    assert next(iter(areas)) == "Start here"
    assert areas["Start here"][:2] == ["demo", "test"]


def test_includes_are_read_where_they_stand_and_areas_gather_across_files(tmp_path, monkeypatch):
    (tmp_path / "mk").mkdir()
    (tmp_path / "mk" / "a.mk").write_text(
        "loose: ## above every area\n##@ Start here\ndemo: ## the demo\n##@ Compose\n"
        "up: ## start\nVAR := x ## not a target\n"
    )
    (tmp_path / "mk" / "b.mk").write_text("##@ Compose\ndown: dep ## stop\n")
    (tmp_path / "Makefile").write_text(
        "-include mk/*.mk\n-include mk/none-*.mk\n##@ Start here\ntest: venv ## tests\n"
        "##@ Housekeeping\nclean: ## clean\n$(UV): x ## not listed\nhidden:\n"
    )
    monkeypatch.chdir(tmp_path)
    areas = make_help.by_area(make_help.targets(Path("Makefile")))
    assert {area: [t for t, _ in entries] for area, entries in areas.items()} == {
        "Start here": ["demo", "test"],
        "Compose": ["up", "down"],
        "Housekeeping": ["clean"],
        "Other": ["loose"],
    }
    assert listed(make_help.render(areas)) == {
        area: [t for t, _ in entries] for area, entries in areas.items()
    }


def test_a_missing_include_that_must_exist_is_an_error(tmp_path, monkeypatch):
    (tmp_path / "Makefile").write_text("include mk/missing.mk\n")
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit, match="no such file"):
        make_help.targets(Path("Makefile"))
