"""Exit codes shared by every step; the DAGs map NOTHING_TO_DO to a skipped task."""

OK = 0
FAILURE = 1  # unexpected error (a bug, or an environment we did not foresee)
USAGE = 2  # bad arguments (argparse uses 2 too)
BAD_INPUT = 3  # input files missing or malformed, too many rejected rows
UPSTREAM_REFUSED = 4  # the API said no (4xx): bad key, bad date; retrying will not help
UPSTREAM_UNAVAILABLE = 5  # the API or a store stayed down / rate limit too long; retry later
NOTHING_TO_DO = 99  # nothing new: the task is skipped, downstream too
