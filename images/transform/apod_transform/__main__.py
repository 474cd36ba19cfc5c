from apod_common import cli
from apod_transform.main import main

raise SystemExit(cli.run("transform", main))
