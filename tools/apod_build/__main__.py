import sys

from apod_build.cli import main

raise SystemExit(main(sys.argv[1:]))
