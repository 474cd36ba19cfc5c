"""The step images' exit codes, as the DAGs act on them.

The Airflow image carries none of the step libraries, so the numbers are repeated from
images/common/apod_common/exit_codes.py; a DAG test keeps the two equal.
"""

USAGE = 2
BAD_INPUT = 3
UPSTREAM_REFUSED = 4
UPSTREAM_UNAVAILABLE = 5
NOTHING_TO_DO = 99  # -> skip_on_exit_code: the task is skipped, and so is everything downstream

# What a failed step's code means, as the retry policy and the alerts say it.
MEANING = {
    USAGE: "bad arguments",
    BAD_INPUT: "bad or missing input",
    UPSTREAM_REFUSED: "refused by upstream",
    UPSTREAM_UNAVAILABLE: "upstream or store unavailable",
}
UNEXPECTED = "unexpected error"

# Retrying cannot change the outcome: the task fails at once instead of burning retries.
NOT_RETRYABLE = {code: MEANING[code] for code in (USAGE, BAD_INPUT, UPSTREAM_REFUSED)}
