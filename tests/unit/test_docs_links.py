"""README.md stays two screens long, and the links of README.md and docs/*.md lead
somewhere: every relative link names a file or folder of the repository, and its
`#fragment`, when it has one, a heading of that Markdown file (as GitHub makes their
anchors). Links to other sites are not followed."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

pytestmark = pytest.mark.unit

REPO = Path(__file__).resolve().parents[2]
README_MAX_LINES = 180

_FENCED = re.compile(r"^ {0,3}(```|~~~).*?^ {0,3}\1[^\n]*$", re.MULTILINE | re.DOTALL)
_INLINE_CODE = re.compile(r"(`+).+?\1", re.DOTALL)
# [text](target "title"), also for images; text may hold one level of brackets.
_LINK = re.compile(r"\[(?:[^\[\]]|\[[^\]]*\])*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
_REFERENCE = re.compile(r"^ {0,3}\[[^\]]+\]:\s+<?([^\s>]+)>?", re.MULTILINE)
_HEADING = re.compile(r"^ {0,3}#{1,6}\s+(.*?)\s*#*\s*$", re.MULTILINE)
_SCHEME = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.-]*:")


def documents() -> list[Path]:
    return [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]


def prose(markdown: str) -> str:
    """The text without code blocks and inline code, where brackets are not links."""
    return _INLINE_CODE.sub("", _FENCED.sub("", markdown))


def link_targets(markdown: str) -> list[str]:
    text = prose(markdown)
    return [m[1] for m in _LINK.finditer(text)] + [m[1] for m in _REFERENCE.finditer(text)]


def anchors(markdown: str) -> set[str]:
    """GitHub's anchors of the headings: lower case, punctuation dropped but for `-` and
    `_`, spaces made `-`; a repeated one gets `-1`, `-2`, ..."""
    seen: dict[str, int] = {}
    found = set()
    for match in _HEADING.finditer(_FENCED.sub("", markdown)):
        slug = re.sub(r"[^\w\- ]", "", match[1].strip().lower()).replace(" ", "-")
        count = seen.get(slug, 0)
        seen[slug] = count + 1
        found.add(slug if count == 0 else f"{slug}-{count}")
    return found


def broken_links(document: Path, root: Path = REPO) -> list[str]:
    text = document.read_text(encoding="utf-8")
    broken = []
    for target in link_targets(text):
        if _SCHEME.match(target):
            continue  # another site (https:, mailto:)
        path, _, fragment = target.partition("#")
        where = (document.parent / path).resolve() if path else document
        if not where.is_relative_to(root.resolve()) or not where.exists():
            broken.append(f"{target}: no such file in the repository")
        elif (
            fragment
            and where.suffix == ".md"
            and where.is_file()
            and fragment not in anchors(where.read_text(encoding="utf-8"))
        ):
            broken.append(f"{target}: {where.name} has no heading #{fragment}")
    return broken


def test_the_readme_fits_on_two_screens():
    lines = (REPO / "README.md").read_text(encoding="utf-8").count("\n")
    assert lines <= README_MAX_LINES, (
        f"README.md has {lines} lines, at most {README_MAX_LINES}: move the detail to docs/ "
        "or the component's README and link to it"
    )


@pytest.mark.parametrize("document", documents(), ids=lambda p: str(p.relative_to(REPO)))
def test_every_relative_link_leads_somewhere(document):
    assert not broken_links(document), f"{document.relative_to(REPO)}: " + "; ".join(
        broken_links(document)
    )


# --- the checker itself ------------------------------------------------------------------


def test_a_missing_file_a_missing_heading_and_a_way_out_are_found(tmp_path):
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "guide.md").write_text("# A guide\n\n## Restore a version: `restore`\n")
    readme = tmp_path / "README.md"
    readme.write_text(
        "[ok](docs/guide.md) [anchor](docs/guide.md#restore-a-version-restore) "
        "[gone](docs/gone.md) [no heading](docs/guide.md#nothing) [out](../elsewhere.md)\n"
        "[site](https://apod.nasa.gov/) [here](#a-readme)\n\n# A README\n"
        "`[code](not/a/link.md)`\n\n```\n[block](not/a/link.md)\n```\n"
    )
    assert broken_links(readme, tmp_path) == [
        "docs/gone.md: no such file in the repository",
        "docs/guide.md#nothing: guide.md has no heading #nothing",
        "../elsewhere.md: no such file in the repository",
    ]


def test_repeated_headings_get_numbered_anchors():
    assert anchors("# Tests\n## Tests\n### Object store (S3)\n") == {
        "tests",
        "tests-1",
        "object-store-s3",
    }
