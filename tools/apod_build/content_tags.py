"""Each image's content tag, computed from its build inputs before anything is built
(standard library only).

    PYTHONPATH=tools python3 -m apod_build.content_tags [NAME...]
        `<name> <tag>` for these images (every images/*/Dockerfile by default)
    PYTHONPATH=tools python3 -m apod_build.content_tags --inputs NAME
        what NAME's tag is computed from, one input a line

An image's tag is `<build tag>-k8s.<12 hex>`: the build tag is the version part of the tag
the image graph gives it (images/build.toml: VERSION; the PostgreSQL major for
apod-postgres), the hex the SHA-256 of everything its build reads:
  - its Dockerfile;
  - the build arguments its Dockerfile (and its parent's ONBUILD triggers) declare among
    those every build gets (images/build.toml's [args]: VERSION, PG_MAJOR, STEP);
  - the base images it names: the Dockerfile's default, or PYTHON_IMAGE / DEBIAN_IMAGE when
    set (the locally bootstrapped equivalents of scripts/ensure-base-image.sh count as the
    official images they stand in for);
  - the tags of the project images it builds FROM (its parents in the image graph), so that
    a change reaches every image built on the one that changed, and nothing else;
  - every file its COPY/ADD instructions take from the build context (the repository,
    less what .dockerignore leaves out), and those of its parent's ONBUILD triggers, by
    path, executable bit and content.
So a DAG change (dags/ is copied into apod-airflow only) changes the Airflow image's tag
alone; a change in one step's package changes that step's tag alone; Postgres' and the
object store's tags change only with their own inputs. The same sources give the same tags
on every machine, built or not. k8s/README.md ("Image tags") says why inputs, not image IDs.

The builder (python3 -m apod_build) labels each image with its tag (LABEL_KEY), so that a
local image can be checked against the sources before it is deployed (scripts/k8s_images.py).
Exit codes: 0 done, 1 a Dockerfile or its inputs cannot be read, 2 usage.
"""

from __future__ import annotations

import argparse
import fnmatch
import hashlib
import os
import re
import sys
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from apod_build.dockerfile import copy_from, expand, instructions, words
from apod_build.errors import InputError
from apod_build.graph import BASE, REPO, Graph, read_text

MARK = "k8s"  # in every content tag, so that tools only ever remove tags made this way
HEX_LENGTH = 12
LABEL_KEY = "apod.pipeline.content-tag"

__all__ = ["LABEL_KEY", "MARK", "InputError", "content_tags", "is_content_tag"]


# --- .dockerignore -------------------------------------------------------------------


def _pattern_regex(pattern: str) -> re.Pattern[str]:
    """A .dockerignore pattern as Docker's pattern matcher reads it: `**` any number of
    path segments, `*` and `?` within one segment."""
    out, i = [], 0
    while i < len(pattern):
        char = pattern[i]
        if pattern.startswith("**", i):
            if pattern.startswith("**/", i):
                out.append("(?:.*/)?")
                i += 3
                continue
            out.append(".*")
            i += 2
            continue
        if char == "*":
            out.append("[^/]*")
        elif char == "?":
            out.append("[^/]")
        elif char == "[":
            end = pattern.find("]", i)
            if end == -1:
                raise InputError(f".dockerignore: unclosed [ in {pattern!r}")
            out.append(pattern[i : end + 1])
            i = end + 1
            continue
        else:
            out.append(re.escape(char))
        i += 1
    return re.compile("".join(out))


@dataclass(frozen=True)
class DockerIgnore:
    rules: tuple[tuple[bool, str, re.Pattern[str]], ...]  # (exclusion, pattern, regex)

    @classmethod
    def read(cls, root: Path) -> DockerIgnore:
        path = root / ".dockerignore"
        rules = []
        text = path.read_text(encoding="utf-8") if path.is_file() else ""
        for line in text.splitlines():
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            exclusion = not line.startswith("!")
            pattern = os.path.normpath(line.lstrip("!").strip()).lstrip("/")
            rules.append((exclusion, pattern, _pattern_regex(pattern)))
        return cls(tuple(rules))

    def excluded(self, path: str) -> bool:
        """Docker's MatchesOrParentMatches: the last rule that matches the path or one of
        its parent directories decides."""
        parts = path.split("/")
        candidates = [path, *("/".join(parts[:i]) for i in range(1, len(parts)))]
        matched = False
        for exclusion, _, regex in self.rules:
            if exclusion == matched:
                continue  # cannot change the outcome
            if any(regex.fullmatch(candidate) for candidate in candidates):
                matched = exclusion
        return matched

    def may_reinclude_below(self, directory: str) -> bool:
        """Whether an exception rule (`!...`) could take back a path below an excluded
        directory (otherwise the walk skips it, as Docker does)."""
        for exclusion, pattern, _ in self.rules:
            if exclusion:
                continue
            fixed = re.split(r"[*?\[]", pattern, maxsplit=1)[0]
            if fixed.startswith(directory + "/") or directory.startswith(fixed.rstrip("/")):
                return True
        return False


def context_files(root: Path) -> dict[str, Path]:
    """The files the build context holds: relative path -> path."""
    ignore = DockerIgnore.read(root)
    files: dict[str, Path] = {}
    for current, dirs, names in os.walk(root):
        base = Path(current).relative_to(root).as_posix()
        prefix = "" if base == "." else base + "/"
        dirs[:] = sorted(
            d
            for d in dirs
            if d != ".git"
            and (not ignore.excluded(prefix + d) or ignore.may_reinclude_below(prefix + d))
        )
        for name in names:
            relative = prefix + name
            if not ignore.excluded(relative):
                files[relative] = Path(current) / name
    return files


# --- Dockerfiles ---------------------------------------------------------------------


@dataclass
class Inputs:
    """What one image's build reads (its parents are the graph's)."""

    dockerfile: str = ""
    args: dict[str, str] = field(default_factory=dict)
    bases: set[str] = field(default_factory=set)
    sources: list[str] = field(default_factory=list)  # COPY/ADD sources, expanded

    def lines(
        self, parents: Iterable[str], tags: Mapping[str, str], files: Mapping[str, Path]
    ) -> list[str]:
        """The canonical text the tag hashes, one input a line."""
        out = [f"dockerfile {hashlib.sha256(self.dockerfile.encode()).hexdigest()}"]
        out += [f"arg {name}={value}" for name, value in sorted(self.args.items())]
        out += [f"base {base}" for base in sorted(self.bases)]
        out += [f"parent apod-{parent}:{tags[parent]}" for parent in sorted(parents)]
        for path in sorted(copied(self.sources, files)):
            data = files[path].read_bytes()
            executable = "x" if os.access(files[path], os.X_OK) else "-"
            out.append(f"file {path} {executable} {hashlib.sha256(data).hexdigest()}")
        return out


def copied(sources: Iterable[str], files: Mapping[str, Path]) -> set[str]:
    """The context files that COPY sources name (a file, a directory, or a pattern)."""
    found: set[str] = set()
    for source in sources:
        clean = os.path.normpath(source).lstrip("/")
        if clean == ".":
            matched = set(files)
        elif any(char in clean for char in "*?["):
            parts = clean.count("/") + 1
            roots = {
                "/".join(path.split("/")[:parts]) for path in files if path.count("/") + 1 >= parts
            }
            hits = {r for r in roots if fnmatch.fnmatchcase(r, clean)}
            matched = {p for p in files if p in hits or any(p.startswith(h + "/") for h in hits)}
        else:
            matched = {p for p in files if p == clean or p.startswith(clean + "/")}
        if not matched:
            raise InputError(f"COPY source {source} is not in the build context")
        found |= matched
    return found


def _onbuild(graph: Graph, parent: str) -> list[tuple[str, str]]:
    text = read_text(graph.root, graph.image(parent).dockerfile)
    return [
        (keyword.upper(), rest.strip())
        for kind, arguments in instructions(text)
        if kind == "ONBUILD"
        for keyword, _, rest in [arguments.partition(" ")]
    ]


def given_args(graph: Graph, name: str, environ: Mapping[str, str] = os.environ) -> dict[str, str]:
    """The build arguments of the image's build: every build's (STEP its folder name), and
    a base named in the environment (PYTHON_IMAGE, DEBIAN_IMAGE)."""
    bases = {b.arg: environ[b.arg] for b in graph.bases.values() if environ.get(b.arg)}
    return {**graph.build_args(name), **bases}


def read_inputs(graph: Graph, name: str, environ: Mapping[str, str] = os.environ) -> Inputs:
    """Walk images/<name>/Dockerfile as its build would, with its build arguments."""
    path = graph.image(name).dockerfile
    text = read_text(graph.root, path)
    given = given_args(graph, name, environ)
    inputs = Inputs(dockerfile=text)
    global_args: dict[str, str] = {}
    stage_args: dict[str, str] = {}
    stages: set[str] = set()
    in_stage = False

    def declare(arguments: str, scope: dict[str, str]) -> None:
        arg, _, default = arguments.partition("=")
        arg = arg.strip()
        if arg in given:
            value = given[arg]
        elif arg in global_args and in_stage:
            value = global_args[arg]  # `ARG X` in a stage takes the global default
        else:
            value = expand(default.strip().strip('"'), {**global_args, **scope})
        scope[arg] = value
        if arg in graph.settings["args"]:
            inputs.args[arg] = value

    def run(keyword: str, arguments: str) -> None:
        if keyword == "ARG":
            declare(arguments, stage_args if in_stage else global_args)
        elif keyword in ("COPY", "ADD"):
            flags, parts = words(expand(arguments, {**global_args, **stage_args}))
            if copy_from(flags) is not None:
                return  # another stage's or image's files: hashed as that one's inputs
            if len(parts) < 2:
                raise InputError(f"{path}: {keyword} {arguments}: no source or destination")
            if any("://" in w for w in parts[:-1]):
                raise InputError(f"{path}: {keyword} from a URL cannot be hashed before building")
            inputs.sources += parts[:-1]

    for keyword, arguments in instructions(text):
        if keyword == "FROM":
            _, parts = words(arguments)
            image = expand(parts[0], global_args)
            stage_args = {}
            in_stage = True
            parent = graph.project_image(image)
            if image in stages:
                pass
            elif parent:
                for trigger in _onbuild(graph, parent):
                    run(*trigger)
            else:
                inputs.bases.add(image)
            if len(parts) >= 3 and parts[1].upper() == "AS":
                stages.add(parts[2])
        elif keyword == "ONBUILD":
            continue  # runs in the images built FROM this one
        else:
            run(keyword, arguments)
    return inputs


# --- tags ------------------------------------------------------------------------------


def is_content_tag(tag: str, base: str | None = None) -> bool:
    prefix = re.escape(base) if base is not None else r"[A-Za-z0-9_][A-Za-z0-9_.-]*"
    return re.fullmatch(rf"{prefix}-{MARK}\.[0-9a-f]{{{HEX_LENGTH}}}", tag) is not None


def content_tags(
    root: Path = REPO, names: Iterable[str] | None = None, environ: Mapping[str, str] = os.environ
) -> dict[str, str]:
    """Image folder name -> its content tag, for `names` (every image by default) and the
    project images they build FROM."""
    graph = Graph.load(root)
    files = context_files(root)
    tags: dict[str, str] = {}
    for name in graph.plan(graph.names() if names is None else names):
        if name.startswith(BASE):
            continue
        lines = read_inputs(graph, name, environ).lines(graph.image(name).parents, tags, files)
        digest = hashlib.sha256(("\n".join(lines) + "\n").encode()).hexdigest()[:HEX_LENGTH]
        tags[name] = f"{graph.build_tag(name)}-{MARK}.{digest}"
    return tags


def describe(root: Path, name: str, environ: Mapping[str, str] = os.environ) -> list[str]:
    """The inputs of one image's tag, as they are hashed."""
    tags = content_tags(root, [name], environ)
    graph = Graph.load(root)
    inputs = read_inputs(graph, name, environ)
    return inputs.lines(graph.image(name).parents, tags, context_files(root))


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="python3 -m apod_build.content_tags", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("names", nargs="*", help="image folders (default: every image)")
    parser.add_argument("--inputs", action="store_true", help="list what one image's tag hashes")
    args = parser.parse_args(argv)
    if args.inputs and len(args.names) != 1:
        parser.error("--inputs names one image")
    try:
        graph = Graph.load(REPO)
        unknown = [name for name in args.names if name not in graph.images]
        if unknown:
            parser.error(f"no images/{unknown[0]}/Dockerfile")
        if args.inputs:
            lines = describe(REPO, args.names[0])
        else:
            tags = content_tags(REPO, args.names or None)
            lines = [f"{name} {tags[name]}" for name in args.names or graph.names()]
    except InputError as exc:
        print(f"content_tags: {exc}", file=sys.stderr)
        return 1
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
