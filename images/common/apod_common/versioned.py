"""raw/.last-versioned.json: the last batch that went all the way through, for the next
run to know when it has nothing to do.

The version step writes it once the batch is in both stores and its CSV is versioned and
pushed (committed, or found unchanged): the batch's run id and the md5 DVC recorded for the
CSV. Extract reads it back: a run whose API answers are byte for byte that batch's, while
the CSV still has that md5, would load and version nothing new, and stops there (exit 99).

On disk (JSON, keys sorted, UTF-8): {"run_id", "md5", "commit"}; anything unreadable is
as good as no record (the run then goes all the way, as without one).
"""

import json
from dataclasses import asdict, dataclass
from pathlib import Path

from apod_common import files, layout


@dataclass(frozen=True)
class Versioned:
    run_id: str  # the batch's run: its manifest is raw/<batch_name(run_id)>/manifest.json
    md5: str  # of the dataset CSV, as DVC recorded it
    commit: str | None  # the data commit that holds it (None: HEAD had it already)


def write(data_dir: Path, record: Versioned) -> None:
    data = json.dumps(asdict(record), sort_keys=True, ensure_ascii=False) + "\n"
    files.atomic_write(layout.last_versioned(data_dir), data.encode("utf-8"))


def read(data_dir: Path) -> Versioned | None:
    try:
        payload = json.loads(layout.last_versioned(data_dir).read_bytes())
        return Versioned(str(payload["run_id"]), str(payload["md5"]), payload.get("commit"))
    except (OSError, ValueError, KeyError, TypeError):
        return None
