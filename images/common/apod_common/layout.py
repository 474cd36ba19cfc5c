"""Where each step reads and writes on the shared volume.

/data/raw/<batch>/<start>_<end>.json   raw API payloads, one file per chunk, untouched
/data/raw/<batch>/manifest.json        what extract fetched (chunks, counts, checksums)
/data/raw/.last-versioned.json         the last batch loaded and versioned (versioned.py)
/data/staging/<batch>/apod.csv         the validated batch (STAGED_COLUMNS)
/data/staging/<batch>/rejected.csv     rows set aside, with their reason
/data/apod_data.csv                    the merged dataset, tracked by DVC

<batch> is the run id made safe for a file name, so retries of one run find their
own files and different runs never collide.
"""

import re
from pathlib import Path

# Repeated as DATA_CSV in dags/apod_pipeline/steps.py (no step library there): a DAG test
# ties the two.
CSV_NAME = "apod_data.csv"
# Beside the batches, under a name no batch can have (batch_name strips leading dots).
LAST_VERSIONED_NAME = ".last-versioned.json"


def batch_name(run_id: str) -> str:
    safe = re.sub(r"[^A-Za-z0-9._-]+", "_", run_id).strip("._")
    return safe or "batch"


def raw_dir(data_dir: Path, run_id: str) -> Path:
    return data_dir / "raw" / batch_name(run_id)


def manifest_path(data_dir: Path, run_id: str) -> Path:
    return raw_dir(data_dir, run_id) / "manifest.json"


def last_versioned(data_dir: Path) -> Path:
    return data_dir / "raw" / LAST_VERSIONED_NAME


def staging_dir(data_dir: Path, run_id: str) -> Path:
    return data_dir / "staging" / batch_name(run_id)


def staged_batch(data_dir: Path, run_id: str) -> Path:
    return staging_dir(data_dir, run_id) / "apod.csv"


def rejected_rows(data_dir: Path, run_id: str) -> Path:
    return staging_dir(data_dir, run_id) / "rejected.csv"


def dataset_csv(data_dir: Path) -> Path:
    return data_dir / CSV_NAME
