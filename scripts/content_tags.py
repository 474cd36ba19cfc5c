#!/usr/bin/env python3
"""Each image's content tag, computed from its build inputs before anything is built
(standard library only).

    content_tags.py [NAME...]       `<name> <tag>` for these images/*/Dockerfile (all by default)
    content_tags.py --inputs NAME   what NAME's tag is computed from, one input a line

An image's tag is `<build tag>-k8s.<12 hex>`: the build tag is the one
scripts/build-images.sh gives it (VERSION; the PostgreSQL major for apod-postgres), the hex
the SHA-256 of everything its build reads:
  - its Dockerfile;
  - the build arguments its Dockerfile (and its parent's ONBUILD triggers) declare among
    those scripts/build-images.sh passes: VERSION, PG_MAJOR, STEP;
  - the base images it names: the Dockerfile's default, or PYTHON_IMAGE / DEBIAN_IMAGE when
    set (the locally bootstrapped equivalents of scripts/ensure-base-image.sh count as the
    official images they stand in for);
  - the tags of the project images it builds FROM (apod-<name>), so that a change reaches
    every image built on the one that changed, and nothing else;
  - every file its COPY/ADD instructions take from the build context (the repository,
    less what .dockerignore leaves out), and those of its parent's ONBUILD triggers, by
    path, executable bit and content.
So a DAG change (dags/ is copied into apod-airflow only) changes the Airflow image's tag
alone; a change in one step's package changes that step's tag alone; Postgres' and the
object store's tags change only with their own inputs. The same sources give the same tags
on every machine, built or not. k8s/README.md ("Image tags") says why inputs, not image IDs.

scripts/build-images.sh labels each image with its tag (LABEL_KEY), so that a local image
can be checked against the sources before it is deployed (scripts/k8s_images.py).
Exit codes: 0 done, 1 a Dockerfile or its inputs cannot be read, 2 usage.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import re
import sys
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
MARK = "k8s"  # in every content tag, so that tools only ever remove tags made this way
HEX_LENGTH = 12
LABEL_KEY = "apod.pipeline.content-tag"
# What scripts/build-images.sh passes to every build; an image's inputs include those it
# declares with ARG.
BUILD_ARGS = ("VERSION", "PG_MAJOR", "STEP")
# Base images a Dockerfile takes as a build argument, overridable from the environment.
BASE_ARGS = ("PYTHON_IMAGE", "DEBIAN_IMAGE")
PROJECT_IMAGE = re.compile(r"apod-([a-z0-9-]+):")


class InputError(Exception):
    """A Dockerfile or one of its inputs that cannot be read as its build would."""


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


def instructions(text: str) -> list[tuple[str, str]]:
    """(KEYWORD, arguments) per instruction: continuation lines joined, comments dropped."""
    out, pending = [], ""
    for raw in text.splitlines():
        line = raw.strip()
        if line.startswith("#") or (not line and not pending):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        whole = (pending + line).strip()
        pending = ""
        if whole:
            keyword, _, rest = whole.partition(" ")
            out.append((keyword.upper(), rest.strip()))
    if pending.strip():
        keyword, _, rest = pending.strip().partition(" ")
        out.append((keyword.upper(), rest.strip()))
    return out


_VARIABLE = re.compile(
    r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::([-?+])([^}]*))?\}|\$([A-Za-z_][A-Za-z0-9_]*)"
)


def expand(text: str, variables: Mapping[str, str]) -> str:
    """Dockerfile variable substitution: $X, ${X}, ${X:-default}, ${X:+alt}, ${X:?message}."""

    def replace(match: re.Match[str]) -> str:
        name = match.group(1) or match.group(4)
        value = variables.get(name, "")
        operator, word = match.group(2), match.group(3) or ""
        if operator == "-":
            return value or word
        if operator == "+":
            return word if value else ""
        if operator == "?" and not value:
            raise InputError(f"{name}: {word or 'not set'}")
        return value

    return _VARIABLE.sub(replace, text)


def _words(arguments: str) -> tuple[list[str], list[str]]:
    """(--flags, the rest) of a COPY/ADD/FROM line; the JSON form too."""
    flags = []
    rest = arguments
    while rest.startswith("--"):
        flag, _, rest = rest.partition(" ")
        flags.append(flag)
        rest = rest.lstrip()
    if rest.startswith("["):
        import json

        return flags, list(json.loads(rest))
    return flags, rest.split()


@dataclass
class Inputs:
    """What one image's build reads."""

    dockerfile: str = ""
    args: dict[str, str] = field(default_factory=dict)
    bases: set[str] = field(default_factory=set)
    parents: set[str] = field(default_factory=set)  # project images, by folder name
    sources: list[str] = field(default_factory=list)  # COPY/ADD sources, expanded

    def lines(self, tags: Mapping[str, str], files: Mapping[str, Path]) -> list[str]:
        """The canonical text the tag hashes, one input a line."""
        out = [f"dockerfile {hashlib.sha256(self.dockerfile.encode()).hexdigest()}"]
        out += [f"arg {name}={value}" for name, value in sorted(self.args.items())]
        out += [f"base {base}" for base in sorted(self.bases)]
        out += [f"parent apod-{parent}:{tags[parent]}" for parent in sorted(self.parents)]
        for path in sorted(copied(self.sources, files)):
            data = files[path].read_bytes()
            executable = "x" if os.access(files[path], os.X_OK) else "-"
            out.append(f"file {path} {executable} {hashlib.sha256(data).hexdigest()}")
        return out


def copied(sources: Iterable[str], files: Mapping[str, Path]) -> set[str]:
    """The context files that COPY sources name (a file, a directory, or a pattern)."""
    import fnmatch

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


def _dockerfile(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except OSError as exc:
        raise InputError(f"{path}: {exc.strerror}") from None


def _onbuild(root: Path, parent: str) -> list[tuple[str, str]]:
    text = _dockerfile(root / "images" / parent / "Dockerfile")
    return [
        (keyword.upper(), rest.strip())
        for kind, arguments in instructions(text)
        if kind == "ONBUILD"
        for keyword, _, rest in [arguments.partition(" ")]
    ]


def read_inputs(root: Path, name: str, build_args: Mapping[str, str]) -> Inputs:
    """Walk images/<name>/Dockerfile as its build would, with scripts/build-images.sh's
    build arguments (STEP is the folder's name) and the base overrides in build_args."""
    path = root / "images" / name / "Dockerfile"
    text = _dockerfile(path)
    given = {**build_args, "STEP": name}
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
        if arg in BUILD_ARGS:
            inputs.args[arg] = value

    def run(keyword: str, arguments: str) -> None:
        if keyword == "ARG":
            declare(arguments, stage_args if in_stage else global_args)
        elif keyword in ("COPY", "ADD"):
            flags, words = _words(expand(arguments, {**global_args, **stage_args}))
            source_from = [f.partition("=")[2] for f in flags if f.startswith("--from=")]
            if source_from:
                match = PROJECT_IMAGE.match(source_from[0] + ":")
                if source_from[0] not in stages and match and source_from[0].startswith("apod-"):
                    inputs.parents.add(source_from[0].removeprefix("apod-").partition(":")[0])
                return
            if len(words) < 2:
                raise InputError(f"{path}: {keyword} {arguments}: no source or destination")
            if any("://" in w for w in words[:-1]):
                raise InputError(f"{path}: {keyword} from a URL cannot be hashed before building")
            inputs.sources += words[:-1]

    for keyword, arguments in instructions(text):
        if keyword == "FROM":
            _, words = _words(arguments)
            image = expand(words[0], global_args)
            stage_args = {}
            in_stage = True
            match = PROJECT_IMAGE.match(image)
            if image in stages:
                pass
            elif match:
                parent = match.group(1)
                inputs.parents.add(parent)
                for trigger in _onbuild(root, parent):
                    run(*trigger)
            else:
                inputs.bases.add(image)
            if len(words) >= 3 and words[1].upper() == "AS":
                stages.add(words[2])
        elif keyword == "ONBUILD":
            continue  # runs in the images built FROM this one
        else:
            run(keyword, arguments)
    return inputs


# --- tags ------------------------------------------------------------------------------


def read_text(root: Path, relative: str) -> str:
    try:
        return (root / relative).read_text(encoding="utf-8").strip()
    except OSError as exc:
        raise InputError(f"{root / relative}: {exc.strerror}") from None


def build_args(root: Path, environ: Mapping[str, str] = os.environ) -> dict[str, str]:
    args = {
        "VERSION": read_text(root, "VERSION"),
        "PG_MAJOR": read_text(root, "images/postgres/PG_MAJOR"),
    }
    args |= {name: environ[name] for name in BASE_ARGS if environ.get(name)}
    return args


def build_tag(name: str, args: Mapping[str, str]) -> str:
    """The tag scripts/build-images.sh gives the image: the version, Postgres its major."""
    return args["PG_MAJOR"] if name == "postgres" else args["VERSION"]


def image_names(root: Path) -> list[str]:
    return sorted(p.parent.name for p in (root / "images").glob("*/Dockerfile"))


def is_content_tag(tag: str, base: str | None = None) -> bool:
    prefix = re.escape(base) if base is not None else r"[A-Za-z0-9_][A-Za-z0-9_.-]*"
    return re.fullmatch(rf"{prefix}-{MARK}\.[0-9a-f]{{{HEX_LENGTH}}}", tag) is not None


def content_tags(
    root: Path = REPO, names: Iterable[str] | None = None, environ: Mapping[str, str] = os.environ
) -> dict[str, str]:
    """Image folder name -> its content tag, for `names` (every image by default) and the
    project images they build FROM."""
    args = build_args(root, environ)
    files = context_files(root)
    tags: dict[str, str] = {}
    inputs_of: dict[str, Inputs] = {}

    def tag(name: str, path: tuple[str, ...] = ()) -> str:
        if name in tags:
            return tags[name]
        if name in path:
            raise InputError(f"images/{name} builds FROM itself: {' -> '.join(path)}")
        inputs = inputs_of.setdefault(name, read_inputs(root, name, args))
        for parent in inputs.parents:
            tag(parent, (*path, name))
        text = "\n".join(inputs.lines(tags, files)) + "\n"
        digest = hashlib.sha256(text.encode()).hexdigest()[:HEX_LENGTH]
        tags[name] = f"{build_tag(name, args)}-{MARK}.{digest}"
        return tags[name]

    for name in names if names is not None else image_names(root):
        tag(name)
    return tags


def describe(root: Path, name: str, environ: Mapping[str, str] = os.environ) -> list[str]:
    """The inputs of one image's tag, as they are hashed."""
    tags = content_tags(root, [name], environ)
    inputs = read_inputs(root, name, build_args(root, environ))
    return inputs.lines(tags, context_files(root))


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="content_tags.py", description=__doc__.split("\n\n")[0])
    parser.add_argument("names", nargs="*", help="image folders (default: every image)")
    parser.add_argument("--inputs", action="store_true", help="list what one image's tag hashes")
    args = parser.parse_args(argv)
    try:
        if args.inputs:
            if len(args.names) != 1:
                parser.error("--inputs names one image")
            print("\n".join(describe(REPO, args.names[0])))
            return 0
        for name in args.names:
            if not (REPO / "images" / name / "Dockerfile").is_file():
                parser.error(f"no images/{name}/Dockerfile")
        tags = content_tags(REPO, args.names or None)
        for name in args.names or image_names(REPO):
            print(f"{name} {tags[name]}")
    except InputError as exc:
        print(f"content_tags: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
