"""The commit message of a data version: subject names the run, body the data."""


def one_line(text: str) -> str:
    return " ".join(str(text).split())


def commit_message(run_id: str, csv_name: str, md5: str, size: int, rows: int) -> str:
    return (
        f"data: update {csv_name} (run {one_line(run_id)})\n"
        "\n"
        f"md5: {md5}\n"
        f"size: {size}\n"
        f"rows: {rows}\n"
    )


INIT_MESSAGE = "data: initialise the APOD data repository (git + DVC)\n"
