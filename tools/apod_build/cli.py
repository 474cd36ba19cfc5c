"""`python3 -m apod_build`: the command line (apod_build's docstring is its manual)."""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import threading
from collections.abc import Mapping
from pathlib import Path

import apod_build
from apod_build import report
from apod_build.builder import Builder, NodeBuilder, Processes, image_size, log
from apod_build.content_tags import content_tags
from apod_build.errors import InputError
from apod_build.graph import BASE, Graph
from apod_build.labels import labels
from apod_build.scheduler import schedule


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python3 -m apod_build",
        description=apod_build.__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("names", nargs="*", help="image folders (default: every image)")
    listing = parser.add_mutually_exclusive_group()
    listing.add_argument("--tags", action="store_true", help="list `<name> <tag>`; build nothing")
    listing.add_argument("--print", action="store_true", help="print the graph; build nothing")
    parser.add_argument("--tag", help="build the one image named under this tag")
    parser.add_argument("--announce", type=Path, help="create DIR/<name> as each is built")
    parser.add_argument("--report", type=Path, help="where to write the JSON build report")
    return parser


def describe(graph: Graph, plan: list[str], environ: Mapping[str, str]) -> dict:
    """The planned nodes as data: what --print shows."""
    images = [n for n in plan if not n.startswith(BASE)]
    tags = content_tags(graph.root, images, environ)
    nodes = []
    for node in plan:
        parents = list(graph.waits_for(node, plan))
        if node.startswith(BASE):
            base = graph.bases[node.removeprefix(BASE)]
            nodes.append({"name": node, "parents": parents, "arg": base.arg, "make": base.make})
            continue
        image = graph.image(node)
        nodes.append({
            "name": node, "parents": parents, "tag": graph.tag(node, environ),
            "dockerfile": str(image.dockerfile), "args": graph.build_args(node),
            "labels": labels(graph, node, environ), "content_tag": tags[node],
        })  # fmt: skip
    return {"nodes": nodes}


def build(graph: Graph, plan: list[str], args: argparse.Namespace, environ) -> int:
    settings = graph.settings["build"]
    try:
        jobs = int(environ.get("APOD_BUILD_JOBS") or settings["jobs"])
    except ValueError:
        log(f"APOD_BUILD_JOBS={environ['APOD_BUILD_JOBS']} is no number")
        return 2
    images = [n for n in plan if not n.startswith(BASE)]
    try:
        tags = content_tags(graph.root, images, environ)  # of the sources as they are now
    except InputError as exc:
        log(f"content tags: {exc}")
        return 1
    logs = graph.root / settings["logs"]
    logs.mkdir(parents=True, exist_ok=True)
    processes = Processes()
    nodes = NodeBuilder(graph, Builder.choose(graph, environ), logs, tags, processes, environ)
    run = report.Report(
        nodes.builder.title, jobs, args.names or graph.names(),
        args.report or graph.root / settings["report"],
    )  # fmt: skip
    entries: dict[str, report.Node] = {}
    for node in plan:
        entry = report.Node(
            node.removeprefix(BASE),
            list(graph.waits_for(node, plan)),
            str(nodes.log_path(node).relative_to(graph.root)),
        )
        if node.startswith(BASE):
            run.bases.append(entry)
        else:
            custom = args.tag and node == args.names[0]
            entry.tag = args.tag if custom else graph.tag(node, environ)
            run.images.append(entry)
        entries[node] = entry

    def build_node(node: str) -> None:
        entry = entries[node]
        if node.startswith(BASE):
            entry.image, entry.made = nodes.make_base(graph.bases[entry.name])
            entry.size = image_size(nodes.builder.docker, entry.image)
        else:
            nodes.build_image(node, entry.tag)
            entry.size = image_size(nodes.builder.docker, entry.tag)

    def started(node: str) -> None:
        entries[node].start, entries[node].outcome = run.now(), report.RUNNING
        run.write()

    def ended(node: str, error: BaseException | None) -> None:
        entry = entries[node]
        entry.end, entry.outcome = run.now(), report.FAILED if error else report.BUILT
        if error:
            log(str(error) or repr(error))
        elif node.startswith(BASE):
            log(f"base {entry.name:<6} {entry.image:<36} {_megabytes(entry)} {_seconds(entry)}")
        else:
            log(f"{entry.tag:<30} {_megabytes(entry)} {_seconds(entry)}")
            if args.announce:
                (args.announce / node).touch()
        run.write()

    def terminated(*_) -> None:
        raise SystemExit(128 + signal.SIGTERM)  # the scheduler then stops the builds

    main_thread = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGTERM, terminated) if main_thread else None
    run.write()
    waits = {node: graph.waits_for(node, plan) for node in plan}
    try:
        ok = schedule(plan, waits, jobs, build_node, started, ended, processes.stop_all)
    finally:
        if main_thread:
            signal.signal(signal.SIGTERM, previous)
        for entry in entries.values():  # stopped (a signal, ^C): say so
            if entry.outcome == report.RUNNING:
                entry.outcome = report.FAILED
        run.finished = run.now()
        run.write()
    where = os.path.relpath(run.path) if run.path.is_relative_to(Path.cwd()) else run.path
    log(
        f"{len(images)} image(s) in {run.finished:.0f}s ({nodes.builder.title}, {jobs} at a "
        f"time); report: {where}"
    )
    return 0 if ok else 1


def _megabytes(entry: report.Node) -> str:
    return f"{entry.size // 1_000_000:5d} MB"


def _seconds(entry: report.Node) -> str:
    return f"{entry.seconds or 0:4.0f}s"


def main(argv: list[str], environ: Mapping[str, str] = os.environ) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    try:
        graph = Graph.load()
        names = args.names or graph.names()
        for name in names:
            graph.image(name)
        if args.tags:
            for name in names:
                print(f"{name} {graph.tag(name, environ)}")
            return 0
        if args.tag and len(args.names) != 1:
            parser.error("--tag names one image")
        plan = graph.plan(names)
    except InputError as exc:
        log(str(exc))
        return 2
    if args.print:
        try:
            print(json.dumps(describe(graph, plan, environ), indent=2))
        except InputError as exc:
            log(str(exc))
            return 1
        return 0
    return build(graph, plan, args, environ)


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
