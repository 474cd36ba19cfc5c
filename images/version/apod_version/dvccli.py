"""DVC's command line, run in this process: `dvc add` then `dvc push` (and `dvc init` for
a new repository) as one interpreter instead of one each.

Every `python -m dvc` child started a Python and imported DVC again; with DVC already
imported here (apod_version.remote reads its config), each command costs only its work.
It stays the command line: the same arguments, exit codes and messages as the child
(`dvc.cli.main`), in the environment and directory the child would have had, its output
captured (stdout carries only the step's summary) and handed back as the child's was.
"""

import contextlib
import io
import logging
import os
import sys
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path

# Where DVC's own log handlers write (dvc.logger.setup binds them to the streams of the
# moment DVC is first imported).
_DVC_LOGGERS = ("dvc", "dvc_objects", "dvc_data")


def run(args: Sequence[str], cwd: Path, env: Mapping[str, str]) -> tuple[int, str, str]:
    """`dvc <args>` in `cwd` with exactly `env` as the environment: (exit code, stdout,
    stderr), as the child process would have given them."""
    with _environment(env), _git_config_home(env), _directory(cwd), _captured() as (out, err):
        from dvc.cli import main

        code = main(list(args))
    return code, out.getvalue(), err.getvalue()


@contextlib.contextmanager
def _git_config_home(env: Mapping[str, str]) -> Iterator[None]:
    """libgit2 reads where the global git config lies once, when it is loaded; a child
    would read it from `env` (apod_version.childenv: the repository's safe.directory)."""
    if "pygit2" not in sys.modules or not env.get("XDG_CONFIG_HOME"):
        yield
        return
    import pygit2
    from pygit2.enums import ConfigLevel

    paths = pygit2.settings.search_path
    saved = {level: paths[level] for level in (ConfigLevel.XDG, ConfigLevel.GLOBAL)}
    paths[ConfigLevel.XDG] = os.path.join(env["XDG_CONFIG_HOME"], "git")
    paths[ConfigLevel.GLOBAL] = env.get("HOME", saved[ConfigLevel.GLOBAL])
    try:
        yield
    finally:
        for level, path in saved.items():
            paths[level] = path


@contextlib.contextmanager
def _environment(env: Mapping[str, str]) -> Iterator[None]:
    saved = dict(os.environ)
    os.environ.clear()
    os.environ.update(env)
    try:
        yield
    finally:
        os.environ.clear()
        os.environ.update(saved)


@contextlib.contextmanager
def _directory(path: Path) -> Iterator[None]:
    saved = os.getcwd()
    os.chdir(path)
    try:
        yield
    finally:
        os.chdir(saved)


@contextlib.contextmanager
def _captured() -> Iterator[tuple[io.StringIO, io.StringIO]]:
    """stdout and stderr as the child's: DVC's own handlers write there, and what the
    libraries it drives log (botocore, ...) goes to stderr, not to the step's log."""
    out, err = io.StringIO(), io.StringIO()
    import dvc  # noqa: F401 - sets DVC's log handlers up, bound to the real streams

    loggers = [logging.getLogger(name) for name in _DVC_LOGGERS]
    handlers = [
        handler
        for logger in loggers
        for handler in logger.handlers
        if isinstance(handler, logging.StreamHandler)
    ]
    streams = [(handler, handler.stream) for handler in handlers]
    for handler, stream in streams:
        handler.setStream(out if stream is sys.stdout else err)
    propagate = [(logger, logger.propagate) for logger in loggers]
    for logger, _ in propagate:
        logger.propagate = False
    root = logging.getLogger()
    root_handlers = root.handlers[:]
    root.handlers = [logging.StreamHandler(err)]
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            yield out, err
    finally:
        root.handlers = root_handlers
        for logger, value in propagate:
            logger.propagate = value
        for handler, stream in streams:
            handler.setStream(stream)
