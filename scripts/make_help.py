#!/usr/bin/env python3
"""`make help`: the make targets by area, read from the Makefile itself.

    scripts/make_help.py [MAKEFILE]        # default: Makefile

A target is listed when its rule line ends in `## what it does`; its area is the last
`##@ Area` line above it in the same file (a target above every such line is listed
under "Other", last). `include` lines are followed where they stand, as make reads them,
so the areas come in the order they first appear, an area may gather targets from several
files, and the targets come in the order they are written: the Makefile and mk/*.mk are
the one list. Standard library only.
"""

from __future__ import annotations

import argparse
import glob
import re
import sys
from pathlib import Path

OTHER = "Other"
_AREA = re.compile(r"^##@\s+(?P<area>\S.*?)\s*$")
_TARGET = re.compile(
    r"^(?P<target>[A-Za-z0-9][A-Za-z0-9_.-]*)\s*:(?!=)[^#]*##\s+(?P<what>\S.*?)\s*$"
)
_INCLUDE = re.compile(r"^(?P<optional>-|s)?include\s+(?P<patterns>.+?)\s*$")


def targets(makefile: Path) -> list[tuple[str, str, str]]:
    """(area, target, what) of each described target, in the order make reads them.
    Relative include patterns are resolved from the working directory, as make does."""
    found: list[tuple[str, str, str]] = []
    area = OTHER
    for line in makefile.read_text(encoding="utf-8").splitlines():
        if match := _AREA.match(line):
            area = match["area"]
        elif match := _TARGET.match(line):
            found.append((area, match["target"], match["what"]))
        elif match := _INCLUDE.match(line):
            for pattern in match["patterns"].split():
                if "$" in pattern:
                    raise SystemExit(f"make_help: cannot follow `{line}` (a variable in it)")
                names = sorted(glob.glob(pattern))
                if not names and not match["optional"]:
                    raise SystemExit(f"make_help: {makefile} includes {pattern}: no such file")
                for name in names:
                    found += targets(Path(name))
    return found


def by_area(found: list[tuple[str, str, str]]) -> dict[str, list[tuple[str, str]]]:
    areas: dict[str, list[tuple[str, str]]] = {}
    for area, target, what in found:
        areas.setdefault(area, []).append((target, what))
    if OTHER in areas:
        areas[OTHER] = areas.pop(OTHER)  # last
    return areas


def render(areas: dict[str, list[tuple[str, str]]]) -> str:
    width = max((len(t) for entries in areas.values() for t, _ in entries), default=0)
    blocks = []
    for area, entries in areas.items():
        lines = [f"{area}:"] + [f"  make {t:<{width}}  {what}" for t, what in entries]
        blocks.append("\n".join(lines))
    return "\n\n".join(blocks) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("makefile", nargs="?", type=Path, default=Path("Makefile"))
    args = parser.parse_args(argv)
    sys.stdout.write(render(by_area(targets(args.makefile))))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
