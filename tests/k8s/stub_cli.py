"""The command lines the cluster stand-in (cluster_stub.py) accepts: each command of
kind, minikube and kubectl that the scripts use, with the flags the real tool has for it
(from the tools' reference pages: kind 0.33, minikube 1.37, kubectl 1.34). Anything else
is refused the way the tools' flag parser (cobra) refuses it, so a typo or a flag the
real tool lacks fails a test here instead of a user's first run.
"""

from __future__ import annotations

from dataclasses import dataclass, field


class UsageError(Exception):
    """What cobra prints for a bad command line (exit code 1)."""


@dataclass(frozen=True)
class Flags:
    values: frozenset[str] = frozenset()  # flags that take a value
    switches: frozenset[str] = frozenset()  # boolean flags (--x or --x=true|false)
    short: dict[str, str] = field(default_factory=dict)  # -n -> --namespace


def flags(values: str = "", switches: str = "", **short: str) -> Flags:
    return Flags(frozenset(values.split()), frozenset(switches.split()), short)


@dataclass
class CommandLine:
    command: tuple[str, ...]  # e.g. ("create", "cluster")
    options: dict[str, str]  # long name -> value ("true" for a switch)
    positional: list[str]
    after_dash: list[str]  # what follows `--` (kubectl exec)

    def get(self, name: str, default: str | None = None) -> str | None:
        return self.options.get(name, default)

    def switch(self, name: str) -> bool:
        return self.options.get(name, "false") == "true"


KIND_GLOBAL = flags("--verbosity", "--quiet --help", v="--verbosity", q="--quiet", h="--help")
KIND: dict[tuple[str, ...], Flags] = {
    ("version",): flags(),
    ("get", "clusters"): flags(),
    ("get", "nodes"): flags("--name", "--all-clusters", n="--name", A="--all-clusters"),
    ("create", "cluster"): flags(
        "--name --config --image --wait --kubeconfig", "--retain", n="--name"
    ),
    ("delete", "cluster"): flags("--name --kubeconfig", "", n="--name"),
    ("load", "docker-image"): flags("--name --nodes", "", n="--name"),
}

MINIKUBE_GLOBAL = flags(
    "--profile --user --v", "--help --alsologtostderr", p="--profile", h="--help"
)
MINIKUBE: dict[tuple[str, ...], Flags] = {
    ("version",): flags("--output", "--short --components", o="--output"),
    ("status",): flags("--output --format --layout --node", "--watch", o="--output", f="--format"),
    ("start",): flags(
        "--driver --kubernetes-version --memory --cpus --disk-size --container-runtime "
        "--wait --wait-timeout --nodes --image-repository --base-image",
        "--force --keep-context --delete-on-failure --install-addons",
        n="--nodes",
    ),
    ("image", "load"): flags("", "--overwrite --daemon --pull --remote"),
    ("delete",): flags("", "--all --purge"),
    ("profile", "list"): flags("--output", "--light", o="--output", l="--light"),
    ("config", "defaults"): flags("--output", "", o="--output"),
}

KUBECTL_GLOBAL = flags(
    "--context --namespace --kubeconfig --v --request-timeout",
    "--help",
    n="--namespace",
    v="--v",
    h="--help",
)
KUBECTL: dict[tuple[str, ...], Flags] = {
    ("version",): flags("--output", "--client", o="--output"),
    ("get",): flags("--output --selector", "--ignore-not-found", o="--output", l="--selector"),
    ("create",): flags(
        "--kustomize --filename --dry-run --output", "", k="--kustomize", f="--filename"
    ),
    ("create", "namespace"): flags("--dry-run --output", "", o="--output"),
    ("create", "secret", "generic"): flags(
        "--from-file --from-literal --dry-run --output", "", o="--output"
    ),
    ("apply",): flags(
        "--kustomize --filename --dry-run --field-manager",
        "--server-side --force-conflicts --prune",
        k="--kustomize",
        f="--filename",
    ),
    ("delete",): flags(
        "--grace-period --timeout --filename --selector",
        "--ignore-not-found --wait --now",
        f="--filename",
        l="--selector",
    ),
    ("rollout", "status"): flags("--timeout --revision", "--watch", w="--watch"),
    ("port-forward",): flags("--address --pod-running-timeout"),
    ("logs",): flags(
        "--tail --container --since",
        "--follow --all-containers --timestamps --previous",
        c="--container",
        f="--follow",
        p="--previous",
    ),
    ("wait",): flags("--for --timeout --selector", "--all", l="--selector"),
    ("exec",): flags(
        "--container", "--stdin --tty --quiet", c="--container", i="--stdin", t="--tty"
    ),
    ("kustomize",): flags(),
}

TOOLS = {
    "kind": (KIND_GLOBAL, KIND),
    "minikube": (MINIKUBE_GLOBAL, MINIKUBE),
    "kubectl": (KUBECTL_GLOBAL, KUBECTL),
}


def parse(tool: str, argv: list[str]) -> CommandLine:
    """The command line as cobra reads it, or UsageError with cobra's words."""
    global_flags, commands = TOOLS[tool]
    after_dash: list[str] = []
    if "--" in argv:
        cut = argv.index("--")
        argv, after_dash = argv[:cut], argv[cut + 1 :]
    words, raw_options = [], []
    i = 0
    while i < len(argv):
        arg = argv[i]
        if arg.startswith("-") and arg != "-":
            raw_options.append(arg)
            name = _long(arg.split("=", 1)[0], global_flags, commands)
            takes_value = name in global_flags.values or any(
                name in f.values for f in commands.values()
            )
            if takes_value and "=" not in arg:
                if i + 1 >= len(argv):
                    raise UsageError(f"Error: flag needs an argument: {arg}")
                raw_options.append(argv[i + 1])
                i += 1
        else:
            words.append(arg)
        i += 1
    command = next(
        (c for c in sorted(commands, key=len, reverse=True) if tuple(words[: len(c)]) == c), None
    )
    if command is None:
        raise UsageError(f'Error: unknown command "{" ".join(words[:2])}" for "{tool}"')
    allowed = commands[command]
    options: dict[str, str] = {}
    j = 0
    while j < len(raw_options):
        arg = raw_options[j]
        text, has_value, value = arg.partition("=")
        name = _long(text, global_flags, commands)
        known_values = allowed.values | global_flags.values
        known_switches = allowed.switches | global_flags.switches
        if name in known_values:
            if not has_value:
                j += 1
                value = raw_options[j]
            options[name] = value
        elif name in known_switches:
            if has_value and value not in ("true", "false"):
                raise UsageError(f'Error: invalid argument "{value}" for "{name}" flag')
            options[name] = value if has_value else "true"
        else:
            raise UsageError(f"Error: unknown flag: {text}")
        j += 1
    positional = words[len(command) :]
    return CommandLine(command, options, positional, after_dash)


def _long(name: str, global_flags: Flags, commands: dict[tuple[str, ...], Flags]) -> str:
    if name.startswith("--"):
        return name
    for table in (global_flags, *commands.values()):
        if name[1:] in table.short:
            return table.short[name[1:]]
    return name
