"""``kubectl set image|env|resources <workload>``: three entries, each undone by restoring the snapshot.

Params: set_image ``{"images": {container: image}}``; set_env ``{"env": {KEY: VAL}, "remove": [KEY],
"container"?: str}``; set_resources ``{"limits": {res: qty}, "requests": {res: qty}, "container"?: str}``.
"""

from __future__ import annotations

import re
from typing import Any

from stratus.cluster.actions import Action
from stratus.cluster.kinds import POD_TEMPLATE_KINDS
from stratus.tools.kubectl.args import (
    DNS_LABEL,
    assignments,
    check_kind,
    container_flag,
    make_action,
    no_extra,
    target,
)
from stratus.tools.kubectl.lex import GuardError, one, scan
from stratus.tools.kubectl.registry import FieldPath, VerbSpec, kubectl, nsflag, q, ref, register, restore_inverse

_ENV_KEY = re.compile(r"^[-._a-zA-Z][-._a-zA-Z0-9]*$")
_IMAGE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._/:@+-]*$")
_QUANTITY = re.compile(r"^\+?([0-9]+(\.[0-9]*)?|\.[0-9]+)(m|k|Ki|M|Mi|G|Gi|T|Ti|P|Pi|E|Ei|[eE][-+]?[0-9]+)?$")
_RESOURCE_NAME = re.compile(r"^(cpu|memory|ephemeral-storage|hugepages-[0-9A-Za-z]+|[a-z0-9.-]+/[a-z0-9.-]+)$")


def parse_image(verb: str, args: list[str], body: str | None) -> Action:
    s = scan(args, {"--record": (None, False)})
    kind, name, rest = target(s.pos, "set image")
    check_kind("set_image", kind)
    images, removes = assignments(rest, "container")
    if removes or not images:
        raise GuardError("usage: kubectl set image deployment/<name> <container>=<image> [...]")
    for c, img in images.items():
        if c != "*" and not DNS_LABEL.match(c):
            raise GuardError(f"invalid container name {c!r}")
        if not _IMAGE.match(img) or len(img) > 512:
            raise GuardError(f"invalid image reference {img!r}")
    return make_action("set_image", kind, name, s.opts.get("namespace", []), {"images": images})


def render_image(a: Action) -> str:
    return kubectl("set", "image", ref(a), *nsflag(a), *(q(f"{c}={i}") for c, i in a.params["images"].items()))


def parse_env(verb: str, args: list[str], body: str | None) -> Action:
    s = scan(args, {"-c": ("container", True), "--containers": ("container", True), "-e": ("env", True),
                    "--env": ("env", True), "--overwrite": (None, False)})
    kind, name, rest = target(s.pos, "set env")
    check_kind("set_env", kind)
    env, removes = assignments([*rest, *s.opts.get("env", [])], "env var")
    if not env and not removes:
        raise GuardError("usage: kubectl set env deployment/<name> KEY=VALUE [KEY2-]")
    for k in [*env, *removes]:
        if not _ENV_KEY.match(k):
            raise GuardError(f"invalid environment variable name {k!r}")
    params: dict[str, Any] = {"env": env, "remove": removes}
    container = container_flag(s)
    if container is not None:
        params["container"] = container
    return make_action("set_env", kind, name, s.opts.get("namespace", []), params)


def render_env(a: Action) -> str:
    p = a.params
    parts = ["set", "env", ref(a), *nsflag(a)]
    if p.get("container"):
        parts += ["-c", q(p["container"])]
    parts += [q(f"{k}={v}") for k, v in p.get("env", {}).items()]
    parts += [q(f"{k}-") for k in p.get("remove", [])]
    return kubectl(*parts)


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


def parse_resources(verb: str, args: list[str], body: str | None) -> Action:
    s = scan(args, {"-c": ("container", True), "--containers": ("container", True),
                    "--limits": ("limits", True), "--requests": ("requests", True)})
    kind, name, rest = target(s.pos, "set resources")
    no_extra(rest)
    check_kind("set_resources", kind)
    params: dict[str, Any] = {"limits": _resources(one(s, "limits", "--limits")),
                              "requests": _resources(one(s, "requests", "--requests"))}
    if not params["limits"] and not params["requests"]:
        raise GuardError("usage: kubectl set resources deployment/<name> [-c <container>] "
                         "--limits=cpu=500m,memory=512Mi [--requests=...]")
    container = container_flag(s)
    if container is not None:
        params["container"] = container
    return make_action("set_resources", kind, name, s.opts.get("namespace", []), params)


def render_resources(a: Action) -> str:
    p = a.params
    parts = ["set", "resources", ref(a), *nsflag(a)]
    if p.get("container"):
        parts += ["-c", q(p["container"])]
    for key in ("limits", "requests"):
        if p.get(key):
            parts.append(q(f"--{key}=" + ",".join(f"{k}={v}" for k, v in p[key].items())))
    return kubectl(*parts)


def policy_resources(a: Action) -> str | None:
    """Refuse zero limits or requests (QoS/eviction risk)."""
    for key in ("limits", "requests"):
        for res, qty in a.params[key].items():
            if re.fullmatch(r"\+?0*(\.0*)?[a-zA-Z]*", qty):
                return f"zero {key} for {res} are not allowed (QoS/eviction risk)"
    return None


def writes(a: Action) -> list[FieldPath]:
    """All three write only the containers (of the pod template, for workloads)."""
    spec: FieldPath = ("spec", "template", "spec") if a.kind in POD_TEMPLATE_KINDS else ("spec",)
    return [(*spec, "containers")]


# registration order is the order `kubectl set <unknown>` lists the supported subcommands in
register(
    VerbSpec("set_image", ("set", "image"), parse=parse_image, render=render_image, inverse=restore_inverse,
             writes=writes),
    VerbSpec("set_env", ("set", "env"), parse=parse_env, render=render_env, inverse=restore_inverse,
             writes=writes),
    VerbSpec("set_resources", ("set", "resources"), parse=parse_resources, render=render_resources,
             inverse=restore_inverse, writes=writes, policy=policy_resources, risky=True),
)
