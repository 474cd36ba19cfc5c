"""Airflow DAG `apod_etl`: the APOD pipeline's steps as Docker containers (DockerOperator).

The steps, schedule and params live in apod_pipeline (one definition for both DAGs);
dags/README.md lists the settings and connections. Parsed where APOD_DEPLOYMENT is
`compose` or unset (apod_pipeline.deployment).
"""

from apod_pipeline.deployment import COMPOSE, parses

if parses(COMPOSE):
    from apod_pipeline.docker import dag as docker_dag

    dag = docker_dag()
