"""Airflow's local settings: every Airflow process imports this module when it starts (it
lies in the plugins folder, which Airflow puts on sys.path). Only the scheduler acts on it.

With the LocalExecutor each task is a fork of one of the scheduler's worker processes,
forked when the scheduler starts, and each task parses its DAG file, which imports the
operator's provider: a fraction of a second of CPU for every task of every run. Imported
here, once, before the workers are forked, every task finds it imported already. The
DAGs' own package is not imported here: a changed DAG must be read afresh by each task.
"""

import importlib
import os
import sys

# The operators the DAGs render (dags/apod_pipeline/docker.py, kubernetes.py); the
# Kubernetes one only in a pod of a cluster, where apod_etl_k8s's tasks run.
PRELOADED = ("airflow.providers.docker.operators.docker",)
IN_A_CLUSTER = ("airflow.providers.cncf.kubernetes.operators.pod",)

if sys.argv[1:2] == ["scheduler"]:
    for name in PRELOADED + (IN_A_CLUSTER if os.environ.get("KUBERNETES_SERVICE_HOST") else ()):
        importlib.import_module(name)
