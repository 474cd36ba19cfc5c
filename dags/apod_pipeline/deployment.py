"""Which DAG an Airflow parses: each deployment its own.

APOD_DEPLOYMENT names the deployment an Airflow belongs to, and each DAG file asks
`parses(<its deployment>)` before it imports its operator: `compose` (set in
docker-compose.yml) parses only `apod_etl`, which needs the Docker socket; `kubernetes`
(the ConfigMap of k8s/, from k8s/base/airflow/kubernetes.env) parses only
`apod_etl_k8s`, which needs the cluster's API. Unset, both are parsed: a checkout (the
tests, `airflow dags test`) has both.

Standard library only: it runs before either provider is imported.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

ENV = "APOD_DEPLOYMENT"
COMPOSE = "compose"
KUBERNETES = "kubernetes"
DEPLOYMENTS = (COMPOSE, KUBERNETES)


def parses(deployment: str, environ: Mapping[str, str] = os.environ) -> bool:
    """Whether the DAG of `deployment` belongs to this Airflow; a value that names no
    deployment fails the import with the variable's name, rather than hide both DAGs."""
    value = environ.get(ENV, "").strip()
    if value and value not in DEPLOYMENTS:
        raise ValueError(f"{ENV} must be one of {', '.join(DEPLOYMENTS)} or unset, not {value!r}")
    return value in ("", deployment)
