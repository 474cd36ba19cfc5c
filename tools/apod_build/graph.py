"""The image graph: images/build.toml's data and what the Dockerfiles say, resolved into
images and bases with their parents, tags and build arguments. Nothing is built here.

A node of the graph is an image, by its folder name (`airflow`), or a base, by its name
after `@` (`@python`). An image's parents are the project images its Dockerfile builds
FROM or copies from, and the bases whose build argument it names there.
"""

from __future__ import annotations

import os
import re
import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from apod_build.dockerfile import References, variables_in
from apod_build.errors import InputError

REPO = Path(__file__).resolve().parents[2]
SETTINGS = Path("images", "build.toml")
BASE = "@"  # a base's node name: @<name>


@dataclass(frozen=True)
class Base:
    name: str
    arg: str  # the build argument that names it in a Dockerfile
    make: tuple[str, ...]  # the command that makes or finds it and prints its name
    after: tuple[str, ...] = ()  # bases made before it when both are asked for

    @property
    def node(self) -> str:
        return BASE + self.name


@dataclass(frozen=True)
class Image:
    name: str
    parents: tuple[str, ...]  # project images, by folder name
    bases: tuple[str, ...]  # bases, by name

    @property
    def dockerfile(self) -> Path:
        return Path("images", self.name, "Dockerfile")


def read_text(root: Path, relative: Path | str) -> str:
    try:
        return (root / relative).read_text(encoding="utf-8")
    except OSError as exc:
        raise InputError(f"{root / relative}: {exc.strerror}") from None


@dataclass(frozen=True)
class Graph:
    root: Path
    settings: Mapping  # images/build.toml
    files: Mapping[str, str]  # build arguments read from files: VERSION, PG_MAJOR
    images: Mapping[str, Image]
    bases: Mapping[str, Base]

    @classmethod
    def load(cls, root: Path = REPO) -> Graph:
        try:
            settings = tomllib.loads(read_text(root, SETTINGS))
        except tomllib.TOMLDecodeError as exc:
            raise InputError(f"{root / SETTINGS}: {exc}") from None
        files = {
            name: read_text(root, spec["file"]).strip()
            for name, spec in settings["args"].items()
            if isinstance(spec, dict)
        }
        bases = {
            name: Base(name, spec["arg"], tuple(spec["make"]), tuple(spec.get("after", ())))
            for name, spec in settings["bases"].items()
        }
        images: dict[str, Image] = {}
        graph = cls(root, settings, files, images, bases)
        for dockerfile in sorted(root.glob("images/*/Dockerfile")):
            name = dockerfile.parent.name
            images[name] = graph._image(name, read_text(root, dockerfile))
        return graph

    def _image(self, name: str, text: str) -> Image:
        references = References.read(text).images
        parents = tuple(dict.fromkeys(p for r in references if (p := self.project_image(r))))
        named = set().union(*(variables_in(r) for r in references))
        bases = tuple(b.name for b in self.bases.values() if b.arg in named)
        return Image(name, parents, bases)

    # --- names and tags ---------------------------------------------------------------

    def names(self) -> list[str]:
        """Every image, by folder name."""
        return sorted(self.images)

    def image(self, name: str) -> Image:
        if name not in self.images:
            raise InputError(f"no images/{name}/Dockerfile")
        return self.images[name]

    def project_image(self, reference: str) -> str | None:
        """The folder name of the project image a FROM or COPY --from names (`apod-base:x`
        -> `base`), as the default tag names it; None for any other image."""
        prefix, _, rest = self.settings["tags"]["default"].partition("{name}")
        name = r"([a-z0-9][a-z0-9-]*)"
        match = re.match(re.escape(prefix) + name + re.escape(rest[:1]), reference)
        return match.group(1) if match else None

    def build_args(self, name: str) -> dict[str, str]:
        """The build arguments every build gets, for this image."""
        return {
            arg: self.files[arg] if isinstance(spec, dict) else spec.format(name=name)
            for arg, spec in self.settings["args"].items()
        }

    def tag(self, name: str, environ: Mapping[str, str] = os.environ, **args: str) -> str:
        """What the image is tagged; `args` replace build arguments (another VERSION)."""
        spec = self.settings["tags"].get(name, self.settings["tags"]["default"])
        if isinstance(spec, dict):
            if environ.get(spec.get("env", "")):
                return environ[spec["env"]]
            spec = spec["tag"]
        return spec.format(**{**self.build_args(name), **args, "name": name})

    def build_tag(self, name: str) -> str:
        """The version part of the image's own tag (no variable of the environment)."""
        return self.tag(name, environ={}).rpartition(":")[2]

    # --- planning ---------------------------------------------------------------------

    def plan(self, names: Iterable[str]) -> list[str]:
        """The nodes to build for these images: them and, transitively, what they build
        FROM, parents first and otherwise in the order asked for."""
        wanted: dict[str, None] = {}

        def collect(node: str) -> None:
            if node in wanted:
                return
            wanted[node] = None
            if not node.startswith(BASE):
                for parent in self._direct(node):
                    collect(parent)

        for name in names:
            self.image(name)
            collect(name)
        order: list[str] = []
        state: dict[str, str] = {}

        def visit(node: str, path: tuple[str, ...]) -> None:
            if state.get(node) == "done":
                return
            if state.get(node) == "visiting":
                cycle = " -> ".join((*path[path.index(node) :], node))
                raise InputError(f"images build FROM each other in a cycle: {cycle}")
            state[node] = "visiting"
            for parent in self.waits_for(node, wanted):
                visit(parent, (*path, node))
            state[node] = "done"
            order.append(node)

        for node in wanted:
            visit(node, ())
        return order

    def _direct(self, name: str) -> tuple[str, ...]:
        image = self.images[name]
        for parent in image.parents:
            if parent not in self.images:
                raise InputError(
                    f"{image.dockerfile} builds FROM {self.tag(parent, environ={})}: "
                    f"no images/{parent}/Dockerfile"
                )
        return (*image.parents, *(BASE + b for b in image.bases))

    def waits_for(self, node: str, planned: Iterable[str]) -> tuple[str, ...]:
        """The nodes `node` is built after, of those planned."""
        if node.startswith(BASE):
            planned = set(planned)
            after = self.bases[node.removeprefix(BASE)].after
            return tuple(BASE + b for b in after if BASE + b in planned)
        return self._direct(node)
