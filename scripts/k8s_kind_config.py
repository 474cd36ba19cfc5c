#!/usr/bin/env python3
"""k8s/kind-cluster.yaml with workers: the cluster of `KIND_NODES=3 make kind-up`
(standard library only).

    k8s_kind_config.py NODES OUT     write OUT: the committed config plus NODES-1 workers

The committed file describes the control-plane node; each worker runs the same node
image (the one image line of its `nodes:` list). Everything else in the file applies to
the whole cluster and is kept as it is, so the `nodes:` list must be its last key: the
workers are appended to it.

Exit codes: 0 written, 2 usage or a committed file this cannot extend.
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
CONFIG = REPO / "k8s" / "kind-cluster.yaml"
MAX_NODES = 9  # kind's nodes are containers on this one Docker host


def with_workers(text: str, nodes: int) -> str:
    """The config text with nodes-1 worker entries appended to its `nodes:` list."""
    if not 1 <= nodes <= MAX_NODES:
        raise ValueError(f"KIND_NODES must be 1 to {MAX_NODES}, not {nodes}")
    lines = text.rstrip("\n").splitlines()
    top = [i for i, line in enumerate(lines) if re.match(r"[A-Za-z]", line)]
    if not top or not lines[top[-1]].startswith("nodes:"):
        raise ValueError(f"{CONFIG.name}: `nodes:` must be the last key, to append workers to")
    images = re.findall(r"^\s+image:\s*(\S+)\s*$", "\n".join(lines[top[-1] :]), re.M)
    if len(set(images)) != 1:
        raise ValueError(f"{CONFIG.name}: expected one node image in `nodes:`, found {images}")
    workers = [f"  - role: worker\n    image: {images[0]}" for _ in range(nodes - 1)]
    return "\n".join([*lines, *workers]) + "\n"


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("nodes", help="how many nodes, the control plane included")
    parser.add_argument("out", type=Path, help="the config file to write")
    args = parser.parse_args(argv)
    try:
        if not args.nodes.isdigit():
            raise ValueError(f"KIND_NODES must be a whole number, not {args.nodes!r}")
        text = with_workers(CONFIG.read_text(encoding="utf-8"), int(args.nodes))
    except ValueError as exc:
        print(f"k8s_kind_config: {exc}", file=sys.stderr)
        return 2
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text, encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
