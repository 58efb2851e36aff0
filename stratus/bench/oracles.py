"""Mitigation oracles: the cause is gone, the app serves its workload, nothing else was damaged.

The only code besides the twin that reads ground truth (the fault records). One small check per fault
type, registered with ``@oracle`` together with what that fault's right fix may change on its target;
``grade`` adds the shared serving and collateral-damage checks. Collateral damage is any difference from
the pre-injection ``baseline`` (workloads, Services, NetworkPolicies, nodes' labels, taints and
schedulability, database users and roles, ConfigMaps and Secrets) that the right fix does not need.
A grader that cannot look (an object it needs is gone) grades the run a failure and says why.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

from stratus.cluster.mutate import RESTARTED_AT, STRATUS_CHANGE
from stratus.context import Context
from stratus.tools.health import measure
from stratus.twin.cluster import TwinCluster
from stratus.twin.runtime import parse_quantity
from stratus.twin.world import World

Check = Callable[[World, dict[str, Any]], tuple[bool, str]]
Path = tuple[str, ...]
Touch = tuple[str, str, str]  # (snapshot section, object name, dotted path), placeholders from the record
ORACLES: dict[str, Check] = {}
TOUCHES: dict[str, tuple[Touch, ...]] = {}
MIN_AVAILABILITY = 0.95
HOSTNAME = "kubernetes.io/hostname"
# Bookkeeping on pod templates, not desired state: a restart or a STRATUS mark leaves the same pods.
TEMPLATE_MARKS = (RESTARTED_AT, STRATUS_CHANGE)
# their snapshot is the object's spec
MANIFEST_SECTIONS = ("Deployment", "Service", "NetworkPolicy", "ResourceQuota", "LimitRange", "PersistentVolumeClaim")
_ABSENT = object()


def oracle(name: str, *touches: Touch) -> Callable[[Check], Check]:
    """Register a fault's cause check and what the fault and its right fix change (nothing else may)."""
    def register(fn: Check) -> Check:
        ORACLES[name] = fn
        TOUCHES[name] = touches
        return fn
    return register


def _template_spec(spec: dict[str, Any]) -> dict[str, Any]:
    """A Deployment spec without template bookkeeping, env keyed by variable name (order is not meaning)."""
    out = copy.deepcopy(spec)
    template = out.get("template", {})
    meta = template.get("metadata", {})
    notes = {k: v for k, v in (meta.get("annotations") or {}).items() if k not in TEMPLATE_MARKS}
    meta.pop("annotations", None)
    if notes:
        meta["annotations"] = notes
    for c in template.get("spec", {}).get("containers", []):
        if "env" in c:
            c["env"] = {e["name"]: e for e in c["env"]}
    return out


def _account(user: dict[str, Any]) -> dict[str, Any]:
    roles: dict[str, list[str]] = {}
    for r in user.get("roles", []):
        roles.setdefault(r["db"], []).append(r["role"])
    return {"pwd": user.get("pwd"), "roles": {db: sorted(rs) for db, rs in roles.items()}}


def snapshot(world: World) -> dict[str, dict[str, Any]]:
    """What collateral damage is judged on, per section and object name (desired state only)."""
    st, ns = world.store, world.namespace
    return {
        "Deployment": {d["metadata"]["name"]: _template_spec(d["spec"]) for d in st.list("Deployment", ns)},
        "Service": {s["metadata"]["name"]: copy.deepcopy(s["spec"]) for s in st.list("Service", ns)},
        "NetworkPolicy": {p["metadata"]["name"]: copy.deepcopy(p["spec"]) for p in st.list("NetworkPolicy", ns)},
        **{kind: {o["metadata"]["name"]: copy.deepcopy(o["spec"]) for o in st.list(kind, ns)}
           for kind in ("ResourceQuota", "LimitRange", "PersistentVolumeClaim")},
        "ConfigMap": {c["metadata"]["name"]: {k: copy.deepcopy(c.get(k)) for k in ("data", "binaryData")}
                      for c in st.list("ConfigMap", ns)},
        "Secret": {s["metadata"]["name"]: {k: copy.deepcopy(s.get(k)) for k in ("type", "data", "stringData")}
                   for s in st.list("Secret", ns)},
        "Node": {n["metadata"]["name"]: {"labels": dict(n["metadata"].get("labels") or {}),
                                         "taints": copy.deepcopy(n["spec"].get("taints") or []),
                                         "unschedulable": bool(n["spec"].get("unschedulable"))}
                 for n in st.list("Node")},
        "db": {comp: {"users": {u: _account(acc) for u, acc in db["users"].items()}}
               for comp, db in world.db.items()},
    }


def baseline(world: World) -> dict[str, Any]:
    """What the healthy world looked like before injection (for collateral-damage checks)."""
    return snapshot(world)


def _container(world: World, target: str) -> dict[str, Any]:
    return world.store.get("Deployment", target, world.namespace)["spec"]["template"]["spec"]["containers"][0]


CONTAINER = "template.spec.containers.0"


@oracle("noop")
def _noop(world: World, rec: dict[str, Any]) -> tuple[bool, str]:
    return True, "no fault"


@oracle("service_target_port", ("Service", "{target}", "ports.0.targetPort"))
def _target_port(world: World, rec: dict[str, Any]) -> tuple[bool, str]:
    svc = world.store.get("Service", rec["target"], world.namespace)
    tp = svc["spec"]["ports"][0].get("targetPort")
    ports = {int(p["containerPort"]) for p in _container(world, rec["target"]).get("ports", [])}
    return tp in ports, f"targetPort {tp}, container ports {sorted(ports)}"


@oracle("scale_to_zero", ("Deployment", "{target}", "replicas"))
def _scale(world: World, rec: dict[str, Any]) -> tuple[bool, str]:
    d = world.store.get("Deployment", rec["target"], world.namespace)
    want = rec["original"]["replicas"]
    ok = d["spec"]["replicas"] == want and d.get("status", {}).get("availableReplicas", 0) == want
    return ok, f"replicas {d['spec']['replicas']} (want exactly {want}), available " \
               f"{d.get('status', {}).get('availableReplicas', 0)}"


def _schedulable(node: dict[str, Any]) -> bool:
    spec = node.get("spec", {})
    return not spec.get("unschedulable") and not any(
        t.get("effect") in ("NoSchedule", "NoExecute") for t in spec.get("taints") or [])


@oracle("nonexistent_node_selector", ("Deployment", "{target}", "template.spec.nodeSelector"))
def _node(world: World, rec: dict[str, Any]) -> tuple[bool, str]:
    """The selector fits a schedulable node, and no node was relabelled to fit it (a node's hostname
    label is its identity: rewriting it is not a fix)."""
    sel = world.store.get("Deployment", rec["target"], world.namespace)["spec"]["template"]["spec"].get(
        "nodeSelector") or {}
    nodes = world.store.list("Node")
    renamed = [n["metadata"]["name"] for n in nodes
               if (n["metadata"].get("labels") or {}).get(HOSTNAME) != n["metadata"]["name"]]
    fits = [n["metadata"]["name"] for n in nodes if _schedulable(n)
            and all((n["metadata"].get("labels") or {}).get(k) == v for k, v in sel.items())]
    ok = not renamed and bool(fits)
    why = f"nodeSelector {sel} fits {', '.join(fits) or 'no schedulable node'}"
    return ok, why + (f"; {HOSTNAME} no longer names node(s) {', '.join(renamed)}" if renamed else "")


def _image_ok(world: World, rec: dict[str, Any]) -> tuple[bool, str]:
    image = _container(world, rec["target"]).get("image")
    return image == rec["original"]["image"], f"image {image} (healthy {rec['original']['image']})"


oracle("crashing_image", ("Deployment", "{target}", f"{CONTAINER}.image"))(_image_ok)
oracle("missing_image", ("Deployment", "{target}", f"{CONTAINER}.image"))(_image_ok)


@oracle("wrong_command", ("Deployment", "{target}", f"{CONTAINER}.command"))
def _command(world: World, rec: dict[str, Any]) -> tuple[bool, str]:
    cmd = _container(world, rec["target"]).get("command")
    return cmd == rec["original"]["command"], f"command {cmd}"


def _has_role(world: World, db: str, user: str, database: str) -> bool:
    u = world.db[db]["users"].get(user)
    return bool(u) and any(r["role"] in ("readWrite", "dbOwner") and r["db"] == database for r in u["roles"])


@oracle("revoke_db_role", ("db", "{target}", "users.{user}.roles.{db}"))
def _role(world: World, rec: dict[str, Any]) -> tuple[bool, str]:
    o = rec["original"]
    ok = _has_role(world, rec["target"], o["user"], o["db"])
    return ok, f"{o['user']} {'has' if ok else 'lacks'} readWrite on {o['db']}"


@oracle("drop_db_user", ("db", "{target}", "users.{user}"))
def _user(world: World, rec: dict[str, Any]) -> tuple[bool, str]:
    o = rec["original"]
    u = world.db[rec["target"]]["users"].get(o["user"])
    ok = bool(u) and u["pwd"] == o["account"]["pwd"] and _has_role(world, rec["target"], o["user"], o["db"])
    return ok, f"user {o['user']} {'restored' if ok else 'missing or without its role'}"


@oracle("env_misconfig", ("Deployment", "{target}", f"{CONTAINER}.env.{{var}}"))
def _env(world: World, rec: dict[str, Any]) -> tuple[bool, str]:
    env = {e["name"]: e.get("value") for e in _container(world, rec["target"]).get("env", [])}
    var = rec["original"]["var"]
    return env.get(var) == rec["original"]["value"], f"{var}={env.get(var)}"


@oracle("network_policy_block", ("NetworkPolicy", "{policy}", ""))
def _netpol(world: World, rec: dict[str, Any]) -> tuple[bool, str]:
    gone = not world.store.exists("NetworkPolicy", rec["policy"], world.namespace)
    return gone, f"NetworkPolicy {rec['policy']} {'deleted' if gone else 'still present'}"


@oracle("memory_limit_oom", ("Deployment", "{target}", f"{CONTAINER}.resources"))
def _oom(world: World, rec: dict[str, Any]) -> tuple[bool, str]:
    c = _container(world, rec["target"])
    limit = parse_quantity((c.get("resources") or {}).get("limits", {}).get("memory"))
    binary = world.app.binaries[world.app.components[rec["target"]]["binary"]]
    need = float(binary.get("memory_mi", 32)) * 1024**2 * 1.05
    return limit is None or limit >= need, f"memory limit {limit} (process needs ~{need:.0f})"


@oracle("readiness_probe_misconfig", ("Deployment", "{target}", f"{CONTAINER}.readinessProbe"))
def _probe(world: World, rec: dict[str, Any]) -> tuple[bool, str]:
    probe = _container(world, rec["target"]).get("readinessProbe")
    ports = {int(p["containerPort"]) for p in _container(world, rec["target"]).get("ports", [])}
    handler = (probe or {}).get("tcpSocket") or (probe or {}).get("httpGet") or {}
    ok = probe is None or probe == rec["original"]["readinessProbe"] or int(handler.get("port", -1)) in ports
    return ok, f"readinessProbe {probe}"


def _chaos_gone(world: World, rec: dict[str, Any]) -> tuple[bool, str]:
    ch = rec["chaos"]
    gone = not world.store.exists(ch["kind"], ch["name"], world.namespace)
    return gone, f"{ch['kind']} {ch['name']} {'deleted' if gone else 'still present'}"


oracle("pod_failure")(_chaos_gone)
oracle("network_delay")(_chaos_gone)


def pods_healthy(pods: list[dict[str, Any]]) -> list[str]:
    """AIOpsLab's generic check: every container ready, none waiting or abnormally terminated."""
    problems = []
    for p in pods:
        for cs in p.get("status", {}).get("containerStatuses", []) or [{"ready": False, "name": "?"}]:
            if not cs.get("ready"):
                state = cs.get("state", {})
                why = (state.get("waiting") or {}).get("reason") or ("not ready" if "running" in state else "not started")
                problems.append(f"pod {p['metadata']['name']} container {cs.get('name')}: {why}")
    return problems


def _diff(before: Any, after: Any, path: Path = ()) -> list[Path]:
    """Paths (dict keys, list indices as text) where two snapshots differ; a whole value when added or removed."""
    if isinstance(before, dict) and isinstance(after, dict):
        out = []
        for k in sorted(set(before) | set(after), key=str):
            b, a = before.get(k, _ABSENT), after.get(k, _ABSENT)
            if b is _ABSENT or a is _ABSENT:
                out.append((*path, str(k)))
            else:
                out += _diff(b, a, (*path, str(k)))
        return out
    if isinstance(before, list) and isinstance(after, list) and len(before) == len(after):
        return [p for i, (b, a) in enumerate(zip(before, after, strict=True)) for p in _diff(b, a, (*path, str(i)))]
    return [] if before == after else [path]


def _allowed(records: list[dict[str, Any]]) -> set[tuple[str, str, Path]]:
    out = set()
    for rec in records:
        fields = {**rec, **(rec.get("original") or {})}
        for section, name, path in TOUCHES.get(rec["type"], ()):
            out.add((section, name.format(**fields),
                     tuple(p.format(**fields) for p in path.split(".")) if path else ()))
    return out


def _at(snap: Any, path: Path) -> Any:
    for key in path:
        snap = snap.get(key, _ABSENT) if isinstance(snap, dict) else \
            snap[int(key)] if isinstance(snap, list) and int(key) < len(snap) else _ABSENT
    return "absent" if snap is _ABSENT else snap


def _describe(section: str, name: str, path: Path, before: Any, after: Any) -> str:
    where = ".".join((["spec"] if section in MANIFEST_SECTIONS else []) + list(path))
    what = "database" if section == "db" else section
    old, new = repr(_at(before, path))[:80], repr(_at(after, path))[:80]
    return f"collateral: {what} {name} changed at {where}: {old} -> {new}"


def collateral(world: World, base: dict[str, Any], records: list[dict[str, Any]]) -> list[str]:
    """Everything that differs from the baseline and that no injected fault or its right fix touches,
    plus pods that are not Ready."""
    now = snapshot(world)
    allowed = _allowed(records)
    problems = []
    for section in base:
        for name in sorted(set(base[section]) | set(now.get(section, {}))):
            if any(s == section and n in (name, "*") and not p for s, n, p in allowed):
                continue
            if name not in now.get(section, {}):
                problems.append(f"collateral: {section} {name} was deleted")
            elif name not in base[section]:
                problems.append(f"collateral: {section} {name} was created")
            else:
                for path in _diff(base[section][name], now[section][name]):
                    if not any(s == section and n in (name, "*") and path[:len(p)] == p for s, n, p in allowed):
                        problems.append(_describe(section, name, path, base[section][name], now[section][name]))
    return problems + pods_healthy(world.store.list("Pod", world.namespace))


def grade(world: World, cluster: TwinCluster, records: list[dict[str, Any]], base: dict[str, Any],
          ctx: Context, changed: bool) -> tuple[bool, list[str]]:
    """Mitigated iff every fault's cause is gone, the app serves, and nothing else was harmed.

    A check that cannot run (say the target Deployment was deleted) is a failure with the error noted,
    never a run missing from the denominators.
    """
    notes: list[str] = []
    ok = True
    for rec in records:
        try:
            cause_gone, why = ORACLES[rec["type"]](world, rec)
        except Exception as exc:  # whatever stops an oracle, the run is not mitigated
            cause_gone, why = False, f"grader error: {type(exc).__name__}: {exc}"
        notes.append(f"{rec['type']}@{rec.get('target')}: {why}")
        ok &= cause_gone
    health = measure(cluster, ctx, world.namespace)
    if health.availability < MIN_AVAILABILITY:
        ok = False
        notes.append(f"app not serving: availability {health.availability:.3f}")
    damage = collateral(world, base, records)
    if damage:
        ok = False
        notes += damage
    if all(r["type"] == "noop" for r in records) and changed:
        ok = False
        notes.append("changed a healthy system (false positive)")
    return ok, notes


def _register_ops() -> None:
    from stratus.bench.oracles_ops import OPS_ORACLES

    for name, (check, touches) in OPS_ORACLES.items():
        oracle(name, *touches)(check)


_register_ops()
