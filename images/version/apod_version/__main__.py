from apod_common import cli
from apod_version.main import main

raise SystemExit(cli.run("version", main))
