"""The .dvc file `dvc add` writes: the md5, size and path of the data it describes."""

from dataclasses import dataclass

from ruamel.yaml import YAML


@dataclass(frozen=True)
class DvcOut:
    md5: str
    size: int
    path: str = ""  # relative to the .dvc file's directory

    @property
    def is_directory(self) -> bool:
        return self.md5.endswith(".dir")


def parse_dvc_file(text: str) -> DvcOut:
    """md5 and size of the single output a `dvc add` file describes."""
    data = YAML(typ="safe").load(text) or {}
    outs = data.get("outs") if isinstance(data, dict) else None
    if not outs or not isinstance(outs, list) or not isinstance(outs[0], dict):
        raise ValueError("no outs in the .dvc file")
    out = outs[0]
    md5 = out.get("md5")
    if not isinstance(md5, str) or not md5:
        raise ValueError("the .dvc file has no md5")
    return DvcOut(md5=md5, size=int(out.get("size", 0)), path=str(out.get("path") or ""))
