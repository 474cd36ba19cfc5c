"""git as child processes and DVC's command line in this process (apod_version.dvccli):
their output goes to our log, never to stdout, which carries only the summary line."""

import logging
import subprocess
from dataclasses import dataclass
from pathlib import Path

from apod_common import exit_codes
from apod_common.errors import StepError
from apod_version import dvccli

log = logging.getLogger("version")


@dataclass(frozen=True)
class Result:
    returncode: int
    stdout: str
    stderr: str

    @property
    def ok(self) -> bool:
        return self.returncode == 0

    def last_line(self) -> str:
        """The most telling line of the output, for a one-line reason: the first error
        line git or DVC printed, else the last line."""
        lines = [
            line.strip()
            for text in (self.stderr, self.stdout)
            for line in text.splitlines()
            if line.strip()
        ]
        for line in lines:
            if line.startswith(("ERROR:", "fatal:", "error:")):
                return line
        for line in reversed(lines):
            # DVC ends errors with a help footer; the error is above it.
            if not line.startswith(("Having any troubles?", "<https://")):
                return line
        return f"exit code {self.returncode}"


class Tools:
    """Runs git and dvc in one repository with one environment."""

    def __init__(self, repo: Path, env: dict[str, str], dvc_cwd: Path | None = None):
        self.repo = repo
        self.env = env
        self.dvc_cwd = dvc_cwd or repo

    def _run(self, argv: list[str], cwd: Path, stdin: str | None = None) -> Result:
        log.debug("running %s (in %s)", " ".join(argv), cwd)
        try:
            proc = subprocess.run(
                argv,
                cwd=cwd,
                env=self.env,
                input=stdin if stdin is not None else "",
                capture_output=True,
                text=True,
                errors="replace",
                check=False,
            )
        except FileNotFoundError as exc:
            raise StepError(f"{argv[0]} is not installed", exit_codes.FAILURE) from exc
        result = Result(proc.returncode, proc.stdout, proc.stderr)
        self._log_output(result)
        return result

    @staticmethod
    def _log_output(result: Result) -> None:
        for stream in (result.stdout, result.stderr):
            for line in stream.splitlines():
                if line.strip():
                    log.debug("  %s", line.rstrip())

    def git(self, *args: str, stdin: str | None = None) -> Result:
        return self._run(["git", "-C", str(self.repo), *args], self.repo, stdin)

    def dvc(self, *args: str) -> Result:
        # The dvc of this interpreter, in this process (apod_version.dvccli): in the image
        # and in a venv alike, whatever PATH says.
        log.debug("running dvc %s (in %s)", " ".join(args), self.dvc_cwd)
        result = Result(*dvccli.run(args, self.dvc_cwd, self.env))
        self._log_output(result)
        return result

    def git_ok(self, *args: str, stdin: str | None = None, code: int = exit_codes.FAILURE) -> str:
        result = self.git(*args, stdin=stdin)
        if not result.ok:
            raise StepError(f"git {args[0]} failed: {result.last_line()}", code)
        return result.stdout

    def dvc_ok(self, *args: str, code: int = exit_codes.FAILURE) -> str:
        result = self.dvc(*args)
        if not result.ok:
            raise StepError(f"dvc {args[0]} failed: {result.last_line()}", code)
        return result.stdout
