"""Tools for running and measuring the pipeline outside Airflow, shared by `make steps`,
`make bench` and the tests (which import them; these never import the tests).

- project: this checkout and its image names
- docker: the docker CLI, throwaway volumes, reading a volume
- testserver: the repository's APOD test server as a local process
- postgres: fresh databases on a Postgres server (needs psycopg)
- runner: the pipeline's steps run by hand, as apod_pipeline.by_hand renders them

Everything but `postgres` is standard library only. The pipeline's definition is
imported from dags/ (apod_pipeline), which the caller puts on sys.path.
"""
