"""The one exception type steps raise to stop with a meaningful exit code."""

from apod_common import exit_codes


class StepError(Exception):
    """A failure with a one-line reason and the exit code that classifies it."""

    def __init__(self, reason: str, code: int = exit_codes.FAILURE):
        super().__init__(reason)
        self.reason = " ".join(str(reason).split())  # always one line
        self.code = code


class NothingToDo(StepError):
    """Not a failure: the step has no work (the DAG marks the task skipped)."""

    def __init__(self, reason: str):
        super().__init__(reason, exit_codes.NOTHING_TO_DO)
