from apod_version.main import cli

cli()
