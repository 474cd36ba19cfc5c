"""k8s/: every overlay builds with a real kustomize, validates against the Kubernetes
schemas (strict), meets the restricted Pod Security Standard, and references Secrets
that the up scripts create and nothing commits. What Kubernetes shares with the compose
deployment (Airflow settings, database bootstrap, secret generator, image tags, the
Postgres major) is written once, and both read it."""

from __future__ import annotations

import copy
import os
import re
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from k8s_pss import project_violations, restricted_violations
from k8s_render import (
    K8S_VERSION,
    NAMESPACE,
    OVERLAYS,
    REPO,
    SECRET_NAMES,
    by_kind_name,
    config_maps,
    containers,
    kustomize_command,
    kustomize_version,
    pod_spec,
    render_overlay,
    secret_refs,
    validate,
)
from support.services import VERSION

pytestmark = pytest.mark.k8s

sys.path.insert(0, str(REPO / "scripts"))
import airflow_api  # noqa: E402 - scripts/ is no package
import deploy_env  # noqa: E402
import k8s_overlay  # noqa: E402
import k8s_secrets  # noqa: E402

PG_MAJOR = (REPO / "images" / "postgres" / "PG_MAJOR").read_text().strip()

# The Airflow components (the scheduler a StatefulSet: its logs on a claim of its own).
AIRFLOW_WORKLOADS = (
    ("Deployment", "airflow-api-server"),
    ("StatefulSet", "airflow-scheduler"),
    ("Deployment", "airflow-dag-processor"),
)
EXPECTED = {
    ("Namespace", "apod"),
    ("ServiceAccount", "apod-airflow"),
    ("Role", "apod-airflow-pod-launcher"),
    ("RoleBinding", "apod-airflow-pod-launcher"),
    ("Service", "postgres"),
    ("Service", "airflow-api-server"),
    ("Service", "airflow-scheduler"),
    ("StatefulSet", "postgres"),
    ("Service", "objectstore"),
    ("StatefulSet", "objectstore"),
    ("PersistentVolumeClaim", "apod-data"),
    ("PersistentVolumeClaim", "airflow-dag-processor-logs"),
    ("Job", "apod-db-init"),
    ("Job", "airflow-db-migrate"),
    *AIRFLOW_WORKLOADS,
}
# What an overlay adds to the base: multinode, the pod that holds apod-data on its node.
ADDED = {"multinode": {("Deployment", "apod-data-holder")}}


@pytest.fixture(scope="module", params=OVERLAYS)
def overlay(request) -> tuple[str, list[dict]]:
    if kustomize_command() is None:
        pytest.skip(
            "no kubectl or kustomize on PATH (the Debian/PyPI kubectl has kustomize built in)"
        )
    return request.param, render_overlay(request.param)


def workloads(objs: list[dict]) -> list[tuple[str, dict]]:
    return [(f"{o['kind']}/{o['metadata']['name']}", pod_spec(o)) for o in objs if pod_spec(o)]


def test_overlay_builds_with_kustomize(overlay):
    name, objs = overlay
    print(f"kustomize: {kustomize_version()}")
    found = {(o["kind"], o["metadata"]["name"]) for o in objs if o["kind"] != "ConfigMap"}
    assert found == EXPECTED | ADDED.get(name, set())
    assert {o["metadata"].get("namespace") for o in objs if o["kind"] != "Namespace"} == {NAMESPACE}
    assert all(o["metadata"]["labels"]["apod.pipeline/cluster"] == name for o in objs)


def test_every_object_validates_against_the_pinned_schemas_strictly(overlay):
    _, objs = overlay
    for obj in objs:
        validate(obj)  # raises kubernetes_validate.ValidationError


def test_the_validator_rejects_what_a_cluster_would(overlay):
    import kubernetes_validate

    _, objs = overlay
    deployment = by_kind_name(objs)[("StatefulSet", "airflow-scheduler")]
    typo = copy.deepcopy(deployment)
    typo["spec"]["template"]["spec"]["containers"][0]["imagePullPolcy"] = "IfNotPresent"
    with pytest.raises(kubernetes_validate.ValidationError):
        validate(typo)
    nameless = copy.deepcopy(deployment)
    del nameless["spec"]["template"]["spec"]["containers"][0]["name"]
    with pytest.raises(kubernetes_validate.ValidationError):
        validate(nameless)


def test_namespace_enforces_the_restricted_standard(overlay):
    _, objs = overlay
    labels = by_kind_name(objs)[("Namespace", NAMESPACE)]["metadata"]["labels"]
    for mode in ("enforce", "audit", "warn"):
        assert labels[f"pod-security.kubernetes.io/{mode}"] == "restricted"
        assert labels[f"pod-security.kubernetes.io/{mode}-version"] == "v" + K8S_VERSION[:4]


def test_every_workload_meets_restricted_and_the_project_rules(overlay):
    name, objs = overlay
    found = workloads(objs)
    assert len(found) == 7 + len(ADDED.get(name, ()))
    for where, spec in found:
        assert restricted_violations(spec) == [], where
        assert project_violations(spec, VERSION) == [], where
        writable = {m["mountPath"] for c in containers(spec) for m in c.get("volumeMounts", [])}
        assert "/tmp" in writable, f"{where}: a read-only root needs an emptyDir on /tmp"


@pytest.mark.parametrize(
    ("path", "value"),
    [
        (("containers", 0, "securityContext", "allowPrivilegeEscalation"), True),
        (("containers", 0, "securityContext", "capabilities", "drop"), ["NET_RAW"]),
        (("containers", 0, "securityContext", "capabilities", "add"), ["SYS_ADMIN"]),
        (("containers", 0, "securityContext", "runAsUser"), 0),
        (("containers", 0, "securityContext", "runAsNonRoot"), False),
        (("containers", 0, "securityContext", "privileged"), True),
        (("containers", 0, "securityContext", "seccompProfile"), {"type": "Unconfined"}),
        (("securityContext", "seccompProfile"), None),
        (("securityContext", "runAsNonRoot"), None),
        (("hostNetwork",), True),
        (("volumes", 0), {"name": "host", "hostPath": {"path": "/"}}),
    ],
)
def test_the_restricted_check_can_fail(path, value):
    """Each rule of the checker catches its breach (so a clean result means something)."""
    spec = pod_spec(by_kind_name(render_overlay("kind"))[("Deployment", "airflow-api-server")])
    spec = copy.deepcopy(spec)
    target = spec
    for key in path[:-1]:
        target = target[key]
    if value is None:
        target.pop(path[-1], None)
        if path[-1] == "seccompProfile":
            for c in containers(spec):
                c["securityContext"].pop("seccompProfile", None)
    else:
        target[path[-1]] = value
    assert restricted_violations(spec) != []


def test_an_fsgroup_needs_on_root_mismatch(overlay):
    _, objs = overlay
    spec = copy.deepcopy(pod_spec(by_kind_name(objs)[("StatefulSet", "postgres")]))
    assert spec["securityContext"]["fsGroupChangePolicy"] == "OnRootMismatch"
    assert project_violations(spec, VERSION) == []
    del spec["securityContext"]["fsGroupChangePolicy"]
    assert project_violations(spec, VERSION) == [
        "pod: fsGroup without fsGroupChangePolicy OnRootMismatch"
    ]


def test_no_secret_is_committed_and_every_reference_is_created_by_the_scripts(overlay):
    _, objs = overlay
    assert not [o for o in objs if o["kind"] == "Secret"]
    for path in (REPO / "k8s").rglob("*.yaml"):
        assert not re.search(r"^kind:\s*Secret\s*$", path.read_text(), re.M), path
    created = k8s_secrets.secret_data({name: "x" for name in k8s_secrets.GENERATED})
    for where, spec in workloads(objs):
        for secret, key in secret_refs(spec):
            assert secret in SECRET_NAMES, where
            assert key in created[secret], f"{where}: {secret}/{key} is never created"


def test_configmap_references_resolve(overlay):
    _, objs = overlay
    maps = config_maps(objs)
    for where, spec in workloads(objs):
        for c in containers(spec):
            for source in c.get("envFrom", []):
                assert source["configMapRef"]["name"] in maps, where
        for volume in spec.get("volumes", []):
            if "configMap" in volume:
                assert volume["configMap"]["name"] in maps, where


def test_claims_are_rwo_on_the_clusters_default_storage_class(overlay):
    """No overlay names a StorageClass: kind's and minikube's default (`standard`) is the
    one they would name, and a real cluster's default is its own. (multinode's
    ReadWriteMany class is a setting: test_k8s_multinode.py.)"""
    _, objs = overlay
    claims = {
        o["metadata"]["name"]: o["spec"] for o in objs if o["kind"] == "PersistentVolumeClaim"
    }
    claims |= {
        f"{t['metadata']['name']}-{o['metadata']['name']}-0": t["spec"]
        for o in objs
        if o["kind"] == "StatefulSet"
        for t in o["spec"].get("volumeClaimTemplates", [])
    }
    assert set(claims) == {
        "apod-data",
        "airflow-dag-processor-logs",
        "logs-airflow-scheduler-0",
        "pgdata-postgres-0",
        "data-objectstore-0",
    }
    for claim in claims.values():
        assert claim["accessModes"] == ["ReadWriteOnce"]
        assert "storageClassName" not in claim


def test_only_the_scheduler_holds_an_api_token_for_the_pod_launching_role(overlay):
    _, objs = overlay
    index = by_kind_name(objs)
    for where, spec in workloads(objs):
        if where == "StatefulSet/airflow-scheduler":
            assert spec["serviceAccountName"] == "apod-airflow"
            assert spec["automountServiceAccountToken"] is True
        else:
            assert spec.get("serviceAccountName", "default") == "default", where
            assert spec["automountServiceAccountToken"] is False, where
    assert index[("ServiceAccount", "apod-airflow")].get("automountServiceAccountToken") is False
    binding = index[("RoleBinding", "apod-airflow-pod-launcher")]
    assert binding["roleRef"] == {
        "apiGroup": "rbac.authorization.k8s.io",
        "kind": "Role",
        "name": "apod-airflow-pod-launcher",
    }
    assert binding["subjects"] == [
        {"kind": "ServiceAccount", "name": "apod-airflow", "namespace": NAMESPACE}
    ]
    rules = {
        (group, resource, verb)
        for rule in index[("Role", "apod-airflow-pod-launcher")]["rules"]
        for group in rule["apiGroups"]
        for resource in rule["resources"]
        for verb in rule["verbs"]
    }
    assert rules == {
        ("", "pods", "create"),
        ("", "pods", "get"),
        ("", "pods", "list"),
        ("", "pods", "patch"),
        ("", "pods", "delete"),
        ("", "pods/log", "get"),
        ("", "events", "list"),
    }
    assert not [o for o in objs if o["kind"] in ("ClusterRole", "ClusterRoleBinding")]


def test_airflow_containers_share_one_configuration(overlay):
    _, objs = overlay
    index = by_kind_name(objs)
    settings = config_maps(objs)
    (config_name,) = [n for n in settings if n.startswith("apod-airflow-config")]
    config = settings[config_name]
    assert config["AIRFLOW__CORE__EXECUTOR"] == "LocalExecutor"
    assert config["AIRFLOW__CORE__EXECUTION_API_SERVER_URL"] == (
        "http://airflow-api-server:8080/execution/"
    )
    # The step images' tags for the DAG (default: the version; the up scripts: content tags).
    assert config["APOD_IMAGE_TAGS"] == ",".join(
        f"{name}={VERSION}" for name in ("extract", "transform", "load", "version")
    )
    service = index[("Service", "airflow-api-server")]["spec"]
    assert service["ports"][0]["port"] == 8080
    secret_envs = {}
    for workload in AIRFLOW_WORKLOADS:
        container = pod_spec(index[workload])["containers"][0]  # the component; then sidecars
        assert container["envFrom"] == [{"configMapRef": {"name": config_name}}]
        env = {e["name"]: e.get("valueFrom", e.get("value")) for e in container["env"]}
        assert env["APOD_K8S_NAMESPACE"] == {"fieldRef": {"fieldPath": "metadata.namespace"}}
        secret_envs[workload] = {
            k: v for k, v in env.items() if k.startswith("AIRFLOW__") and isinstance(v, dict)
        }
    first = secret_envs[AIRFLOW_WORKLOADS[0]]
    assert "AIRFLOW__API_AUTH__JWT_SECRET" in first
    assert all(envs == first for envs in secret_envs.values())


def test_scripts_parse_and_are_executable():
    # shellcheck itself runs over every shell script of the repository:
    # tests/unit/test_shellcheck.py.
    scripts = sorted((REPO / "scripts").glob("k8s-*.sh"))
    assert {p.name for p in scripts} >= {
        "k8s-kind-up.sh",
        "k8s-minikube-up.sh",
        "k8s-run.sh",
        "k8s-kind-down.sh",
        "k8s-minikube-down.sh",
    }
    for script in scripts:
        subprocess.run(["bash", "-n", str(script)], check=True)
        if script.name != "k8s-lib.sh":
            assert os.access(script, os.X_OK), script


def test_secrets_file_is_private_stable_and_never_printed(tmp_path: Path):
    env_file = tmp_path / "k8s" / ".secrets.env"
    script = [sys.executable, str(REPO / "scripts" / "k8s_secrets.py")]
    env = {**os.environ, "NASA_API_KEY": "test-nasa-key"}
    first = subprocess.run(
        [*script, "init", str(env_file)], capture_output=True, text=True, env=env
    )
    assert first.returncode == 0, first.stderr
    assert stat.S_IMODE(env_file.stat().st_mode) == 0o600
    values = k8s_secrets.read_env(env_file)
    assert set(values) == set(k8s_secrets.GENERATED)
    assert values["NASA_API_KEY"] == "test-nasa-key"
    assert len(set(values.values())) == len(values)  # every secret its own random value

    again = subprocess.run([*script, "init", str(env_file)], capture_output=True, text=True)
    assert again.returncode == 0
    assert k8s_secrets.read_env(env_file) == values

    rendered = subprocess.run(
        [*script, "render", str(env_file), str(tmp_path / "out")], capture_output=True, text=True
    )
    assert rendered.returncode == 0, rendered.stderr
    for name, keys in k8s_secrets.secret_data(values).items():
        folder = tmp_path / "out" / name
        assert sorted(p.name for p in folder.iterdir()) == sorted(keys)
        for key, value in keys.items():
            assert (folder / key).read_text() == value
            assert stat.S_IMODE((folder / key).stat().st_mode) == 0o600
    output = first.stdout + first.stderr + again.stderr + rendered.stdout + rendered.stderr
    assert not [v for v in values.values() if v in output]
    assert (REPO / "k8s" / ".gitignore").read_text().splitlines().count(".secrets.env") == 1


# --- one configuration for compose and Kubernetes ---------------------------------------


def compose_file() -> dict:
    return yaml.safe_load((REPO / "docker-compose.yml").read_text())


def kustomize_file(path: str, key: str) -> list[str]:
    """The files a configMapGenerator entry of k8s/base reads (`files` or `envs`)."""
    base = yaml.safe_load((REPO / "k8s" / "base" / "kustomization.yaml").read_text())
    (entry,) = [g for g in base["configMapGenerator"] if g["name"] == path]
    return [str(Path("k8s/base") / f) for f in entry[key]]


def test_committed_manifests_carry_no_version():
    for path in (REPO / "k8s").rglob("*"):
        if path.is_file():
            assert VERSION not in path.read_text(), f"{path}: the version lives in VERSION"
    for path in (REPO / "k8s" / "base").rglob("*.yaml"):
        for image in re.findall(r"^\s*image:\s*(\S+)", path.read_text(), re.M):
            assert ":" not in image, f"{path}: {image} is tagged by scripts/k8s_overlay.py"


def test_image_tags_are_read_from_version_and_pg_major(tmp_path):
    """Render with other tags: every image follows them, so none is typed anywhere."""
    if kustomize_command() is None:
        pytest.skip("no kubectl or kustomize on PATH")
    target = REPO / ".cache" / "k8s" / f"test-tag-{os.getpid()}"
    tags = {"airflow": "9.8.7-test", "load": "9.8.7-load", "objectstore": "9.8.7-store"}
    try:
        k8s_overlay.write("kind", target, k8s_overlay.naming_from(tags, "", ""))
        text = subprocess.run(
            [*kustomize_command(), str(target)], capture_output=True, text=True, check=True
        ).stdout
    finally:
        shutil.rmtree(target, ignore_errors=True)
    images = set(re.findall(r"image: (\S+)", text))
    assert images == {
        "apod-airflow:9.8.7-test",
        "apod-load:9.8.7-load",
        "apod-objectstore:9.8.7-store",
        f"apod-postgres:{PG_MAJOR}",
    }
    assert (
        f"APOD_IMAGE_TAGS: extract={VERSION},transform={VERSION},load=9.8.7-load,version={VERSION}"
    ) in text


def test_airflow_settings_come_from_one_file_in_both_deployments():
    compose = compose_file()
    # The first is shared; the second holds the settings only Kubernetes has.
    env_file, own_file = kustomize_file("apod-airflow-config", "envs")
    shared = deploy_env.read_env(REPO / env_file)
    own = deploy_env.read_env(REPO / own_file)
    assert set(own) & set(shared) == set()
    assert shared["AIRFLOW__CORE__EXECUTOR"] == "LocalExecutor"
    airflow = [n for n, svc in compose["services"].items() if "apod-airflow" in svc["image"]]
    assert len(airflow) == 4
    for name in airflow:
        service = compose["services"][name]
        assert service["env_file"] in (f"./{env_file}", [f"./{env_file}"]), name
        # No setting of the shared file is typed again; only the offline API URL may
        # override it, per stack.
        twins = set(service.get("environment") or {}) & set(shared) - {"APOD_API_URL"}
        assert twins == set(), f"{name} repeats {sorted(twins)}"
    # The service the execution API URL names exists under that name in both.
    host = re.match(r"http://([^:/]+)", shared["AIRFLOW__CORE__EXECUTION_API_SERVER_URL"])[1]
    assert host in compose["services"]
    assert ("Service", host) in EXPECTED


def test_databases_are_bootstrapped_by_one_idempotent_script():
    (script,) = kustomize_file("apod-postgres-init", "files")
    mounts = compose_file()["services"]["postgres"]["volumes"]
    assert f"./{script}:/docker-entrypoint-initdb.d/{Path(script).name}:ro" in mounts
    assert not (REPO / "compose" / "postgres").exists(), "a second bootstrap is back"
    text = (REPO / script).read_text()
    # Idempotent: every CREATE is guarded by a look-up of what exists.
    creates = re.findall(r"CREATE (?:ROLE|DATABASE)", text)
    guarded = re.findall(r"WHERE NOT EXISTS", text)
    assert creates
    assert len(guarded) == len(creates)


def test_compose_and_kubernetes_run_the_same_postgres_major(overlay):
    _, objs = overlay
    postgres = pod_spec(by_kind_name(objs)[("StatefulSet", "postgres")])
    assert postgres["containers"][0]["image"] == f"apod-postgres:{PG_MAJOR}"
    lib = (REPO / "scripts" / "compose-lib.sh").read_text()
    assert 'OFFICIAL_POSTGRES="postgres:$PG_MAJOR-bookworm"' in lib
    # (a bench may name another tag for its own build; the default is the major's)
    assert re.search(
        r'LOCAL_POSTGRES="(\$\{APOD_LOCAL_POSTGRES:-)?apod-postgres:\$PG_MAJOR}?"', lib
    )


def test_one_generator_makes_both_secret_files(tmp_path: Path):
    """compose's .env (from .env.example, comments and settings kept) and Kubernetes'
    .secrets.env get the same secrets from scripts/deploy_env.py."""
    env = {**os.environ, "NASA_API_KEY": "test-nasa-key"}
    script = [sys.executable, str(REPO / "scripts" / "deploy_env.py")]
    dotenv = tmp_path / ".env"
    template = REPO / ".env.example"
    made = subprocess.run(
        [*script, "init", str(dotenv), "--template", str(template)],
        capture_output=True, text=True, env=env, check=True,
    )  # fmt: skip
    values = deploy_env.read_env(dotenv)
    assert {n for n in deploy_env.GENERATED if values.get(n)} == set(deploy_env.GENERATED)
    assert values["NASA_API_KEY"] == "test-nasa-key"
    assert stat.S_IMODE(dotenv.stat().st_mode) == 0o600
    kept = [line for line in template.read_text().splitlines() if line.startswith("#")]
    assert [line for line in dotenv.read_text().splitlines() if line.startswith("#")] == kept
    assert not [v for n, v in values.items() if n in deploy_env.GENERATED and v in made.stderr]
    # A value set by hand survives, a secret emptied by hand is made again.
    text = dotenv.read_text().replace(f"APOD_PG_PORT={values['APOD_PG_PORT']}", "APOD_PG_PORT=6543")
    dotenv.write_text(
        text.replace(f"AIRFLOW_JWT_SECRET={values['AIRFLOW_JWT_SECRET']}", "AIRFLOW_JWT_SECRET=")
    )
    assert deploy_env.init(dotenv, template) == ["AIRFLOW_JWT_SECRET"]
    again = deploy_env.read_env(dotenv)
    assert again["APOD_PG_PORT"] == "6543"
    assert again["AIRFLOW_JWT_SECRET"] not in ("", values["AIRFLOW_JWT_SECRET"])
    # Every secret compose interpolates is one the generator makes, or one you give.
    used = set(re.findall(r"\$\{([A-Z_]+)[:?}-]", (REPO / "docker-compose.yml").read_text()))
    secrets_used = {n for n in used if n.endswith(("_PASSWORD", "_SECRET", "_KEY", "_SECRET_KEY"))}
    assert secrets_used <= set(deploy_env.GENERATED) | set(deploy_env.GIVEN)
    # Kubernetes: the same names, in its own file.
    k8s_file = tmp_path / "k8s.env"
    assert k8s_secrets.init(k8s_file) == list(deploy_env.GENERATED)
    assert set(deploy_env.read_env(k8s_file)) == set(deploy_env.GENERATED)


@pytest.mark.parametrize(
    ("line", "parsed"),
    [
        ("NAME=value", ("NAME", "value")),
        ("export NAME = 'quoted value' ", ("NAME", "quoted value")),
        ('NAME="a=b"', ("NAME", "a=b")),
        ("NAME=", ("NAME", "")),
        ("# NAME=commented", None),
        ("not a line", None),
    ],
)
def test_the_env_reader(tmp_path: Path, line, parsed):
    path = tmp_path / "x.env"
    path.write_text(f"{line}\n")
    assert deploy_env.read_env(path) == (dict([parsed]) if parsed else {})
    path.write_text("A=1\nA=2\n")
    assert deploy_env.value(path, "A") == "2"  # the last one wins, as in compose
    assert deploy_env.value(tmp_path / "absent.env", "A") == ""
    with pytest.raises(ValueError, match="secret"):
        deploy_env.set_value(path, "POSTGRES_PASSWORD", "typed-on-a-command-line")


@pytest.mark.parametrize(
    ("paused", "run_after", "expected"),
    [
        (True, "2024-01-02T00:00:00Z", "slot"),  # unpausing would start it at once
        (True, "2024-01-03T00:00:00Z", None),  # not due yet: unpausing starts nothing
        (False, "2024-01-02T00:00:00Z", "slot"),  # (start_run asks only when paused)
        (True, None, None),
    ],
)
def test_a_manual_run_takes_the_slot_of_a_due_scheduled_run(paused, run_after, expected):
    """What scripts/airflow_api.py (make run, make k8s-run) claims on a paused DAG."""
    from datetime import UTC, datetime

    dag = {
        "is_paused": paused,
        "next_dagrun_logical_date": "2024-01-01T00:00:00Z",
        "next_dagrun_data_interval_start": "2024-01-01T00:00:00Z",
        "next_dagrun_data_interval_end": "2024-01-02T00:00:00Z",
        "next_dagrun_run_after": run_after,
    }
    slot = airflow_api.due_slot(dag, datetime(2024, 1, 2, 12, tzinfo=UTC))
    if expected is None:
        assert slot is None
    else:
        assert slot == {
            "logical_date": "2024-01-01T00:00:00Z",
            "data_interval_start": "2024-01-01T00:00:00Z",
            "data_interval_end": "2024-01-02T00:00:00Z",
        }
