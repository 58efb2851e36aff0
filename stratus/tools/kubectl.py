"""kubectl <-> Action: the write parser, renderer, inverse builder and guard STRATUS executes through.

Pure functions, no I/O. ``parse`` accepts only the small subset of kubectl that STRATUS can undo and
raises :class:`GuardError` (with a reason an LLM can act on) for everything else; ``render`` prints the
canonical form, and ``parse(render(a)) == a`` (ignoring ``reason``) for every supported action.

Inline manifest form (``apply`` / ``create``): shell heredocs are not run, so a manifest is passed in the
same string, on the lines after the command line::

    kubectl apply -n test-social-network -f -
    apiVersion: v1
    kind: Service
    metadata: {name: user-service}
    spec: ...

The first line must be exactly ``kubectl apply|create [-n NS] -f -``; everything after the first newline
is one YAML or JSON document (one object; no ``List``, no multi-document streams).

Catalogued ``kubectl exec`` commands (reversible database administration only) are parsed into
``params["db_command"]``; see ``DB_CATALOGUE``. Every other exec is refused.

Action.params per verb (exact shapes):

===============  ===========================================================================
scale            {"replicas": int}
patch            {"type": "json"|"merge"|"strategic", "patch": list (json) | dict}
set_image        {"images": {container: image}}
set_env          {"env": {KEY: VAL}, "remove": [KEY], "container"?: str}
set_resources    {"limits": {res: qty}, "requests": {res: qty}, "container"?: str}
rollout_undo     {} or {"to_revision": int}
rollout_restart  {}
delete           {} plus optional "grace_period": int, "wait": False
label, annotate  {"set": {key: value}, "remove": [key]}          (rendered with --overwrite)
cordon, uncordon {}
taint            {"add": [{"key", "value", "effect"}], "remove": [{"key", "effect"?}]}
apply, create    {"manifest": dict}
exec             {"db_command": {...}, "container"?: str}
===============  ===========================================================================
"""

from __future__ import annotations

import copy
import datetime as _dt
import json
import re
import shlex
from dataclasses import dataclass, field
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from stratus.cluster.actions import Action
from stratus.cluster.kinds import CHAOS_KINDS, KINDS, WORKLOAD_KINDS
from stratus.cluster.mutate import clean_manifest

__all__ = [
    "ALLOW_LIST",
    "DB_CATALOGUE",
    "KINDS",
    "GuardError",
    "GuardVerdict",
    "clean_manifest",
    "guard",
    "inverse",
    "inverse_supported",
    "is_read_only",
    "parse",
    "render",
]


class GuardError(ValueError):
    """A command STRATUS will not run; ``reason`` says why and what to do instead."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


# ================================================================================================
# Data tables
# ================================================================================================

WORKLOADS = WORKLOAD_KINDS
_PATCHABLE = frozenset({"Deployment", "StatefulSet", "DaemonSet", "Service", "ConfigMap", "NetworkPolicy",
                        "ResourceQuota", "HorizontalPodAutoscaler", "Lease", "Node", "PersistentVolume",
                        *CHAOS_KINDS})
_APPLYABLE = frozenset({"Deployment", "StatefulSet", "DaemonSet", "Service", "ConfigMap", "NetworkPolicy",
                        "ResourceQuota", "HorizontalPodAutoscaler", "Lease", "Node", "PersistentVolume",
                        *CHAOS_KINDS})

# verb -> kinds the write parser accepts (the allow-list)
ALLOW_LIST: dict[str, frozenset[str]] = {
    "scale": frozenset({"Deployment", "StatefulSet"}),
    "patch": _PATCHABLE,
    "set_image": WORKLOADS,
    "set_env": WORKLOADS,
    "set_resources": WORKLOADS,
    "rollout_undo": WORKLOADS,
    "rollout_restart": WORKLOADS,
    "delete": frozenset({"Pod", "NetworkPolicy", "ResourceQuota", *CHAOS_KINDS}),
    "label": _PATCHABLE | {"Pod"},
    "annotate": _PATCHABLE | {"Pod"},
    "cordon": frozenset({"Node"}),
    "uncordon": frozenset({"Node"}),
    "taint": frozenset({"Node"}),
    "apply": _APPLYABLE,
    "create": _APPLYABLE - {"Node", "PersistentVolume"},
    "exec": frozenset({"Pod", "Deployment", "StatefulSet"}),
}

_NO_INVERSE = "no safe inverse"
DELETE_REFUSALS: dict[str, str] = {
    "Namespace": "deleting a namespace destroys every object in it (data loss, no safe inverse); "
                 "fix the faulty object instead",
    "PersistentVolumeClaim": "deleting a PVC loses its data (no safe inverse); fix the pod or PV binding instead",
    "PersistentVolume": "deleting a PV loses its data (no safe inverse); patch spec.claimRef instead",
    "Node": "deleting a node removes it from the cluster (no safe inverse); use cordon/uncordon or taint",
    "CustomResourceDefinition": "deleting a CRD deletes every object of that type (no safe inverse)",
    "Deployment": "deleting a Deployment takes the whole workload down (no safe inverse); use rollout "
                  "undo/restart, scale, set or patch instead",
    "StatefulSet": "deleting a StatefulSet takes the whole workload down (no safe inverse); use rollout "
                   "undo/restart, scale or patch instead",
    "DaemonSet": "deleting a DaemonSet takes the workload down (no safe inverse); use rollout undo or patch",
    "ReplicaSet": "deleting a ReplicaSet is not allowed; use rollout undo/restart on its Deployment",
    "Service": "deleting a Service breaks DNS for every caller (no safe inverse); patch the Service instead",
    "Secret": "deleting a Secret loses its contents (no safe inverse); secrets are not modified by STRATUS",
    "ConfigMap": "deleting a ConfigMap breaks every consumer (no safe inverse); patch the ConfigMap instead",
}

VERB_REFUSALS: dict[str, str] = {
    "edit": "`kubectl edit` is interactive; use `kubectl patch` or `kubectl apply -f -` with an inline manifest",
    "port-forward": "`kubectl port-forward` is interactive/long-running and not a fix",
    "proxy": "`kubectl proxy` is interactive/long-running and not a fix",
    "attach": "`kubectl attach` is interactive",
    "debug": "`kubectl debug` is interactive and creates ephemeral containers with no inverse",
    "cp": "`kubectl cp` copies files into/out of pods (interactive, no inverse)",
    "drain": "`kubectl drain` evicts every pod on the node (outage, no safe inverse); use cordon/uncordon",
    "replace": "`kubectl replace` (and `replace --force`, which deletes and recreates) is not supported; "
               "use patch or `kubectl apply -f -` with an inline manifest",
    "run": "`kubectl run` starts arbitrary pods (no known inverse)",
    "expose": "`kubectl expose` creates Services imperatively (no known inverse); use `kubectl create -f -`",
    "autoscale": "`kubectl autoscale` is not supported; patch or apply the HorizontalPodAutoscaler",
    "certificate": "certificate approval is not allowed",
    "config": "kubeconfig changes are not allowed: STRATUS runs against its configured cluster",
    "plugin": "kubectl plugins are not allowed",
    "kustomize": "kustomize is not supported; apply one inline manifest with `kubectl apply -f -`",
    "completion": "shell completion is not a fix",
    "alpha": "alpha commands are not allowed",
    "convert": "`kubectl convert` is not a fix",
    "wait": "`kubectl wait` is not a write; STRATUS waits and measures health itself",
    "auth": "`kubectl auth` changes are not allowed (only `auth can-i` reads, via the read tools)",
    "delete-namespace": DELETE_REFUSALS["Namespace"],
}

READ_ONLY_VERBS = frozenset({"get", "describe", "logs", "top", "explain", "api-resources", "api-versions",
                             "version", "cluster-info", "events", "diff"})
READ_ONLY_SUB = {"rollout": frozenset({"status", "history"}), "auth": frozenset({"can-i", "whoami"})}
READ_ONLY_REASON = "read-only command: use the read tools (this parser only accepts writes)"

_CRED = ("credential/cluster-selection flag {f} is not allowed: STRATUS runs against its configured "
         "cluster and identity")
_INTERACTIVE = "interactive flag {f} is not allowed (no terminal): drop -i/-t/--stdin/--tty"
DANGEROUS_FLAGS: dict[str, str] = {
    **{f: _CRED for f in ("--kubeconfig", "--context", "--cluster", "--user", "--token", "--server", "-s",
                          "--as", "--as-group", "--as-uid", "--username", "--password",
                          "--certificate-authority", "--client-certificate", "--client-key",
                          "--insecure-skip-tls-verify", "--tls-server-name", "--cache-dir")},
    **{f: _INTERACTIVE for f in ("-i", "-t", "--stdin", "--tty")},
    "-A": "-A/--all-namespaces is not allowed on writes: name one object and its namespace with -n",
    "--all-namespaces": "-A/--all-namespaces is not allowed on writes: name one object and its namespace",
    "--all": "--all would act on every object of the kind: name exactly one object",
    "-l": "label-selector writes (-l/--selector) are not allowed: name exactly one object",
    "--selector": "label-selector writes (-l/--selector) are not allowed: name exactly one object",
    "--field-selector": "field-selector writes are not allowed: name exactly one object",
    "--force": "--force is not allowed (skips graceful handling; replace --force deletes and recreates)",
    "--dry-run": "--dry-run is decided by the executor: drop the flag",
    "-f": "reading manifests from files or URLs (-f) is not allowed: use `kubectl apply -f -` followed by "
          "the manifest on the next lines",
    "--filename": "reading manifests from files or URLs is not allowed: use `kubectl apply -f -` followed "
                  "by the manifest on the next lines",
    "-k": "kustomize directories (-k) are not allowed: apply one inline manifest",
    "--kustomize": "kustomize directories are not allowed: apply one inline manifest",
    "-R": "recursive file processing is not allowed",
    "--recursive": "recursive file processing is not allowed",
    "--prune": "--prune deletes objects (no safe inverse)",
    "--patch-file": "patch files are not allowed: pass the patch inline with -p '<json>'",
    "--raw": "raw API access is not allowed",
    "--cascade": "--cascade is not supported",
    "--subresource": "--subresource is not supported: patch the object itself",
    "--from": "--from (env from secrets/configmaps) is not supported: set KEY=VALUE explicitly",
    "--from-file": "--from-file is not allowed",
    "--from-literal": "imperative create is not supported: use `kubectl create -f -` with an inline manifest",
    "--keys": "--keys is not supported: set KEY=VALUE explicitly",
    "--prefix": "--prefix is not supported: set KEY=VALUE explicitly",
    "--list": "`set env --list` is read-only: use the read tools",
    "--resolve": "--resolve is not supported",
    "--local": "--local is not supported",
    "--privileged": "privileged containers are not allowed",
    "-o": "output flags (-o/--output) are not needed on writes: drop the flag",
    "--output": "output flags (-o/--output) are not needed on writes: drop the flag",
    "-w": "watch flags are not allowed (unbounded)",
    "--watch": "watch flags are not allowed (unbounded)",
}

# Reversible database administration commands STRATUS may run through `kubectl exec`.
DB_CATALOGUE: dict[str, Any] = {
    "mongodb": {
        "clients": ["mongo", "mongosh"],
        "methods": {"grantRolesToUser": "grant_role", "revokeRolesFromUser": "revoke_role",
                    "createUser": "create_user", "dropUser": "drop_user"},
        "roles": ["read", "readWrite", "dbAdmin", "dbOwner", "userAdmin", "readAnyDatabase",
                  "readWriteAnyDatabase", "userAdminAnyDatabase", "dbAdminAnyDatabase", "clusterMonitor"],
        "options": ["-u/--username U", "-p/--password P", "--authenticationDatabase DB", "--quiet", "--eval JS",
                    "one positional database name"],
    },
    "valkey": {
        "clients": ["valkey-cli", "redis-cli"],
        "commands": ["CONFIG SET requirepass <password>"],
        "options": ["-a/--pass PASSWORD", "--no-auth-warning"],
    },
}
DB_INVERSE_OP = {"grant_role": "revoke_role", "revoke_role": "grant_role", "create_user": "drop_user",
                 "drop_user": "create_user", "set_requirepass": "set_requirepass"}

# policy limits used by ``guard`` (semantic checks on parsed actions)
POLICY: dict[str, Any] = {
    "max_replicas": 50,
    "forbidden_truthy_fields": ["privileged", "hostPID", "hostIPC", "hostNetwork", "allowPrivilegeEscalation"],
    "forbidden_fields": ["hostPath"],
    "reserved_node_label_suffixes": ["kubernetes.io", "k8s.io"],
}

_EXEC_REFUSAL = ("kubectl exec is only allowed for catalogued reversible database admin commands: "
                 "mongo/mongosh --eval with exactly one of db.getSiblingDB('<db>').grantRolesToUser(...), "
                 "revokeRolesFromUser(...), createUser({user,pwd,roles}), dropUser('<user>'); or "
                 "valkey-cli/redis-cli CONFIG SET requirepass <password>")

# ================================================================================================
# Lexical helpers
# ================================================================================================

_DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_QUALIFIED = re.compile(r"^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$")
_LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")
_ENV_KEY = re.compile(r"^[-._a-zA-Z][-._a-zA-Z0-9]*$")
_IMAGE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._/:@+-]*$")
_QUANTITY = re.compile(r"^\+?([0-9]+(\.[0-9]*)?|\.[0-9]+)(m|k|Ki|M|Mi|G|Gi|T|Ti|P|Pi|E|Ei|[eE][-+]?[0-9]+)?$")
_RESOURCE_NAME = re.compile(r"^(cpu|memory|ephemeral-storage|hugepages-[0-9A-Za-z]+|[a-z0-9.-]+/[a-z0-9.-]+)$")
_DB_USER = re.compile(r"^[A-Za-z0-9_.@-]{1,64}$")
_DB_NAME = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
_TAINT_EFFECTS = ("NoSchedule", "PreferNoSchedule", "NoExecute")
_JSON_PATCH_OPS = ("add", "remove", "replace", "test", "move", "copy")
_MAX_MANIFEST_CHARS = 200_000
_MAX_NODES = 50_000


def _check_shell(line: str) -> None:
    """Refuse shell syntax: pipes, compound commands, redirection, substitution, expansion."""
    for ch in line:
        if (ord(ch) < 32 and ch != "\t") or ord(ch) == 127:
            raise GuardError("control characters are not allowed in a command")
    if line.lstrip().startswith("```"):
        raise GuardError("remove the Markdown code fence: give the bare kubectl command")
    q: str | None = None
    i, n = 0, len(line)
    while i < n:
        c = line[i]
        nxt = line[i + 1] if i + 1 < n else ""
        if q == "'":
            if c == "'":
                q = None
        else:
            if c == "\\":
                i += 2
                continue
            if c == "`" or (c == "$" and nxt == "("):
                raise GuardError("command substitution ($(...) or backticks) is not allowed: write values "
                                 "literally")
            if c == "$" and nxt and (nxt in "{'_$?!#*@-" or nxt.isalnum()):
                raise GuardError("shell variable expansion ($VAR) is not available: write the value literally")
            if q == '"':
                if c == '"':
                    q = None
            elif c in "'\"":
                q = c
            elif c == "|":
                if nxt == "|":
                    raise GuardError("compound commands (||) are not allowed: one kubectl command per call")
                raise GuardError("pipes (|) are not allowed: one kubectl command per call")
            elif c == "&":
                if nxt == "&":
                    raise GuardError("compound commands (&&) are not allowed: one kubectl command per call")
                raise GuardError("background jobs (&) are not allowed: one kubectl command per call")
            elif c == ";":
                raise GuardError("compound commands (;) are not allowed: one kubectl command per call")
            elif c == "<":
                if nxt == "<":
                    raise GuardError("heredocs (<<) are shell syntax and are not run: write `kubectl apply -f -`"
                                     " on the first line and the manifest on the following lines")
                raise GuardError("input redirection (<) is not allowed")
            elif c == ">":
                raise GuardError("output redirection (> or >>) is not allowed")
            elif c in "()":
                raise GuardError("subshells and grouping ( ) are not allowed")
        i += 1


def _split_command(command: str) -> tuple[list[str], str | None]:
    if not isinstance(command, str):
        raise GuardError("command must be a string")
    text = command.replace("\r\n", "\n").replace("\r", "\n").strip()
    if not text:
        raise GuardError("empty command")
    head, body = text, None
    while True:
        idx = head.find("\n")
        if idx < 0:
            break
        if idx > 0 and head[idx - 1] == "\\":  # line continuation on the command line
            head = head[:idx - 1] + " " + head[idx + 1:].lstrip(" \t")
            continue
        head, body = head[:idx], head[idx + 1:]
        break
    _check_shell(head)
    try:
        tokens = shlex.split(head)
    except ValueError as exc:
        raise GuardError(f"cannot tokenize the command ({exc}): check the quoting") from exc
    if not tokens:
        raise GuardError("empty command")
    if tokens[0] != "kubectl":
        raise GuardError(f"commands must start with `kubectl` (got {tokens[0]!r}): aliases, sudo, env-var "
                         "prefixes and other programs are not run")
    return tokens, body


def _flag_reason(tok: str) -> str:
    if tok.startswith("--"):
        key = tok.split("=", 1)[0]
    else:
        key = tok[:2]
        if len(tok) > 2 and set(tok[1:]) <= set("it"):
            return _INTERACTIVE.format(f=tok)
    if key in DANGEROUS_FLAGS:
        return DANGEROUS_FLAGS[key].format(f=key)
    return f"unsupported flag {key}"


@dataclass
class _Scan:
    pos: list[str] = field(default_factory=list)
    opts: dict[str, list[str]] = field(default_factory=dict)
    after: list[str] | None = None


_NS_FLAGS = {"-n": ("namespace", True), "--namespace": ("namespace", True)}


def _scan(args: list[str], spec: dict[str, tuple[str | None, bool]], *, dashdash: bool = False) -> _Scan:
    """Split args into positionals and flags. spec: flag -> (canonical name or None to ignore, takes_value)."""
    spec = {**_NS_FLAGS, **spec}
    out = _Scan()
    i = 0
    while i < len(args):
        a = args[i]
        if a == "--":
            if not dashdash:
                raise GuardError("unexpected `--`")
            out.after = args[i + 1:]
            return out
        if not a.startswith("-") or a == "-":
            out.pos.append(a)
            i += 1
            continue
        val: str | None = None
        if a.startswith("--"):
            key, eq, v = a.partition("=")
            if eq:
                val = v
        else:
            key, rest = a[:2], a[2:]
            if rest:
                if key not in spec or not spec[key][1]:
                    raise GuardError(_flag_reason(a))
                val = rest.removeprefix("=")
        if key not in spec:
            raise GuardError(_flag_reason(a))
        canon, takes_value = spec[key]
        if takes_value:
            if val is None:
                if i + 1 >= len(args):
                    raise GuardError(f"flag {key} needs a value")
                val = args[i + 1]
                i += 1
        else:
            if val is None:
                val = "true"
            elif val.lower() not in ("true", "false"):
                raise GuardError(f"flag {key} takes true or false, got {val!r}")
            val = val.lower()
        if canon is not None:
            out.opts.setdefault(canon, []).append(val)
        i += 1
    if dashdash:
        raise GuardError("put `--` between the kubectl flags and the command to run in the container")
    return out


def _one(s: _Scan, name: str, flag: str, required: bool = False) -> str | None:
    vals = s.opts.get(name, [])
    if not vals:
        if required:
            raise GuardError(f"missing {flag}")
        return None
    if len(set(vals)) > 1:
        raise GuardError(f"conflicting values for {flag}: {', '.join(vals)}")
    return vals[0]


def _kind_or_none(token: str) -> str | None:
    t = token.lower()
    if t in _ALIASES:
        return _ALIASES[t]
    if "." in t:
        base, _, group = t.partition(".")
        group = re.sub(r"^v[0-9]+((alpha|beta)[0-9]+)?\.", "", group)
        kind = _ALIASES.get(base)
        if kind is not None and KINDS[kind]["group"] == group:
            return kind
    return None


def _kind(token: str) -> str:
    if "," in token:
        raise GuardError("one resource type per command (no comma lists): name exactly one object")
    kind = _kind_or_none(token)
    if kind is None:
        raise GuardError(f"unknown resource type {token!r}")
    return kind


_ALIASES: dict[str, str] = {}
for _k, _spec in KINDS.items():
    for _a in [*_spec["aliases"], _k.lower()]:
        _ALIASES[_a] = _k


def _check_name(name: str, kind: str) -> str:
    if not name:
        raise GuardError(f"empty {kind} name")
    if "=" in name or name.startswith("-"):
        raise GuardError(f"expected a {kind} name, got {name!r}: name the object before any KEY=VALUE")
    if len(name) > 253 or not _DNS_SUBDOMAIN.match(name):
        raise GuardError(f"invalid {kind} name {name!r} (lower-case DNS name expected)")
    return name


def _target(pos: list[str], verb: str, default_kind: str | None = None) -> tuple[str, str, list[str]]:
    if not pos:
        raise GuardError(f"name the object: kubectl {verb} <type>/<name>")
    first = pos[0]
    if "/" in first:
        typ, _, name = first.partition("/")
        kind, rest = _kind(typ), pos[1:]
    elif default_kind is not None:
        kind, name, rest = default_kind, first, pos[1:]
    else:
        kind = _kind(first)
        if len(pos) < 2:
            raise GuardError(f"name exactly one {kind}: kubectl {verb} {first} <name> (acting on every "
                             f"{kind} is not allowed)")
        name, rest = pos[1], pos[2:]
    return kind, _check_name(name, kind), rest


def _no_extra(rest: list[str]) -> None:
    if rest:
        raise GuardError(f"one object per command: unexpected argument {rest[0]!r}")


def _check_kind(verb: str, kind: str) -> None:
    if kind in ALLOW_LIST[verb]:
        return
    if verb == "delete" and kind in DELETE_REFUSALS:
        raise GuardError(DELETE_REFUSALS[kind])
    shown = verb.replace("_", " ").replace("rollout ", "rollout ")
    allowed = ", ".join(sorted(ALLOW_LIST[verb]))
    raise GuardError(f"kubectl {shown} on {kind} is not allowed ({_NO_INVERSE} or not a fix); allowed kinds: "
                     f"{allowed}")


def _namespace(kind: str, values: list[str]) -> str | None:
    if any(not v for v in values):
        raise GuardError("empty namespace: use -n <namespace>")
    uniq = list(dict.fromkeys(values))
    if len(uniq) > 1:
        raise GuardError(f"conflicting namespaces: {', '.join(uniq)}")
    if not KINDS[kind]["namespaced"]:
        return None
    if not uniq:
        return None
    ns = uniq[0]
    if len(ns) > 63 or not _DNS_LABEL.match(ns):
        raise GuardError(f"invalid namespace {ns!r}")
    return ns


def _plain(value: Any, counter: list[int] | None = None) -> Any:
    """JSON-plain copy of YAML/JSON data: dates become ISO strings; keys must be strings; bounded size."""
    counter = counter if counter is not None else [0]
    counter[0] += 1
    if counter[0] > _MAX_NODES:
        raise GuardError("document too large (or uses YAML alias expansion)")
    if isinstance(value, dict):
        out = {}
        for k, v in value.items():
            if not isinstance(k, str):
                raise GuardError(f"non-string key {k!r} in document")
            out[k] = _plain(v, counter)
        return out
    if isinstance(value, list):
        return [_plain(v, counter) for v in value]
    if isinstance(value, (_dt.date, _dt.datetime)):
        return value.isoformat()
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    raise GuardError(f"unsupported value type {type(value).__name__} in document")


def _load_doc(text: str, what: str) -> Any:
    if len(text) > _MAX_MANIFEST_CHARS:
        raise GuardError(f"{what} too large")
    try:
        return _plain(json.loads(text))
    except ValueError:
        pass
    try:
        docs = [d for d in yaml.safe_load_all(text) if d is not None]
    except yaml.YAMLError as exc:
        raise GuardError(f"{what} is neither valid JSON nor valid YAML: {str(exc).splitlines()[0]}") from exc
    if len(docs) != 1:
        raise GuardError(f"{what} must be exactly one document (got {len(docs)})")
    return _plain(docs[0])


# ================================================================================================
# Parser
# ================================================================================================

def parse(command: str) -> Action:
    """Parse one kubectl write command into an Action, or raise GuardError with an actionable reason."""
    tokens, body = _split_command(command)
    ns_vals: list[str] = []
    i = 1
    while i < len(tokens) and tokens[i].startswith("-"):
        t = tokens[i]
        if t in ("-n", "--namespace"):
            if i + 1 >= len(tokens):
                raise GuardError(f"flag {t} needs a value")
            ns_vals.append(tokens[i + 1])
            i += 2
            continue
        if t.startswith("--namespace="):
            ns_vals.append(t.split("=", 1)[1])
        elif t.startswith("-n") and len(t) > 2:
            ns_vals.append(t[3:] if t[2] == "=" else t[2:])
        else:
            raise GuardError(_flag_reason(t))
        i += 1
    if i >= len(tokens):
        raise GuardError("missing kubectl subcommand")
    verb, args = tokens[i], [*(f"--namespace={v}" for v in ns_vals), *tokens[i + 1:]]
    if body is not None and verb not in ("apply", "create"):
        raise GuardError("multi-line input: give exactly one kubectl command per call (only `kubectl apply|create"
                         " -f -` may be followed by an inline manifest)")
    if verb in READ_ONLY_VERBS:
        raise GuardError(READ_ONLY_REASON)
    handler = _HANDLERS.get(verb)
    if handler is not None:
        return handler(verb, args, body)
    if verb in VERB_REFUSALS:
        raise GuardError(VERB_REFUSALS[verb])
    raise GuardError(f"unknown or unsupported kubectl command {verb!r}; supported writes: scale, patch, set "
                     "image|env|resources, rollout undo|restart, delete, label, annotate, cordon, uncordon, "
                     "taint, apply -f -, create -f -, exec (catalogued db admin only)")


def _pop_sub(args: list[str], verb: str) -> tuple[str, list[str]]:
    """The subcommand of `set`/`rollout`, skipping namespace flags placed before it."""
    i = 0
    while i < len(args):
        a = args[i]
        if a in ("-n", "--namespace"):
            i += 2
            continue
        if a.startswith("--namespace=") or (a.startswith("-n") and len(a) > 2):
            i += 1
            continue
        if a.startswith("-"):
            raise GuardError(_flag_reason(a))
        return a, args[:i] + args[i + 1:]
    raise GuardError(f"missing subcommand for kubectl {verb}")


def _int(value: str, flag: str) -> int:
    if not re.fullmatch(r"[0-9]{1,9}", value.strip()):
        raise GuardError(f"{flag} must be a non-negative integer, got {value!r}")
    return int(value)


def _action(verb: str, kind: str, name: str, ns: list[str], params: dict[str, Any]) -> Action:
    return Action(verb=verb, kind=kind, name=name, namespace=_namespace(kind, ns), params=params)


def _p_scale(verb: str, args: list[str], body: str | None) -> Action:
    s = _scan(args, {"--replicas": ("replicas", True), "--record": (None, False)})
    kind, name, rest = _target(s.pos, "scale")
    _no_extra(rest)
    _check_kind("scale", kind)
    replicas = _int(_one(s, "replicas", "--replicas=N", required=True), "--replicas")
    return _action("scale", kind, name, s.opts.get("namespace", []), {"replicas": replicas})


def _validate_json_patch(ops: Any) -> None:
    if not isinstance(ops, list) or not ops:
        raise GuardError("a --type=json patch must be a non-empty JSON list of operations, e.g. "
                         "'[{\"op\":\"replace\",\"path\":\"/spec/replicas\",\"value\":1}]'")
    for op in ops:
        if not isinstance(op, dict):
            raise GuardError("each json patch operation must be an object with op and path")
        kind = op.get("op")
        if kind not in _JSON_PATCH_OPS:
            raise GuardError(f"json patch op must be one of {', '.join(_JSON_PATCH_OPS)}, got {kind!r}")
        path = op.get("path")
        if not isinstance(path, str) or not path.startswith("/"):
            raise GuardError("json patch path must be a string starting with '/'")
        allowed = {"op", "path"}
        if kind in ("add", "replace", "test"):
            if "value" not in op:
                raise GuardError(f"json patch op {kind!r} needs a value")
            allowed.add("value")
        if kind in ("move", "copy"):
            if not isinstance(op.get("from"), str) or not op["from"].startswith("/"):
                raise GuardError(f"json patch op {kind!r} needs a 'from' path")
            allowed.add("from")
        extra = set(op) - allowed
        if extra:
            raise GuardError(f"unexpected keys in json patch op: {', '.join(sorted(extra))}")


def _p_patch(verb: str, args: list[str], body: str | None) -> Action:
    s = _scan(args, {"--type": ("type", True), "-p": ("patch", True), "--patch": ("patch", True),
                     "--record": (None, False)})
    kind, name, rest = _target(s.pos, "patch")
    _no_extra(rest)
    _check_kind("patch", kind)
    ptype = _one(s, "type", "--type") or "strategic"
    if ptype not in ("json", "merge", "strategic"):
        raise GuardError(f"--type must be json, merge or strategic, got {ptype!r}")
    raw = _one(s, "patch", "-p '<patch>'", required=True)
    doc = _load_doc(raw, "patch")
    if ptype == "json":
        _validate_json_patch(doc)
    elif not isinstance(doc, dict) or not doc:
        raise GuardError(f"a --type={ptype} patch must be a non-empty JSON object")
    if ptype == "strategic" and KINDS[kind]["group"] not in ("", "apps", "networking.k8s.io", "autoscaling",
                                                             "coordination.k8s.io", "batch"):
        raise GuardError(f"strategic merge patch is not supported for custom resources ({kind}): use "
                         "--type=merge or --type=json")
    return _action("patch", kind, name, s.opts.get("namespace", []), {"type": ptype, "patch": doc})


def _assignments(rest: list[str], what: str) -> tuple[dict[str, str], list[str]]:
    sets: dict[str, str] = {}
    removes: list[str] = []
    for tok in rest:
        if "=" in tok:
            k, _, v = tok.partition("=")
            if k in sets and sets[k] != v:
                raise GuardError(f"{what} {k!r} given twice")
            sets[k] = v
        elif tok.endswith("-") and len(tok) > 1:
            removes.append(tok[:-1])
        else:
            raise GuardError(f"unexpected argument {tok!r}: expected KEY=VALUE or KEY- (one object per command)")
    overlap = set(sets) & set(removes)
    if overlap:
        raise GuardError(f"{what} {min(overlap)!r} both set and removed")
    return sets, removes


def _container(s: _Scan) -> str | None:
    c = _one(s, "container", "-c/--containers")
    if c is None:
        return None
    if c != "*" and not _DNS_LABEL.match(c):
        raise GuardError(f"invalid container name {c!r} (one container per command)")
    return c


def _p_set(verb: str, args: list[str], body: str | None) -> Action:
    sub, args = _pop_sub(args, "set")
    if sub == "image":
        s = _scan(args, {"--record": (None, False)})
        kind, name, rest = _target(s.pos, "set image")
        _check_kind("set_image", kind)
        images, removes = _assignments(rest, "container")
        if removes or not images:
            raise GuardError("usage: kubectl set image deployment/<name> <container>=<image> [...]")
        for c, img in images.items():
            if c != "*" and not _DNS_LABEL.match(c):
                raise GuardError(f"invalid container name {c!r}")
            if not _IMAGE.match(img) or len(img) > 512:
                raise GuardError(f"invalid image reference {img!r}")
        return _action("set_image", kind, name, s.opts.get("namespace", []), {"images": images})
    if sub == "env":
        s = _scan(args, {"-c": ("container", True), "--containers": ("container", True), "-e": ("env", True),
                         "--env": ("env", True), "--overwrite": (None, False)})
        kind, name, rest = _target(s.pos, "set env")
        _check_kind("set_env", kind)
        env, removes = _assignments([*rest, *s.opts.get("env", [])], "env var")
        if not env and not removes:
            raise GuardError("usage: kubectl set env deployment/<name> KEY=VALUE [KEY2-]")
        for k in [*env, *removes]:
            if not _ENV_KEY.match(k):
                raise GuardError(f"invalid environment variable name {k!r}")
        params: dict[str, Any] = {"env": env, "remove": removes}
        container = _container(s)
        if container is not None:
            params["container"] = container
        return _action("set_env", kind, name, s.opts.get("namespace", []), params)
    if sub == "resources":
        s = _scan(args, {"-c": ("container", True), "--containers": ("container", True),
                         "--limits": ("limits", True), "--requests": ("requests", True)})
        kind, name, rest = _target(s.pos, "set resources")
        _no_extra(rest)
        _check_kind("set_resources", kind)
        params = {"limits": _resources(_one(s, "limits", "--limits")),
                  "requests": _resources(_one(s, "requests", "--requests"))}
        if not params["limits"] and not params["requests"]:
            raise GuardError("usage: kubectl set resources deployment/<name> [-c <container>] "
                             "--limits=cpu=500m,memory=512Mi [--requests=...]")
        container = _container(s)
        if container is not None:
            params["container"] = container
        return _action("set_resources", kind, name, s.opts.get("namespace", []), params)
    raise GuardError(f"`kubectl set {sub}` is not supported; supported: set image, set env, set resources")


def _resources(spec: str | None) -> dict[str, str]:
    out: dict[str, str] = {}
    if spec is None:
        return out
    for part in spec.split(","):
        k, eq, v = part.partition("=")
        k, v = k.strip(), v.strip()
        if not eq or not _RESOURCE_NAME.match(k) or not _QUANTITY.match(v):
            raise GuardError(f"invalid resource spec {part!r}: expected e.g. cpu=500m,memory=512Mi")
        out[k] = v
    return out


def _p_rollout(verb: str, args: list[str], body: str | None) -> Action:
    sub, args = _pop_sub(args, "rollout")
    if sub in READ_ONLY_SUB["rollout"]:
        raise GuardError(READ_ONLY_REASON)
    if sub == "undo":
        s = _scan(args, {"--to-revision": ("to_revision", True)})
        kind, name, rest = _target(s.pos, "rollout undo")
        _no_extra(rest)
        _check_kind("rollout_undo", kind)
        rev = _one(s, "to_revision", "--to-revision")
        params = {} if rev is None else {"to_revision": _int(rev, "--to-revision")}
        return _action("rollout_undo", kind, name, s.opts.get("namespace", []), params)
    if sub == "restart":
        s = _scan(args, {})
        kind, name, rest = _target(s.pos, "rollout restart")
        _no_extra(rest)
        _check_kind("rollout_restart", kind)
        return _action("rollout_restart", kind, name, s.opts.get("namespace", []), {})
    raise GuardError(f"`kubectl rollout {sub}` is not supported; supported: rollout undo, rollout restart")


def _p_delete(verb: str, args: list[str], body: str | None) -> Action:
    s = _scan(args, {"--grace-period": ("grace_period", True), "--wait": ("wait", False),
                     "--ignore-not-found": (None, False)})
    if len(s.pos) == 1 and "/" not in s.pos[0]:
        kind = _kind(s.pos[0])
        if kind in DELETE_REFUSALS:
            raise GuardError(DELETE_REFUSALS[kind])
    kind, name, rest = _target(s.pos, "delete")
    if kind in DELETE_REFUSALS:
        raise GuardError(DELETE_REFUSALS[kind])
    _no_extra(rest)
    _check_kind("delete", kind)
    params: dict[str, Any] = {}
    gp = _one(s, "grace_period", "--grace-period")
    if gp is not None:
        params["grace_period"] = _int(gp, "--grace-period")
    if _one(s, "wait", "--wait") == "false":
        params["wait"] = False
    return _action("delete", kind, name, s.opts.get("namespace", []), params)


def _label_key(k: str) -> None:
    prefix, slash, name = k.rpartition("/")
    if (slash and (not prefix or len(prefix) > 253 or not _DNS_SUBDOMAIN.match(prefix))) \
            or len(name) > 63 or not _QUALIFIED.match(name):
        raise GuardError(f"invalid key {k!r}")


def _p_label(verb: str, args: list[str], body: str | None) -> Action:
    s = _scan(args, {"--overwrite": (None, False)})
    kind, name, rest = _target(s.pos, verb)
    _check_kind(verb, kind)
    sets, removes = _assignments(rest, verb)
    if not sets and not removes:
        raise GuardError(f"usage: kubectl {verb} <type>/<name> key=value [key2-]")
    for k in [*sets, *removes]:
        _label_key(k)
    if verb == "label":
        for k, v in sets.items():
            if len(v) > 63 or not _LABEL_VALUE.match(v):
                raise GuardError(f"invalid label value {v!r} for {k!r}")
    return _action(verb, kind, name, s.opts.get("namespace", []), {"set": sets, "remove": removes})


def _p_cordon(verb: str, args: list[str], body: str | None) -> Action:
    s = _scan(args, {})
    kind, name, rest = _target(s.pos, verb, default_kind="Node")
    _no_extra(rest)
    _check_kind(verb, kind)
    return _action(verb, kind, name, s.opts.get("namespace", []), {})


def _p_taint(verb: str, args: list[str], body: str | None) -> Action:
    s = _scan(args, {"--overwrite": (None, False)})
    kind, name, rest = _target(s.pos, "taint")
    _check_kind("taint", kind)
    add: list[dict[str, str]] = []
    remove: list[dict[str, str]] = []
    for tok in rest:
        removing = tok.endswith("-")
        spec = tok[:-1] if removing else tok
        kv, colon, effect = spec.partition(":")
        key, eq, value = kv.partition("=")
        if "=" in tok and not eq and not removing:
            raise GuardError(f"invalid taint {tok!r}")
        if not key:
            raise GuardError(f"invalid taint {tok!r}: expected key=value:Effect or key:Effect-")
        _label_key(key)
        if colon and effect not in _TAINT_EFFECTS:
            raise GuardError(f"invalid taint effect {effect!r}: one of {', '.join(_TAINT_EFFECTS)}")
        if removing:
            item = {"key": key}
            if colon:
                item["effect"] = effect
            remove.append(item)
        else:
            if not colon:
                raise GuardError(f"taint {tok!r} needs an effect: key=value:NoSchedule")
            if value and (len(value) > 63 or not _LABEL_VALUE.match(value)):
                raise GuardError(f"invalid taint value {value!r}")
            if any(t["key"] == key and t["effect"] == effect for t in add):
                raise GuardError(f"taint {key}:{effect} given twice")
            add.append({"key": key, "value": value, "effect": effect})
    if not add and not remove:
        raise GuardError("usage: kubectl taint nodes <node> key=value:Effect | key:Effect-")
    return _action("taint", kind, name, [], {"add": add, "remove": remove})


def _first_positional(args: list[str]) -> str | None:
    i = 0
    while i < len(args):
        a = args[i]
        if a in ("-n", "--namespace", "-f", "--filename"):
            i += 2
            continue
        if not a.startswith("-") or a == "-":
            return a
        i += 1
    return None


def _p_apply(verb: str, args: list[str], body: str | None) -> Action:
    what = _first_positional(args)
    if verb == "create" and what is not None and what != "-":
        if _kind_or_none(what) == "Secret" or what.startswith("secret"):
            raise GuardError("`kubectl create secret` is not allowed: secrets are not modified by STRATUS "
                             "(no known inverse)")
        raise GuardError(f"imperative `kubectl create {what}` is not supported (no known inverse): use "
                         "`kubectl create -f -` followed by the manifest on the next lines")
    s = _scan(args, {"-f": ("filename", True), "--filename": ("filename", True)})
    if s.pos:
        raise GuardError(f"unexpected argument {s.pos[0]!r}: use `kubectl {verb} -f -` + inline manifest")
    fname = _one(s, "filename", "-f")
    if fname is None:
        raise GuardError(f"use `kubectl {verb} -f -` followed by the manifest on the next lines")
    if fname != "-":
        raise GuardError(DANGEROUS_FLAGS["-f"])
    if body is None or not body.strip():
        raise GuardError(f"manifest missing: put the YAML/JSON manifest on the lines after `kubectl {verb} -f -`")
    manifest = _load_doc(body, "manifest")
    if not isinstance(manifest, dict):
        raise GuardError("the manifest must be a single YAML/JSON object")
    kind = manifest.get("kind")
    if kind == "List" or "items" in manifest:
        raise GuardError("one object per manifest (no List): apply objects one at a time")
    if not isinstance(kind, str) or kind not in KINDS:
        raise GuardError(f"manifest kind {kind!r} is unknown or missing")
    api = manifest.get("apiVersion")
    if not isinstance(api, str) or not api:
        raise GuardError("manifest needs apiVersion")
    group = api.rpartition("/")[0] if "/" in api else ""
    if group != KINDS[kind]["group"]:
        raise GuardError(f"apiVersion {api!r} does not match kind {kind}")
    _check_kind(verb, kind)
    meta = manifest.get("metadata")
    if not isinstance(meta, dict) or not isinstance(meta.get("name"), str):
        raise GuardError("manifest needs metadata.name (generateName is not supported)")
    name = _check_name(meta["name"], kind)
    ns_vals = list(s.opts.get("namespace", []))
    mns = meta.get("namespace")
    if mns is not None and KINDS[kind]["namespaced"]:
        if not isinstance(mns, str):
            raise GuardError("metadata.namespace must be a string")
        if ns_vals and mns not in ns_vals:
            raise GuardError(f"the manifest namespace {mns!r} conflicts with -n {ns_vals[0]}")
        ns_vals.append(mns)
    return _action(verb, kind, name, ns_vals, {"manifest": manifest})


# --- exec ----------------------------------------------------------------------------------------

class _JS:
    """A tiny parser for the JavaScript literals used in catalogued mongo shell calls."""

    def __init__(self, text: str):
        self.s, self.i = text, 0

    def ws(self) -> None:
        while self.i < len(self.s) and self.s[self.i].isspace():
            self.i += 1

    def peek(self) -> str:
        self.ws()
        return self.s[self.i] if self.i < len(self.s) else ""

    def expect(self, ch: str) -> None:
        if self.peek() != ch:
            raise GuardError(f"unexpected JavaScript near {self.s[self.i:self.i + 20]!r}: expected {ch!r}. "
                             + _EXEC_REFUSAL)
        self.i += 1

    def ident(self) -> str:
        self.ws()
        m = re.compile(r"[A-Za-z_$][A-Za-z0-9_$]*").match(self.s, self.i)
        if not m:
            raise GuardError(f"unexpected JavaScript near {self.s[self.i:self.i + 20]!r}. " + _EXEC_REFUSAL)
        self.i = m.end()
        return m.group(0)

    def string(self) -> str:
        q = self.peek()
        if q not in ("'", '"'):
            raise GuardError(f"expected a quoted string near {self.s[self.i:self.i + 20]!r}")
        self.i += 1
        out = []
        while self.i < len(self.s):
            c = self.s[self.i]
            if c == "\\" and self.i + 1 < len(self.s):
                out.append(self.s[self.i + 1])
                self.i += 2
                continue
            if c == q:
                self.i += 1
                return "".join(out)
            out.append(c)
            self.i += 1
        raise GuardError("unterminated string in --eval")

    def value(self) -> Any:
        c = self.peek()
        if c in ("'", '"'):
            return self.string()
        if c == "[":
            self.i += 1
            items = []
            while self.peek() != "]":
                items.append(self.value())
                if self.peek() == ",":
                    self.i += 1
                elif self.peek() != "]":
                    self.expect("]")
            self.i += 1
            return items
        if c == "{":
            self.i += 1
            obj: dict[str, Any] = {}
            while self.peek() != "}":
                key = self.string() if self.peek() in ("'", '"') else self.ident()
                self.expect(":")
                obj[key] = self.value()
                if self.peek() == ",":
                    self.i += 1
                elif self.peek() != "}":
                    self.expect("}")
            self.i += 1
            return obj
        m = re.compile(r"-?[0-9]+(\.[0-9]+)?").match(self.s, self.i)
        if m:
            self.i = m.end()
            return json.loads(m.group(0))
        word = self.ident()
        if word in ("true", "false"):
            return word == "true"
        raise GuardError(f"unsupported JavaScript value {word!r} in --eval. " + _EXEC_REFUSAL)

    def call_args(self) -> list[Any]:
        self.expect("(")
        args = []
        while self.peek() != ")":
            args.append(self.value())
            if self.peek() == ",":
                self.i += 1
            elif self.peek() != ")":
                self.expect(")")
        self.i += 1
        return args


def _roles(raw: Any, user_db: str) -> list[dict[str, str]]:
    if not isinstance(raw, list) or not raw:
        raise GuardError("roles must be a non-empty list like [{role:'readWrite',db:'geo-db'}]")
    allowed = DB_CATALOGUE["mongodb"]["roles"]
    out = []
    for r in raw:
        if isinstance(r, str):
            r = {"role": r, "db": user_db}
        if not isinstance(r, dict) or set(r) != {"role", "db"} or not all(isinstance(v, str) for v in r.values()):
            raise GuardError("each role must be {role:'<role>',db:'<db>'} or a role name")
        if r["role"] not in allowed:
            raise GuardError(f"role {r['role']!r} is not in the catalogue of grantable roles: {', '.join(allowed)}")
        if not _DB_NAME.match(r["db"]):
            raise GuardError(f"invalid database name {r['db']!r}")
        out.append({"role": r["role"], "db": r["db"]})
    return out


def _mongo_eval(js: str, default_db: str) -> dict[str, Any]:
    p = _JS(js.strip())
    if p.ident() != "db":
        raise GuardError(_EXEC_REFUSAL)
    p.expect(".")
    method = p.ident()
    user_db = default_db
    if method == "getSiblingDB":
        args = p.call_args()
        if len(args) != 1 or not isinstance(args[0], str) or not _DB_NAME.match(args[0]):
            raise GuardError("getSiblingDB takes one database name")
        user_db = args[0]
        p.expect(".")
        method = p.ident()
    methods = DB_CATALOGUE["mongodb"]["methods"]
    if method not in methods:
        raise GuardError(f"mongo method {method!r} is not catalogued. " + _EXEC_REFUSAL)
    op = methods[method]
    args = p.call_args()
    if p.peek() == ";":
        p.i += 1
    if p.peek():
        raise GuardError("exactly one catalogued mongo call per exec (nothing after it). " + _EXEC_REFUSAL)
    cmd: dict[str, Any] = {"engine": "mongodb", "client": "mongo", "op": op}
    if op in ("grant_role", "revoke_role"):
        if len(args) != 2 or not isinstance(args[0], str):
            raise GuardError(f"usage: db.getSiblingDB('admin').{method}('<user>',[{{role:'readWrite',db:'<db>'}}])")
        cmd.update(user=args[0], user_db=user_db, roles=_roles(args[1], user_db))
    elif op == "drop_user":
        if len(args) != 1 or not isinstance(args[0], str):
            raise GuardError("usage: db.getSiblingDB('admin').dropUser('<user>')")
        cmd.update(user=args[0], user_db=user_db)
    else:
        if len(args) != 1 or not isinstance(args[0], dict) or set(args[0]) != {"user", "pwd", "roles"}:
            raise GuardError("usage: db.getSiblingDB('admin').createUser({user:'<u>',pwd:'<p>',roles:[...]}) "
                             "(exactly the keys user, pwd, roles)")
        spec = args[0]
        if not isinstance(spec["pwd"], str) or not spec["pwd"]:
            raise GuardError("createUser needs a non-empty pwd string")
        if not isinstance(spec["user"], str):
            raise GuardError("createUser needs a user string")
        cmd.update(user=spec["user"], user_db=user_db, pwd=spec["pwd"], roles=_roles(spec["roles"], user_db))
    if not _DB_USER.match(cmd["user"]):
        raise GuardError(f"invalid database user name {cmd['user']!r}")
    return cmd


def _db_command(argv: list[str]) -> dict[str, Any]:
    if not argv:
        raise GuardError(_EXEC_REFUSAL)
    if argv[0] in ("sh", "bash", "/bin/sh", "/bin/bash") and len(argv) == 3 and argv[1] == "-c":
        inner = argv[2].strip()
        if "\n" in inner:
            raise GuardError("one command only inside sh -c")
        _check_shell(inner)
        try:
            argv = shlex.split(inner)
        except ValueError as exc:
            raise GuardError(f"cannot tokenize the sh -c command ({exc})") from exc
        if not argv:
            raise GuardError(_EXEC_REFUSAL)
    client, rest = argv[0], argv[1:]
    if client in DB_CATALOGUE["mongodb"]["clients"]:
        opts: dict[str, str] = {}
        positional: list[str] = []
        names = {"-u": "user", "--username": "user", "-p": "pwd", "--password": "pwd",
                 "--authenticationDatabase": "auth_db", "--eval": "eval"}
        i = 0
        while i < len(rest):
            a = rest[i]
            key, eq, val = a.partition("=") if a.startswith("--") else (a, "", "")
            if key in ("--quiet", "--norc"):
                i += 1
                continue
            if key in names:
                if not eq:
                    if i + 1 >= len(rest) or (rest[i + 1].startswith("-") and key != "--eval"):
                        raise GuardError(f"{key} needs a value (password prompts are interactive)")
                    val = rest[i + 1]
                    i += 1
                if names[key] in opts:
                    raise GuardError(f"{key} given twice")
                opts[names[key]] = val
            elif a.startswith("-"):
                raise GuardError(f"unsupported mongo option {key}: supported "
                                 + ", ".join(DB_CATALOGUE["mongodb"]["options"]))
            else:
                positional.append(a)
            i += 1
        if len(positional) > 1 or (positional and not _DB_NAME.match(positional[0])):
            raise GuardError("at most one positional argument (a database name) for the mongo shell")
        if "eval" not in opts:
            raise GuardError("the mongo shell needs --eval '<one catalogued call>' (interactive shells are not run)")
        conn_db = positional[0] if positional else "test"
        cmd = _mongo_eval(opts["eval"], conn_db)
        cmd["client"] = client
        if "user" in opts or "pwd" in opts:
            if "user" not in opts or "pwd" not in opts:
                raise GuardError("pass both -u <user> and -p <password> (password prompts are interactive)")
            auth_db = opts.get("auth_db", conn_db)
            if not _DB_NAME.match(auth_db):
                raise GuardError(f"invalid authentication database {auth_db!r}")
            cmd["auth"] = {"user": opts["user"], "pwd": opts["pwd"], "db": auth_db}
        elif "auth_db" in opts:
            raise GuardError("--authenticationDatabase needs -u and -p")
        return cmd
    if client in DB_CATALOGUE["valkey"]["clients"]:
        auth: str | None = None
        i = 0
        while i < len(rest) and rest[i].startswith("-"):
            a = rest[i]
            if a in ("-a", "--pass"):
                if i + 1 >= len(rest):
                    raise GuardError(f"{a} needs a password")
                auth = rest[i + 1]
                i += 2
            elif a == "--no-auth-warning":
                i += 1
            else:
                raise GuardError(f"unsupported {client} option {a}: supported -a <password>, --no-auth-warning")
        words = rest[i:]
        if len(words) != 4 or [w.lower() for w in words[:3]] != ["config", "set", "requirepass"]:
            raise GuardError(f"only `{client} CONFIG SET requirepass <password>` is catalogued. " + _EXEC_REFUSAL)
        cmd = {"engine": "valkey", "client": client, "op": "set_requirepass", "pwd": words[3]}
        if auth is not None:
            cmd["auth"] = auth
        return cmd
    raise GuardError(_EXEC_REFUSAL)


def _p_exec(verb: str, args: list[str], body: str | None) -> Action:
    if "--" not in args:
        for a in args:
            if (len(a) > 1 and a.startswith("-") and set(a[1:]) <= set("it")) or a in ("--stdin", "--tty"):
                raise GuardError(_INTERACTIVE.format(f=a))
        raise GuardError("put `--` between the kubectl flags and the command to run in the container. "
                         + _EXEC_REFUSAL)
    s = _scan(args, {"-c": ("container", True), "--container": ("container", True)}, dashdash=True)
    if len(s.pos) != 1:
        raise GuardError("usage: kubectl exec <pod>|deployment/<name> [-n ns] [-c container] -- <command>")
    kind, name, _rest = _target(s.pos, "exec", default_kind="Pod")
    _check_kind("exec", kind)
    params: dict[str, Any] = {"db_command": _db_command(s.after or [])}
    container = _one(s, "container", "-c")
    if container is not None:
        if not _DNS_LABEL.match(container):
            raise GuardError(f"invalid container name {container!r}")
        params["container"] = container
    return _action("exec", kind, name, s.opts.get("namespace", []), params)


def _p_auth(verb: str, args: list[str], body: str | None) -> Action:
    sub = _first_positional(args)
    if sub in READ_ONLY_SUB["auth"]:
        raise GuardError(READ_ONLY_REASON)
    raise GuardError(VERB_REFUSALS["auth"])


_HANDLERS = {
    "scale": _p_scale, "patch": _p_patch, "set": _p_set, "rollout": _p_rollout, "delete": _p_delete,
    "label": _p_label, "annotate": _p_label, "cordon": _p_cordon, "uncordon": _p_cordon, "taint": _p_taint,
    "apply": _p_apply, "create": _p_apply, "exec": _p_exec, "auth": _p_auth,
}


# ================================================================================================
# Renderer
# ================================================================================================

def _q(s: str) -> str:
    return shlex.quote(str(s))


def _dq(s: str) -> str:
    """Double-quote when that is safe and more readable (JS with single quotes inside)."""
    if re.fullmatch(r'[^"$`\\!\n]*', s) and "'" in s:
        return f'"{s}"'
    return shlex.quote(s)


def _ref(a: Action) -> str:
    return f"{a.kind.lower()}/{a.name}"


def _nsflag(a: Action) -> list[str]:
    return ["-n", a.namespace] if a.namespace else []


def _js_str(s: str) -> str:
    return "'" + s.replace("\\", "\\\\").replace("'", "\\'") + "'"


def _js_roles(roles: list[dict[str, str]]) -> str:
    return "[" + ",".join(f"{{role:{_js_str(r['role'])},db:{_js_str(r['db'])}}}" for r in roles) + "]"


def _render_db(cmd: dict[str, Any]) -> list[str]:
    op = cmd["op"]
    if cmd.get("engine") == "valkey" or op == "set_requirepass":
        out = [cmd.get("client", "valkey-cli")]
        if cmd.get("auth") is not None:
            out += ["-a", _q(cmd["auth"]), "--no-auth-warning"]
        return out + ["CONFIG", "SET", "requirepass", _q(cmd["pwd"])]
    db = f"db.getSiblingDB({_js_str(cmd['user_db'])})"
    user = _js_str(cmd["user"])
    if op == "grant_role":
        js = f"{db}.grantRolesToUser({user},{_js_roles(cmd['roles'])})"
    elif op == "revoke_role":
        js = f"{db}.revokeRolesFromUser({user},{_js_roles(cmd['roles'])})"
    elif op == "create_user":
        js = f"{db}.createUser({{user:{user},pwd:{_js_str(cmd['pwd'])},roles:{_js_roles(cmd['roles'])}}})"
    elif op == "drop_user":
        js = f"{db}.dropUser({user})"
    else:
        raise GuardError(f"unknown db_command op {op!r}")
    out = [cmd.get("client", "mongo")]
    if cmd.get("auth"):
        a = cmd["auth"]
        out += ["-u", _q(a["user"]), "-p", _q(a["pwd"]), "--authenticationDatabase", _q(a["db"])]
    return out + ["--eval", _dq(js)]


def _yaml(manifest: dict[str, Any]) -> str:
    return yaml.safe_dump(manifest, sort_keys=False, default_flow_style=False, allow_unicode=True).rstrip("\n")


def render(action: Action) -> str:
    """The canonical kubectl command for an action (single line, except apply/create with a manifest)."""
    a = action if isinstance(action, Action) else Action.model_validate(action)
    p = a.params
    try:
        parts: list[str]
        if a.verb == "scale":
            parts = ["scale", _ref(a), *_nsflag(a), f"--replicas={int(p['replicas'])}"]
        elif a.verb == "patch":
            doc = json.dumps(p["patch"], separators=(",", ":"))
            parts = ["patch", _ref(a), *_nsflag(a), f"--type={p.get('type', 'strategic')}", "-p", _q(doc)]
        elif a.verb == "set_image":
            parts = ["set", "image", _ref(a), *_nsflag(a), *(_q(f"{c}={i}") for c, i in p["images"].items())]
        elif a.verb == "set_env":
            parts = ["set", "env", _ref(a), *_nsflag(a)]
            if p.get("container"):
                parts += ["-c", _q(p["container"])]
            parts += [_q(f"{k}={v}") for k, v in p.get("env", {}).items()]
            parts += [_q(f"{k}-") for k in p.get("remove", [])]
        elif a.verb == "set_resources":
            parts = ["set", "resources", _ref(a), *_nsflag(a)]
            if p.get("container"):
                parts += ["-c", _q(p["container"])]
            for key in ("limits", "requests"):
                if p.get(key):
                    parts.append(_q(f"--{key}=" + ",".join(f"{k}={v}" for k, v in p[key].items())))
        elif a.verb == "rollout_undo":
            parts = ["rollout", "undo", _ref(a), *_nsflag(a)]
            if p.get("to_revision") is not None:
                parts.append(f"--to-revision={int(p['to_revision'])}")
        elif a.verb == "rollout_restart":
            parts = ["rollout", "restart", _ref(a), *_nsflag(a)]
        elif a.verb == "delete":
            parts = ["delete", _ref(a), *_nsflag(a)]
            if p.get("grace_period") is not None:
                parts.append(f"--grace-period={int(p['grace_period'])}")
            if p.get("wait") is False:
                parts.append("--wait=false")
        elif a.verb in ("label", "annotate"):
            parts = [a.verb, _ref(a), *_nsflag(a)]
            parts += [_q(f"{k}={v}") for k, v in p.get("set", {}).items()]
            parts += [_q(f"{k}-") for k in p.get("remove", [])]
            parts.append("--overwrite")
        elif a.verb in ("cordon", "uncordon"):
            parts = [a.verb, _q(a.name)]
        elif a.verb == "taint":
            parts = ["taint", "nodes", _q(a.name)]
            for t in p.get("add", []):
                kv = f"{t['key']}={t['value']}" if t.get("value") else t["key"]
                parts.append(_q(f"{kv}:{t['effect']}"))
            for t in p.get("remove", []):
                parts.append(_q(f"{t['key']}:{t['effect']}-" if t.get("effect") else f"{t['key']}-"))
            if p.get("add"):
                parts.append("--overwrite")
        elif a.verb in ("apply", "create"):
            head = " ".join(["kubectl", a.verb, *_nsflag(a), "-f", "-"])
            return head + "\n" + _yaml(p["manifest"])
        elif a.verb == "exec":
            target = _q(a.name) if a.kind == "Pod" else _ref(a)
            parts = ["exec", target, *_nsflag(a)]
            if p.get("container"):
                parts += ["-c", _q(p["container"])]
            parts += ["--", *_render_db(p["db_command"])]
        else:  # pragma: no cover - Verb is a closed Literal
            raise GuardError(f"cannot render verb {a.verb!r}")
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        if isinstance(exc, GuardError):
            raise
        raise GuardError(f"cannot render {a.verb} action: missing or malformed params ({exc!r})") from exc
    return " ".join(["kubectl", *parts])


# ================================================================================================
# Inverse
# ================================================================================================

def _restore(a: Action, before: dict[str, Any], why: str) -> Action:
    return Action(verb="apply", kind=a.kind, name=a.name, namespace=a.namespace,
                  params={"manifest": clean_manifest(before)},
                  reason=f"undo {why}: restore {a.kind}/{a.name} snapshot")


def _previous(a: Action) -> Any:
    if a.params.get("previous") is not None:
        return a.params["previous"]
    return a.params.get("db_command", {}).get("previous")


def _is_controlled(pod: dict[str, Any]) -> bool:
    refs = (pod.get("metadata") or {}).get("ownerReferences") or []
    return any(r.get("controller") for r in refs if isinstance(r, dict))


def _exec_inverse(a: Action) -> list[Action] | None:
    cmd = dict(a.params["db_command"])
    cmd.pop("previous", None)
    op = cmd["op"]
    prev = _previous(a)
    inv = copy.deepcopy(cmd)
    if op == "grant_role":
        roles = cmd["roles"]
        if isinstance(prev, list):  # roles the user held before: revoking those would be a change
            roles = [r for r in roles if r not in prev]
            if not roles:
                return []
        inv.update(op="revoke_role", roles=roles)
    elif op == "revoke_role":
        roles = cmd["roles"]
        if isinstance(prev, list):
            roles = [r for r in roles if r in prev]
            if not roles:
                return []
        inv.update(op="grant_role", roles=roles)
    elif op == "create_user":
        inv = {k: v for k, v in cmd.items() if k not in ("pwd", "roles")}
        inv["op"] = "drop_user"
    elif op == "drop_user":
        if not isinstance(prev, dict) or not prev.get("pwd") or not prev.get("roles"):
            return None
        inv.update(op="create_user", pwd=prev["pwd"], roles=prev["roles"])
    elif op == "set_requirepass":
        if prev is None or not isinstance(prev, str):
            return None
        inv = {k: v for k, v in cmd.items() if k != "auth"}
        inv["pwd"] = prev
        if cmd["pwd"]:
            inv["auth"] = cmd["pwd"]
    else:
        return None
    params = {k: v for k, v in a.params.items() if k not in ("db_command", "previous")}
    params["db_command"] = inv
    return [Action(verb="exec", kind=a.kind, name=a.name, namespace=a.namespace, params=params,
                   reason=f"undo {op}")]


def _taint_inverse(a: Action, before: dict[str, Any] | None) -> list[Action] | None:
    if before is None:
        return None
    old = [t for t in ((before.get("spec") or {}).get("taints") or []) if isinstance(t, dict)]
    add: list[dict[str, str]] = []
    remove: list[dict[str, str]] = []
    for t in a.params.get("add", []):
        same = [o for o in old if o.get("key") == t["key"] and o.get("effect") == t["effect"]]
        if same:
            if (same[0].get("value") or "") != (t.get("value") or ""):
                add.append({"key": t["key"], "value": same[0].get("value") or "", "effect": t["effect"]})
        else:
            remove.append({"key": t["key"], "effect": t["effect"]})
    for t in a.params.get("remove", []):
        for o in old:
            if o.get("key") == t["key"] and (not t.get("effect") or o.get("effect") == t["effect"]):
                item = {"key": o["key"], "value": o.get("value") or "", "effect": o.get("effect", "")}
                if item not in add:
                    add.append(item)
    if not add and not remove:
        return []
    return [Action(verb="taint", kind="Node", name=a.name, params={"add": add, "remove": remove},
                   reason="undo taint")]


def inverse(action: Action, before: dict[str, Any] | None) -> list[Action] | None:
    """Actions that undo ``action``, given the target's manifest before it (None: absent / unknown).

    Returns None when there is no known inverse (then the action must not run). Inverse actions are
    executed directly by the transaction machinery; some (e.g. deleting an object a transaction created)
    are deliberately outside the write parser's allow-list.
    """
    a = action if isinstance(action, Action) else Action.model_validate(action)
    v = a.verb
    if v in ("scale", "patch", "set_image", "set_env", "set_resources", "label", "annotate", "rollout_undo",
             "rollout_restart"):
        return None if before is None else [_restore(a, before, v)]
    if v == "delete":
        if a.kind == "Pod":
            if before is not None and not _is_controlled(before):
                return [_restore(a, before, "delete of a bare pod")]
            return []
        if a.kind in ALLOW_LIST["delete"]:
            return None if before is None else [_restore(a, before, "delete")]
        return None
    if v in ("create", "apply"):
        if before is None:
            return [Action(verb="delete", kind=a.kind, name=a.name, namespace=a.namespace,
                           reason=f"undo {v}: delete the created {a.kind}")]
        return [_restore(a, before, v)]
    if v in ("cordon", "uncordon"):
        if before is not None:
            was = bool((before.get("spec") or {}).get("unschedulable"))
            if was == (v == "cordon"):
                return []
        other = "uncordon" if v == "cordon" else "cordon"
        return [Action(verb=other, kind="Node", name=a.name, reason=f"undo {v}")]
    if v == "taint":
        return _taint_inverse(a, before)
    if v == "exec":
        return _exec_inverse(a)
    return None


def inverse_supported(action: Action) -> tuple[bool, str]:
    """Whether the verb/kind (and db op) pair has a catalogued inverse, with a note on what it needs."""
    a = action
    if a.verb not in ALLOW_LIST or a.kind not in ALLOW_LIST[a.verb]:
        return False, f"no known inverse for {a.verb} on {a.kind}"
    if a.verb == "exec":
        op = a.params.get("db_command", {}).get("op")
        prev = _previous(a)
        if op in ("grant_role", "revoke_role"):
            return True, f"undo: {DB_INVERSE_OP[op]} the same roles"
        if op == "create_user":
            return True, "undo: dropUser"
        if op == "drop_user":
            if isinstance(prev, dict) and prev.get("pwd") and prev.get("roles"):
                return True, "undo: createUser with the previous pwd and roles"
            return False, ("dropUser has no known inverse: the previous password cannot be read back "
                           "(pass params.previous={pwd, roles} if known)")
        if op == "set_requirepass":
            if prev is None:
                return True, ("undo: CONFIG SET requirepass <previous>; the executor must record the current "
                              "password (CONFIG GET requirepass) in params.previous before running")
            return True, "undo: CONFIG SET requirepass <previous>"
        return False, f"no known inverse for db op {op!r}"
    if a.verb == "delete" and a.kind == "Pod":
        return True, "undo: none needed when a controller recreates the pod; bare pods are re-applied"
    if a.verb in ("create", "apply"):
        return True, "undo: delete if it did not exist, else restore the snapshot"
    if a.verb in ("cordon", "uncordon"):
        return True, f"undo: {'uncordon' if a.verb == 'cordon' else 'cordon'}"
    if a.verb == "taint":
        return True, "undo: restore the node's previous taints"
    return True, "undo: restore the snapshot"


# ================================================================================================
# Guard
# ================================================================================================

class GuardVerdict(BaseModel):
    allowed: bool
    reason: str
    action: dict[str, Any] | None = None
    kubectl: str | None = None
    inverse_known: bool = False


def _strip_prev(a: Action) -> dict[str, Any]:
    d = a.model_dump(exclude={"reason"})
    d["params"].pop("previous", None)
    if isinstance(d["params"].get("db_command"), dict):
        d["params"]["db_command"].pop("previous", None)
    return d


def _walk_fields(value: Any, parent: str = "") -> str | None:
    """The name of a forbidden pod-security field set in value, if any."""
    if isinstance(value, dict):
        for k, v in value.items():
            hit = _field_hit(k, v, parent) or _walk_fields(v, k)
            if hit:
                return hit
    elif isinstance(value, list):
        for v in value:
            hit = _walk_fields(v, parent)
            if hit:
                return hit
    return None


def _field_hit(key: str, value: Any, parent: str) -> str | None:
    if key in POLICY["forbidden_truthy_fields"] and value:
        return key
    if key in POLICY["forbidden_fields"] and value is not None:
        return key
    if key == "add" and parent == "capabilities" and value:
        return "capabilities.add"
    return None


def _policy(a: Action) -> str | None:
    p = a.params
    if a.verb == "scale" and p["replicas"] > POLICY["max_replicas"]:
        return f"--replicas={p['replicas']} exceeds the limit of {POLICY['max_replicas']}"
    docs: list[tuple[str, Any]] = []
    if a.verb == "patch":
        if p["type"] == "json":
            for op in p["patch"]:
                if op["op"] in ("add", "replace"):
                    segs = op["path"].split("/")
                    docs.append((segs[-2] if len(segs) > 2 else "", {segs[-1]: op["value"]}))
        else:
            docs.append(("", p["patch"]))
    elif a.verb in ("apply", "create"):
        docs.append(("", p["manifest"]))
    for parent, doc in docs:
        hit = _walk_fields(doc, parent)
        if hit:
            return f"setting {hit} is not allowed (privilege escalation); fix the workload without it"
    if a.verb in ("set_resources",):
        for key in ("limits", "requests"):
            for res, qty in p[key].items():
                if re.fullmatch(r"\+?0*(\.0*)?[a-zA-Z]*", qty):
                    return f"zero {key} for {res} are not allowed (QoS/eviction risk)"
    if a.kind == "Node" and a.verb == "label":
        for k in [*p["set"], *p["remove"]]:
            prefix = k.rpartition("/")[0]
            if any(prefix == s or prefix.endswith("." + s) for s in POLICY["reserved_node_label_suffixes"]):
                return f"node label {k!r} is reserved (changing it corrupts node identity/scheduling)"
    return None


def guard(command_or_action: str | Action | dict[str, Any], *, allowed_namespaces: set[str] | None = None,
          allow_cluster_scoped: bool = True) -> GuardVerdict:
    """Decide whether STRATUS may run a command or action. Use ``verdict.action`` (normalised) to execute.

    Checks: it parses (Actions are rendered and re-parsed), the verb/kind pair is on the allow-list, the
    namespace is in scope (when ``allowed_namespaces`` is given; cluster-scoped kinds such as Node need
    ``allow_cluster_scoped``), policy limits hold, and the pair has a known inverse.
    """
    try:
        if isinstance(command_or_action, str):
            action = parse(command_or_action)
        else:
            given = (command_or_action if isinstance(command_or_action, Action)
                     else Action.model_validate(command_or_action))
            action = parse(render(given))
            params = copy.deepcopy(action.params)
            prev = _previous(given)
            if prev is not None:
                params["previous"] = prev
            action = action.model_copy(update={"reason": given.reason, "params": params})
        kubectl = render(action)
    except GuardError as exc:
        return GuardVerdict(allowed=False, reason=exc.reason)
    except ValidationError as exc:
        return GuardVerdict(allowed=False, reason=f"invalid action: {exc.errors()[0].get('msg', exc)}")
    dumped = action.model_dump()

    def refuse(reason: str, inverse_known: bool = False) -> GuardVerdict:
        return GuardVerdict(allowed=False, reason=reason, action=dumped, kubectl=kubectl,
                            inverse_known=inverse_known)

    inv_ok, inv_note = inverse_supported(action)
    if allowed_namespaces is not None:
        if KINDS[action.kind]["namespaced"]:
            if action.namespace is None:
                return refuse(f"namespace missing: add -n <namespace> (allowed: {', '.join(sorted(allowed_namespaces))})",
                              inv_ok)
            if action.namespace not in allowed_namespaces:
                return refuse(f"namespace {action.namespace!r} is out of scope (allowed: "
                              f"{', '.join(sorted(allowed_namespaces))})", inv_ok)
        elif not allow_cluster_scoped:
            return refuse(f"cluster-scoped {action.kind} changes are out of scope", inv_ok)
    problem = _policy(action)
    if problem:
        return refuse(problem, inv_ok)
    if not inv_ok:
        return refuse(inv_note)
    where = f" in {action.namespace}" if action.namespace else ""
    return GuardVerdict(allowed=True, reason=f"allowed: {action.verb} {action.kind}/{action.name}{where}; {inv_note}",
                        action=dumped, kubectl=kubectl, inverse_known=True)


# ================================================================================================
# Read-only classification
# ================================================================================================

_VALUE_FLAGS = frozenset({"-n", "--namespace", "-o", "--output", "-l", "--selector", "-c", "--container",
                          "--tail", "--since", "--since-time", "--field-selector", "--sort-by", "-L",
                          "--label-columns", "--template", "--limit-bytes"})
_UNBOUNDED = frozenset({"-w", "--watch", "--watch-only", "-f", "--follow", "--raw", "--output-directory"})


def is_read_only(command: str) -> bool:
    """True iff ``command`` is one bounded kubectl read (get/describe/logs/top/...) that changes nothing.

    Shell syntax, credential/context flags, watches/follows, and reading Secrets all make it False.
    """
    try:
        if not isinstance(command, str) or "\n" in command.strip():
            return False
        tokens, _ = _split_command(command)
    except GuardError:
        return False
    verb: str | None = None
    idx = 1
    while idx < len(tokens):
        t = tokens[idx]
        key = t.split("=", 1)[0]
        if key in _UNBOUNDED or DANGEROUS_FLAGS.get(key, "").startswith("credential"):
            return False
        if verb is None:
            if t in ("-n", "--namespace"):
                idx += 2
                continue
            if not t.startswith("-"):
                verb = t
                rest = tokens[idx + 1:]
        idx += 1
    if verb is None:
        return False
    positional = []
    skip = False
    for t in rest:
        if skip:
            skip = False
        elif t in _VALUE_FLAGS:
            skip = True
        elif not t.startswith("-"):
            positional.append(t)
    if verb in READ_ONLY_VERBS:
        if verb == "cluster-info" and "dump" in positional:
            return False
        if verb == "diff":
            return False  # needs -f (a file); not a bounded read here
        for t in positional:
            for part in t.split("/")[0].split(","):
                if _kind_or_none(part) == "Secret":
                    return False
        return True
    if verb in READ_ONLY_SUB:
        return bool(positional) and positional[0] in READ_ONLY_SUB[verb]
    return False
