from apod_extract.main import cli

cli()
