"""The Kubernetes API calls a piece of Python makes, as (resource, verb) the API server
authorises: read from the source (ast), so that the Role is checked against what the
installed provider really calls.

A call `client.<action>_namespaced_<kind>(...)` is one request:
  read -> get, list -> list (watch with `watch=True`; both when `watch=` is not a
  constant), create/patch/delete -> themselves, replace -> update, connect_* -> create
  (exec/attach upgrade a connection the API server authorises as create).
A method handed to a Watch's `.stream(fn, ...)` is a watch (list_*) or a followed log
(read_namespaced_pod_log: still get on pods/log); handed to any other function
(kubernetes.stream.stream) it is called as usual.

Calls through a hook, `self.hook.<name>(...)` / `hook.<name>(...)`, are followed into
that method of the hook class, and from there into the hook's own methods
(`self.<other>(...)`), so a request made in hooks/kubernetes.py is counted too.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterable
from dataclasses import dataclass, field

API_METHOD = re.compile(r"(read|list|create|patch|delete|replace|connect_\w+?)_namespaced_(\w+)")
VERBS = {"read": "get", "list": "list", "create": "create", "patch": "patch"}
VERBS |= {"delete": "delete", "replace": "update"}
# The client's kind names -> the API's resource (and subresource) names.
RESOURCES = {
    "pod": "pods",
    "pod_log": "pods/log",
    "pod_exec": "pods/exec",
    "pod_attach": "pods/attach",
    "pod_status": "pods/status",
    "event": "events",
    "job": "jobs",
    "job_status": "jobs/status",
    "deployment_status": "deployments/status",
    "custom_object": "customobjects",
}
HOOK_NAMES = ("hook", "_hook")


@dataclass(frozen=True)
class Request:
    resource: str
    verb: str
    where: str  # function that makes it, for messages


@dataclass
class Scan:
    requests: set[Request] = field(default_factory=set)
    hook_methods: set[str] = field(default_factory=set)  # names called on a hook

    @property
    def needed(self) -> set[tuple[str, str]]:
        return {(r.resource, r.verb) for r in self.requests}


def _attribute_chain(node: ast.AST) -> list[str]:
    names = []
    while isinstance(node, ast.Attribute):
        names.append(node.attr)
        node = node.value
    if isinstance(node, ast.Name):
        names.append(node.id)
    return names[::-1]


def _requests_of(method: str, call: ast.Call | None, streamed: bool) -> list[tuple[str, str]]:
    match = API_METHOD.fullmatch(method)
    if not match:
        return []
    action, kind = match.groups()
    resource = RESOURCES.get(kind, kind)
    if action.startswith("connect_"):
        return [(resource, "create")]
    if streamed:
        return [(resource, "watch" if action == "list" else VERBS[action])]
    verbs = [VERBS[action]]
    if action == "list" and call is not None:
        watch = next((k.value for k in call.keywords if k.arg == "watch"), None)
        if isinstance(watch, ast.Constant) and watch.value is True:
            verbs = ["watch"]
        elif watch is not None and not isinstance(watch, ast.Constant):
            verbs = ["list", "watch"]
    return [(resource, verb) for verb in verbs]


def scan_function(function: ast.AST, where: str, scan: Scan) -> set[str]:
    """Add the function's requests and hook calls to `scan`; returns the names it calls
    on `self` (for following a hook's own methods)."""
    self_calls: set[str] = set()
    handed_on: set[int] = set()  # API methods passed as arguments, already counted
    for node in ast.walk(function):
        if not isinstance(node, ast.Call):
            continue
        chain = _attribute_chain(node.func)
        streamed = bool(chain) and chain[-1] == "stream" and isinstance(node.func, ast.Attribute)
        for argument in node.args[:1]:
            if isinstance(argument, ast.Attribute) and API_METHOD.fullmatch(argument.attr):
                handed_on.add(id(argument))
                for resource, verb in _requests_of(argument.attr, None, streamed):
                    scan.requests.add(Request(resource, verb, where))
        if len(chain) >= 2:
            for resource, verb in _requests_of(chain[-1], node, False):
                scan.requests.add(Request(resource, verb, where))
            if chain[-2] in HOOK_NAMES:
                scan.hook_methods.add(chain[-1])
            if chain[0] == "self" and len(chain) == 2:
                self_calls.add(chain[-1])
    for node in ast.walk(function):
        if (
            isinstance(node, ast.Attribute)
            and id(node) not in handed_on
            and API_METHOD.fullmatch(node.attr)
            and not _is_called(node, function)
        ):
            # Referenced without a call (a callback, functools.partial): still a request.
            for resource, verb in _requests_of(node.attr, None, False):
                scan.requests.add(Request(resource, verb, where))
    return self_calls


def _is_called(attribute: ast.Attribute, function: ast.AST) -> bool:
    return any(isinstance(n, ast.Call) and n.func is attribute for n in ast.walk(function))


def classes(source: str) -> dict[str, ast.ClassDef]:
    return {n.name: n for n in ast.parse(source).body if isinstance(n, ast.ClassDef)}


def methods(cls: ast.ClassDef) -> dict[str, ast.AST]:
    return {n.name: n for n in cls.body if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef)}


def module_functions(source: str) -> dict[str, ast.AST]:
    tree = ast.parse(source)
    return {n.name: n for n in tree.body if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef)}


def scan_code(parts: Iterable[tuple[str, str, Iterable[str]]], hook: tuple[str, str]) -> Scan:
    """`parts`: (label, source, class names) scanned whole, module functions included;
    `hook`: (source, class name) whose methods are followed from the hook calls found."""
    scan = Scan()
    for label, source, class_names in parts:
        found = classes(source)
        for name in class_names:
            for method_name, function in methods(found[name]).items():
                scan_function(function, f"{label}:{name}.{method_name}", scan)
        for name, function in module_functions(source).items():
            scan_function(function, f"{label}:{name}", scan)
    hook_source, hook_class = hook
    hook_methods = methods(classes(hook_source)[hook_class])
    todo, done = set(scan.hook_methods), set()
    while todo:
        name = todo.pop()
        done.add(name)
        if name in hook_methods:
            calls = scan_function(hook_methods[name], f"hook:{hook_class}.{name}", scan)
            todo |= (calls & set(hook_methods)) - done
    return scan
