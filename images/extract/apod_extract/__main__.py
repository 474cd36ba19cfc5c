from apod_common import cli
from apod_extract.command import main

raise SystemExit(cli.run("extract", main))
