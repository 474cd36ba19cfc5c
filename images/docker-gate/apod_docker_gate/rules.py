"""The rule engine: one parsed request in, the request to forward out (or Refused).

Pure apart from two facts it asks the engine for (model.Facts): a container's labels and
an image's USER. Everything not allowed here is refused; what is allowed is rebuilt from
what was checked (path, re-encoded query, re-serialised JSON), so the engine never sees
bytes the gate did not read. The endpoint table (ENDPOINTS) and the reasons for the
endpoints refused outright (REFUSALS) are also what HAProxy's rules are rendered from
(haproxy.py).
"""

from __future__ import annotations

import io
import json
import re
import tarfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from apod_docker_gate.create import check_create
from apod_docker_gate.jsondoc import parse_json, show
from apod_docker_gate.model import Facts, Forward, Refused, Request, query, target
from apod_docker_gate.policy import Policy

# docker-py puts the API version first: /v1.41/containers/create.
VERSION_PREFIX = r"(?:/v1\.[0-9]{1,3})?"
# Containers only by their full id, as DockerOperator addresses them: an id never names
# another container later (a name or a prefix could, between the check and the call).
CONTAINER_ID = r"[0-9a-f]{64}"
CONTAINER = rf"/containers/(?P<id>{CONTAINER_ID})"
ARCHIVE_MEMBER = re.compile(r"(?:\./)?(?P<name>[A-Za-z0-9][A-Za-z0-9._-]{0,127})")
BOOL = re.compile(r"0|1|true|false|True|False")
FALSE = re.compile(r"0|false|False")
NUMBER = re.compile(r"-?[0-9]{1,10}")

Check = Callable[[Request, Mapping[str, str], Policy, "Facts"], Forward]


@dataclass(frozen=True)
class Endpoint:
    name: str
    methods: tuple[str, ...]
    path: str  # a regular expression of the path after the version prefix
    check: Check

    @property
    def pattern(self) -> re.Pattern[str]:
        return re.compile(path_regex(self.path))


def path_regex(path: str) -> str:
    """A path pattern of the tables below, with the optional API version before it."""
    return f"{VERSION_PREFIX}(?:{path})"


# --- the pipeline's own containers ---------------------------------------------------


def labelled(request: Request, match: Mapping[str, str], policy: Policy, facts: Facts) -> None:
    container = match["id"]
    labels = facts.container_labels(container)
    if labels is None:
        raise Refused(f"no such container: {container}", 404)
    key, wanted = policy.label
    if labels.get(key) != wanted:
        raise Refused(f"container {container[:12]} is not the pipeline's (no label {key}={wanted})")


def container_call(params: Mapping[str, re.Pattern[str]], upgrade: bool = False) -> Check:
    """A call on one of the pipeline's containers: these query parameters, no body."""

    def check(request: Request, match: Mapping[str, str], policy: Policy, facts: Facts):
        checked = query(request, params)
        if request.body:
            raise Refused("this call takes no body")
        labelled(request, match, policy, facts)
        return Forward(
            request.method, target(request, checked), upgrade=upgrade and request.upgrade
        )

    return check


def check_secrets_archive(
    request: Request, match: Mapping[str, str], policy: Policy, facts: Facts
) -> Forward:
    """PUT of a tar of plain files into the secrets directory, before the step starts."""
    params = query(request, {"path": re.compile(".*", re.S)})
    if params.get("path") != policy.secrets_dir:
        raise Refused(
            f"files may be put into {policy.secrets_dir} only, not {show(params.get('path'))}"
        )
    try:
        with tarfile.open(fileobj=io.BytesIO(request.body), mode="r:") as archive:
            members = archive.getmembers()
    except (tarfile.TarError, EOFError, OSError) as exc:
        raise Refused(f"the body is not an uncompressed tar ({exc})", 400) from None
    for member in members:
        if member.isdir() and member.name in (".", "./"):
            continue
        if not member.isfile() or not ARCHIVE_MEMBER.fullmatch(member.name):
            raise Refused(
                f"the secrets archive may hold plain files directly in {policy.secrets_dir} "
                f"only, not {member.name[:100]!r}"
            )
    labelled(request, match, policy, facts)
    return Forward("PUT", target(request, params), request.body, "application/x-tar")


# --- ping, version, the step images ------------------------------------------------


def plain(request: Request, _: Mapping[str, str], policy: Policy, facts: Facts) -> Forward:
    query(request, {})
    if request.body:
        raise Refused("this call takes no body")
    return Forward(request.method, request.path)


def check_image_list(
    request: Request, _: Mapping[str, str], policy: Policy, facts: Facts
) -> Forward:
    """What DockerOperator asks before it would pull: is the step image here?"""
    params = query(request, {"only_ids": FALSE, "all": FALSE, "filters": re.compile(".*", re.S)})
    filters = parse_json(params.get("filters", "null").encode(), "filters parameter")
    refs = filters.get("reference") if isinstance(filters, dict) else None
    if isinstance(refs, dict):  # the engine's other form: {"reference": {"x": true}}
        refs = [ref for ref, on in refs.items() if on is True]
    if (
        not isinstance(filters, dict)
        or set(filters) != {"reference"}
        or not isinstance(refs, list)
        or not refs
        or not all(ref in policy.images for ref in refs)
    ):
        raise Refused("images may be listed only by reference to a step image at this version")
    params["filters"] = json.dumps({"reference": refs})
    return Forward("GET", target(request, params))


ENDPOINTS = (
    Endpoint("ping", ("GET", "HEAD"), "/_ping", plain),
    Endpoint("version", ("GET",), "/version", plain),
    Endpoint("list the step images", ("GET",), "/images/json", check_image_list),
    Endpoint("create a container", ("POST",), "/containers/create", check_create),
    Endpoint("start", ("POST",), CONTAINER + "/start", container_call({})),
    Endpoint(
        "attach",
        ("POST",),
        CONTAINER + "/attach",
        container_call({"logs": BOOL, "stdout": BOOL, "stderr": BOOL, "stream": BOOL}, True),
    ),
    Endpoint(
        "wait",
        ("POST",),
        CONTAINER + "/wait",
        container_call({"condition": re.compile("not-running|next-exit|removed")}),
    ),
    Endpoint(
        "logs",
        ("GET",),
        CONTAINER + "/logs",
        container_call(
            {
                "stdout": BOOL,
                "stderr": BOOL,
                "follow": BOOL,
                "timestamps": BOOL,
                "tail": re.compile("all|[0-9]{1,10}"),
                "since": NUMBER,
                "until": NUMBER,
            }
        ),
    ),
    Endpoint("inspect", ("GET",), CONTAINER + "/json", container_call({"size": BOOL})),
    # DockerOperator.on_kill stops the container before removing it.
    Endpoint("stop", ("POST",), CONTAINER + "/stop", container_call({"t": NUMBER})),
    Endpoint(
        "remove",
        ("DELETE",),
        CONTAINER,
        container_call({"v": BOOL, "force": BOOL, "link": FALSE}),
    ),
    Endpoint("put the secrets", ("PUT",), CONTAINER + "/archive", check_secrets_archive),
)

# Endpoints refused outright, with the reason, first match wins: (methods or () for
# any, path after the version prefix). Anything matching neither table: DEFAULT.
REFUSALS: tuple[tuple[tuple[str, ...], str, str], ...] = (
    ((), r"/containers/[^/]+/exec|/exec/.*", "exec is refused: a container runs its step only"),
    ((), r"/build|/build/.*", "image builds are refused"),
    (
        (),
        r"/images/create",
        "pulling or importing images is refused: build the step images on this engine "
        "(make images)",
    ),
    ((), r"/images/.+/tag", "tagging images is refused"),
    ((), r"/images/.+/push", "pushing images is refused"),
    (("DELETE",), r"/images/.+", "removing images is refused"),
    ((), r"/images(/.*)?", "image calls other than listing the step images are refused"),
    ((), r"/commit", "committing containers to images is refused"),
    ((), r"/volumes(/.*)?", "volume calls are refused"),
    ((), r"/networks(/.*)?", "network calls are refused"),
    ((), r"/(swarm|services|nodes|tasks|secrets|configs)(/.*)?", "swarm calls are refused"),
    (
        (),
        r"/(info|events|system/.*|session|auth|grpc|distribution/.*|plugins(/.*)?)",
        "system, registry and plugin calls are refused",
    ),
    ((), r"/containers/json", "listing containers is refused"),
    ((), r"/containers/prune", "pruning containers is refused"),
    (("GET", "HEAD"), CONTAINER + "/archive", "reading files out of a container is refused"),
    (
        (),
        CONTAINER + "(/[a-z]+)?",
        "this call on a container is refused (on the pipeline's own containers: start, "
        "attach, wait, logs, inspect, stop, remove and putting its secrets)",
    ),
    ((), r"/containers/[^/]+(/.*)?", "containers are named by their full 64-digit id only"),
)
DEFAULT = "not a call the pipeline makes"


def refusal(method: str, path: str) -> str:
    for methods, pattern, reason in REFUSALS:
        if (not methods or method in methods) and re.fullmatch(path_regex(pattern), path):
            return reason
    return DEFAULT


def check(request: Request, policy: Policy, facts: Facts) -> Forward:
    """The request to forward, or Refused with the reason."""
    if not request.target.startswith("/"):
        raise Refused("the request target must be a path", 400)
    for endpoint in ENDPOINTS:
        match = endpoint.pattern.fullmatch(request.path)
        if match and request.method in endpoint.methods:
            return endpoint.check(request, match.groupdict(), policy, facts)
    raise Refused(refusal(request.method, request.path))
