from apod_transform.main import cli

cli()
