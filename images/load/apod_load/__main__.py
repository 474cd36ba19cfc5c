from apod_load.main import cli

cli()
