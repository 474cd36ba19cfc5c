"""Render the steps as KubernetesPodOperator tasks (DAG `apod_etl_k8s`).

Pods run in APOD_K8S_NAMESPACE under the restricted Pod Security Standard, mount the
PVC `apod-data` at /data (and, only when APOD_DVC_REMOTE is a path rather than the
deployments' s3:// store, `apod-dvc-remote` at /dvc-remote for version), and take their
secrets from the Secret `apod-secrets` by secretKeyRef: the DAG holds names only.

A pod is kept after its task only when it failed, for inspection, and only the newest
APOD_K8S_FAILED_PODS_KEPT of those; a pod that never started (or still runs) when its
task gives up is deleted, so that it cannot start late beside the retry's.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from airflow.providers.cncf.kubernetes.operators.pod import KubernetesPodOperator
from airflow.providers.cncf.kubernetes.secret import Secret
from kubernetes.client import models as k8s
from kubernetes.client.exceptions import ApiException
from urllib3.exceptions import HTTPError

from apod_pipeline.dag import attach_figures, build_dag, outlets, templated_arguments
from apod_pipeline.exit_codes import NOTHING_TO_DO
from apod_pipeline.lineage import summary_line
from apod_pipeline.placement import beside_data_holder
from apod_pipeline.retry import POD_RETRY_POLICY
from apod_pipeline.settings import Settings
from apod_pipeline.steps import DATA, DVC_REMOTE, Output, Step

if TYPE_CHECKING:
    from airflow.sdk import Context
    from kubernetes.client import CoreV1Api

log = logging.getLogger(__name__)

DAG_ID = "apod_etl_k8s"
CLAIMS = {DATA.name: "apod-data", DVC_REMOTE.name: "apod-dvc-remote"}  # volume -> PVC
SECRET_NAME = "apod-secrets"  # noqa: S105 - the Secret's name, not a value
# The images' user (uid 10001, gid 0: files group-writable, as on OpenShift).
RUN_AS_USER = 10001
RUN_AS_GROUP = 0
TMP_SIZE = "256Mi"
# The summary is the last line the step prints; a log line that raced it on stderr may
# follow. The tail of the log holds it, however long the step's log is.
SUMMARY_TAIL_LINES = 50
XCOM_RETURN_KEY = "return_value"  # what a task's returned value is kept under
POD_NAME = "apod-pipeline"  # every step pod's app.kubernetes.io/name

_RUNTIME_DEFAULT = k8s.V1SeccompProfile(type="RuntimeDefault")

POD_SECURITY_CONTEXT = k8s.V1PodSecurityContext(
    run_as_non_root=True,
    run_as_user=RUN_AS_USER,
    run_as_group=RUN_AS_GROUP,
    fs_group=RUN_AS_GROUP,
    fs_group_change_policy="OnRootMismatch",
    seccomp_profile=_RUNTIME_DEFAULT,
)
CONTAINER_SECURITY_CONTEXT = k8s.V1SecurityContext(
    run_as_non_root=True,
    allow_privilege_escalation=False,
    capabilities=k8s.V1Capabilities(drop=["ALL"]),
    read_only_root_filesystem=True,
    seccomp_profile=_RUNTIME_DEFAULT,
)


def _volumes(step: Step) -> tuple[list[k8s.V1Volume], list[k8s.V1VolumeMount]]:
    volumes = [
        k8s.V1Volume(
            name=volume.name,
            persistent_volume_claim=k8s.V1PersistentVolumeClaimVolumeSource(
                claim_name=CLAIMS[volume.name]
            ),
        )
        for volume in step.volumes
    ]
    mounts = [k8s.V1VolumeMount(name=v.name, mount_path=v.path) for v in step.volumes]
    # The root filesystem is read-only: HOME, git and DVC scratch space live in /tmp.
    volumes.append(
        k8s.V1Volume(name="tmp", empty_dir=k8s.V1EmptyDirVolumeSource(size_limit=TMP_SIZE))
    )
    mounts.append(k8s.V1VolumeMount(name="tmp", mount_path="/tmp"))  # noqa: S108 - an emptyDir
    return volumes, mounts


def pod_kwargs(step: Step, settings: Settings) -> dict[str, Any]:
    volumes, volume_mounts = _volumes(step)
    return {
        "task_id": step.task_id,
        "doc": step.doc,
        "name": "apod-" + step.task_id.replace("_", "-"),
        "namespace": settings.k8s_namespace,
        "image": settings.image(step.image),
        # Each image's name is its content (APOD_IMAGE_TAGS): once on a node, never stale.
        "image_pull_policy": "IfNotPresent",
        **image_pull_kwargs(settings),
        "arguments": templated_arguments(step),  # the image's ENTRYPOINT is the step's CLI
        "env_vars": [k8s.V1EnvVar(name=k, value=v) for k, v in step.environment.items()],
        "secrets": [Secret("env", ref.env, SECRET_NAME, ref.secret_key) for ref in step.secrets],
        "volumes": volumes,
        "volume_mounts": volume_mounts,
        "container_resources": k8s.V1ResourceRequirements(
            requests={"cpu": step.resources.cpu_request, "memory": step.resources.memory_request},
            limits={"cpu": step.resources.cpu_limit, "memory": step.resources.memory_limit},
        ),
        "security_context": POD_SECURITY_CONTEXT,
        "container_security_context": CONTAINER_SECURITY_CONTEXT,
        # The steps never talk to the Kubernetes API.
        "automount_service_account_token": False,
        "labels": {
            "app.kubernetes.io/name": POD_NAME,
            "app.kubernetes.io/component": step.task_id.replace("_", "-"),
        },
        "skip_on_exit_code": NOTHING_TO_DO,
        # No XCom sidecar (one more image to load into the cluster): ApodPodOperator
        # reads the summary line from the pod's log and pushes it itself.
        "do_xcom_push": False,
        "get_logs": True,
        # A failed pod stays for `kubectl describe`/`logs`; succeeded ones go. (What
        # else goes, and how many failed ones stay: ApodPodOperator.process_pod_deletion.)
        "on_finish_action": "delete_succeeded_pod",
        # Waiting to be scheduled, then to start (image pull included): one setting.
        "schedule_timeout_seconds": settings.k8s_pod_start_timeout,
        "startup_timeout_seconds": settings.k8s_pod_start_timeout,
        "failed_pods_kept": settings.k8s_failed_pods_kept,
        # On several nodes with ReadWriteOnce storage: beside the pod holding apod-data.
        "affinity": beside_data_holder(settings.k8s_data_holder) if DATA in step.volumes else None,
        # The step's one-line reason becomes the pod's termination message.
        "termination_message_policy": "FallbackToLogsOnError",
        "execution_timeout": step.execution_timeout,
        "retry_policy": POD_RETRY_POLICY,
        "outlets": outlets(step),
        "step_outputs": step.outputs,
    }


def image_pull_kwargs(settings: Settings) -> dict[str, Any]:
    """The pull secret of a registry that wants one (APOD_IMAGE_PULL_SECRET)."""
    if not settings.image_pull_secret:
        return {}
    return {"image_pull_secrets": [k8s.V1LocalObjectReference(name=settings.image_pull_secret)]}


def pod_summary(client: CoreV1Api, pod: k8s.V1Pod, container: str) -> str | None:
    """The step's JSON summary from the tail of a finished pod's log."""
    try:
        # Raw bytes: with the client's own decoding the log comes back as the repr of
        # a bytes object ("b'...'"), escapes and all.
        response = client.read_namespaced_pod_log(
            name=pod.metadata.name,
            namespace=pod.metadata.namespace,
            container=container,
            tail_lines=SUMMARY_TAIL_LINES,
            _preload_content=False,
        )
        text = response.data.decode("utf-8", errors="replace")
    except (ApiException, HTTPError) as exc:
        # The data is written; a missing figure must not fail (and re-run) the step.
        reason = f"{exc.status} {exc.reason}" if isinstance(exc, ApiException) else str(exc)
        log.warning("no summary from pod %s's log: %s", pod.metadata.name, reason)
        return None
    return summary_line(text)


def prune_failed_pods(client: CoreV1Api, namespace: str, keep: int) -> list[str]:
    """Delete the failed step pods beyond the newest `keep`; returns their names. A pod
    already gone (another task pruned it) is no error."""
    pods = client.list_namespaced_pod(
        namespace=namespace,
        label_selector=f"app.kubernetes.io/name={POD_NAME}",
        field_selector="status.phase=Failed",
    ).items
    pods.sort(key=lambda pod: (pod.metadata.creation_timestamp, pod.metadata.name), reverse=True)
    deleted = []
    for pod in pods[keep:]:
        try:
            client.delete_namespaced_pod(name=pod.metadata.name, namespace=namespace)
        except ApiException as exc:
            if exc.status != 404:
                raise
        deleted.append(pod.metadata.name)
    return deleted


class ApodPodOperator(KubernetesPodOperator):
    """KubernetesPodOperator whose XCom is the step's summary line, read back from the
    pod's log (no XCom sidecar: no second image in the cluster, no second output
    contract), whose asset events carry the step's figures, as on Docker, and which
    leaves no pod behind but failed ones, up to `failed_pods_kept`."""

    def __init__(
        self,
        *,
        step_outputs: Sequence[Output] = (),
        failed_pods_kept: int = 10,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.step_outputs = tuple(step_outputs)
        self.failed_pods_kept = failed_pods_kept
        self.summary: str | None = None

    def process_pod_deletion(self, pod: k8s.V1Pod, *, reraise: bool = True) -> bool:
        """Delete the pod unless it failed. The pod's phase is read again: the copy the
        operator holds may be the Pending one it created, when it gave up waiting for
        it to start. A pod that never started (or still runs) when its task gives up is
        deleted too: left there, it would start whenever the node allows, beside the
        retry's. A failed pod is kept, and the oldest failed ones beyond
        `failed_pods_kept` are removed."""
        if pod is None:
            return False
        try:
            current = self.client.read_namespaced_pod(
                name=pod.metadata.name, namespace=pod.metadata.namespace
            )
        except ApiException as exc:
            if exc.status == 404:
                return False  # gone already
            if reraise:
                raise
            self.log.warning("pod %s not read, left as it is: %s", pod.metadata.name, exc.reason)
            return False
        try:
            if current.status.phase == "Failed":
                self.log.info("keeping failed pod %s for inspection", pod.metadata.name)
                deleted = False
            else:
                self.log.info("deleting pod %s (%s)", pod.metadata.name, current.status.phase)
                self.pod_manager.delete_pod(current)
                deleted = True
            pruned = prune_failed_pods(
                self.client, current.metadata.namespace, self.failed_pods_kept
            )
            if pruned:
                self.log.info("deleted older failed pods: %s", ", ".join(pruned))
        except (ApiException, HTTPError) as exc:
            if reraise:
                raise
            self.log.warning("pod clean-up incomplete: %s", exc)
            return False
        return deleted

    def await_pod_completion(self, pod: k8s.V1Pod) -> None:
        super().await_pod_completion(pod)
        # Still there: cleanup deletes a succeeded pod only after this.
        self.summary = pod_summary(self.client, pod, self.base_container_name)

    def execute(self, context: Context) -> None:
        self.summary = None
        super().execute(context)  # raises on failure, skips on exit 99
        context["ti"].xcom_push(key=XCOM_RETURN_KEY, value=self.summary)
        attach_figures(context, self.task_id, self.step_outputs, self.summary)


def pod_task(step: Step, settings: Settings) -> ApodPodOperator:
    return ApodPodOperator(**pod_kwargs(step, settings))


SECRETS_DOC = f"""\
By reference only: the Kubernetes Secret `{SECRET_NAME}` (keys `nasa-api-key`,
`database-url`) becomes the pods' `NASA_API_KEY` and `APOD_DATABASE_URL` through
`secretKeyRef`; Airflow never sees the values."""


def dag(settings: Settings | None = None):
    return build_dag(
        DAG_ID,
        pod_task,
        runner="Airflow starts them as Kubernetes pods (KubernetesPodOperator)",
        secrets_doc=SECRETS_DOC,
        tags=["kubernetes"],
        settings=settings,
    )
