"""The pipeline's steps run by hand: `docker run` each, as apod_pipeline.by_hand renders
the one definition (apod_pipeline.steps), in the DAGs' order and with their outcomes.

A step starts once the steps upstream of it are done, side by side with any other that
can (the two loads); a step that exits 99 (nothing to do) skips the steps downstream of
it, as the DAGs do; any other failure stops the run.
"""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from apod_pipeline.by_hand import DockerRun, Placement, docker_run
from apod_pipeline.exit_codes import NOTHING_TO_DO
from apod_pipeline.settings import Settings
from apod_pipeline.steps import Checkout, RunValue, Step, steps

DONE = 0


class StepFailed(Exception):
    """A step ended with an exit code its caller did not expect."""


@dataclass
class StepRun:
    name: str
    returncode: int
    stdout: str  # empty when the output went to the terminal
    stderr: str
    seconds: float

    @property
    def summary(self) -> dict:
        """The step's one-line JSON summary: the last line it printed."""
        lines = self.stdout.strip().splitlines()
        return json.loads(lines[-1]) if lines else {}

    @property
    def output(self) -> str:
        return self.stdout + self.stderr

    @property
    def ok(self) -> bool:
        return self.returncode in (DONE, NOTHING_TO_DO)

    def expect(self, *codes: int) -> StepRun:
        """This run, when it exited with one of `codes` (default 0)."""
        codes = codes or (DONE,)
        if self.returncode not in codes:
            raise StepFailed(
                f"{self.name} exited {self.returncode}, expected {codes}:\n{self.stderr[-3000:]}"
            )
        return self


def execute(
    command: DockerRun,
    name: str,
    *,
    options: Iterable[str] = (),
    arguments: Iterable[str] = (),
    capture: bool = True,
) -> StepRun:
    """Run one container to its end; `capture=False` leaves its output on the terminal."""
    started = time.monotonic()
    result = subprocess.run(
        command.argv(options, arguments),
        env=command.cli_environment(),
        capture_output=capture,
        text=True,
        check=False,
    )
    return StepRun(
        name,
        result.returncode,
        result.stdout or "",
        result.stderr or "",
        time.monotonic() - started,
    )


class Runner:
    """The pipeline's steps for one placement (what backs the volumes) and one source of
    secrets (`environ`: the caller's environment, or only what a test hands over)."""

    def __init__(
        self,
        settings: Settings,
        placement: Placement,
        environ: Mapping[str, str] | None = None,
        *,
        checkout: Checkout | None = None,
        capture: bool = True,
        log: Callable[[str], None] = lambda message: None,
    ) -> None:
        self.settings = settings
        self.placement = placement
        self.environ = dict(environ or {})
        self.steps = {step.task_id: step for step in steps(settings, checkout)}
        self.capture = capture
        self.log = log

    def command(
        self,
        task_id: str,
        values: Mapping[RunValue, str],
        environment: Mapping[str, str] | None = None,
        placement: Placement | None = None,
    ) -> DockerRun:
        return docker_run(
            self.steps[task_id],
            self.settings,
            values,
            placement or self.placement,
            self.environ,
            environment,
        )

    def run(
        self,
        task_id: str,
        values: Mapping[RunValue, str],
        *,
        arguments: Iterable[str] = (),
        options: Iterable[str] = (),
        environment: Mapping[str, str] | None = None,
        placement: Placement | None = None,
    ) -> StepRun:
        """One step; `arguments` are added after the definition's, `options` to `docker run`."""
        command = self.command(task_id, values, environment, placement)
        self.log(f"{task_id}: starting")
        run = execute(command, task_id, options=options, arguments=arguments, capture=self.capture)
        if run.returncode == DONE:
            self.log(f"{task_id}: done in {run.seconds:.0f}s")
        elif run.returncode == NOTHING_TO_DO:
            self.log(f"{task_id}: nothing to do")
        else:
            self.log(f"{task_id}: failed with exit code {run.returncode}")
        return run

    def downstream(self, task_id: str) -> list[str]:
        """The steps below `task_id`, in the definition's (dependency) order."""
        below = {task_id}
        for step in self.steps.values():
            if below.intersection(step.upstream):
                below.add(step.task_id)
        return [t for t in self.steps if t in below and t != task_id]

    def pipeline(
        self,
        values: Mapping[RunValue, str],
        *,
        arguments: Mapping[str, Iterable[str]] | None = None,
        environment: Mapping[str, str] | None = None,
    ) -> dict[str, StepRun]:
        """Every step once, as the DAGs run them. Returns the runs by task id: every step's,
        unless one was skipped (after a 99 upstream) or the run stopped at a failure."""
        arguments = arguments or {}
        runs: dict[str, StepRun] = {}
        waiting: list[Step] = list(self.steps.values())
        while waiting:
            ready = [s for s in waiting if all(u in runs for u in s.upstream)]
            if not ready:
                raise ValueError(f"steps with upstream steps that never run: {waiting}")
            with ThreadPoolExecutor(len(ready)) as pool:
                started = {
                    step.task_id: pool.submit(
                        self.run,
                        step.task_id,
                        values,
                        arguments=arguments.get(step.task_id, ()),
                        environment=environment,
                    )
                    for step in ready
                }
            runs |= {task_id: future.result() for task_id, future in started.items()}
            if failure(runs):
                break
            skipped = set()
            for task_id in started:
                below = self.downstream(task_id)
                if runs[task_id].returncode == NOTHING_TO_DO and below:
                    self.log(f"{task_id} had nothing to do: skipping {', '.join(below)}")
                    skipped.update(below)
            waiting = [s for s in waiting if s not in ready and s.task_id not in skipped]
        return runs


def failure(runs: Mapping[str, StepRun]) -> StepRun | None:
    """The first step of a pipeline run that failed, if one did."""
    return next((run for run in runs.values() if not run.ok), None)
