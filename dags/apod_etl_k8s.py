"""Airflow DAG `apod_etl_k8s`: the APOD pipeline's steps as Kubernetes pods
(KubernetesPodOperator).

The steps, schedule and params live in apod_pipeline (one definition for both DAGs);
dags/README.md lists the settings, the Secret and the PVCs. Parsed where
APOD_DEPLOYMENT is `kubernetes` or unset (apod_pipeline.deployment).
"""

from apod_pipeline.deployment import KUBERNETES, parses

if parses(KUBERNETES):
    from apod_pipeline.kubernetes import dag as kubernetes_dag

    dag = kubernetes_dag()
