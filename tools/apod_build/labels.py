"""Each image's labels, from images/build.toml's templates and the pyproject.toml files."""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping

from apod_build.errors import InputError
from apod_build.graph import Graph, read_text


def _project(graph: Graph, relative: str) -> dict:
    try:
        return tomllib.loads(read_text(graph.root, relative))["project"]
    except (tomllib.TOMLDecodeError, KeyError) as exc:
        raise InputError(f"{graph.root / relative}: no [project] table ({exc})") from None


def labels(graph: Graph, name: str, environ: Mapping[str, str] = os.environ) -> dict[str, str]:
    """The image's labels: [labels] for every image, [package-labels] too for a workspace
    package (images/<name>/pyproject.toml). `version` is its tag's (graph.tag)."""
    values = {"name": name, "version": graph.tag(name, environ).rpartition(":")[2]}
    values["project"] = _project(graph, "pyproject.toml")
    templates = dict(graph.settings["labels"])
    package = f"images/{name}/pyproject.toml"
    if (graph.root / package).is_file():
        values["package"] = _project(graph, package)
        templates |= graph.settings["package-labels"]
    try:
        return {key: template.format_map(values) for key, template in templates.items()}
    except (KeyError, IndexError) as exc:
        raise InputError(f"images/build.toml: a label of {name} names {exc}, not found") from None
