from apod_common import cli
from apod_load.main import main

raise SystemExit(cli.run("load", main))
