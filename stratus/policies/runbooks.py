"""Runbook plans: one small function per fault class, each yielding candidate plans best first.

A runbook yields candidates: a list of ``Action`` plus the effect it should have (the rules policy
turns each into a ``Plan``). Candidates use only what the analyzers saw (manifests, rollout history,
env, findings' facts) and public facts of the apps (runbooks.yaml).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from stratus.cluster.actions import Action
from stratus.cluster.mutate import STRATUS_CHANGE
from stratus.state import Hypothesis
from stratus.tools.analyzers import View
from stratus.tools.analyzers.admission import policed

Candidate = tuple[list[Action], str]
RunbookFn = Callable[[View, Hypothesis, dict[str, Any]], Iterator[Candidate]]
REGISTRY: dict[str, RunbookFn] = {}
REVISION = "deployment.kubernetes.io/revision"


def runbook(*classes: str) -> Callable[[RunbookFn], RunbookFn]:
    def register(fn: RunbookFn) -> RunbookFn:
        for c in classes:
            REGISTRY[c] = fn
        return fn
    return register


def _deployment(v: View, name: str) -> dict[str, Any] | None:
    return next((d for d in v.deployments if d["metadata"]["name"] == name), None)


def _history(v: View, d: dict[str, Any]) -> list[dict[str, Any]]:
    owned = [rs for rs in v.replicasets if any(r.get("uid") == d["metadata"].get("uid")
                                               for r in rs["metadata"].get("ownerReferences", []))]
    return sorted(owned, key=lambda rs: int(rs["metadata"].get("annotations", {}).get(REVISION, "0")))


def _container(d: dict[str, Any]) -> dict[str, Any]:
    return d["spec"]["template"]["spec"]["containers"][0]


def _undo(v: View, comp: str) -> Iterator[Candidate]:
    """Roll back to the revision the change journal saw healthy, else the newest earlier one STRATUS did
    not write itself; offer nothing when the live template is the one the namespace was healthy with.

    Plain ``rollout undo`` would pick the revision just before the current one, which after an undone
    attempt is that very attempt (the TNR restore re-activated the faulty template as a new revision).
    Going further back than the healthy template would also revert a legitimate earlier change."""
    d = _deployment(v, comp)
    if d is None:
        return
    current = d["spec"]["template"]
    healthy = v.journal.last_healthy("Deployment", comp, v.namespace) if v.journal else None
    healthy_tmpl = (healthy or {}).get("spec", {}).get("template")
    if healthy_tmpl is not None and _same_template(healthy_tmpl, current):
        return  # the namespace was healthy with this very template: an older one cannot be the fix
    candidates = [rs for rs in reversed(_history(v, d))
                  if not _same_template(rs["spec"]["template"], current)
                  and STRATUS_CHANGE not in (rs["spec"]["template"].get("metadata", {}).get("annotations") or {})]
    # The revision the journal saw healthy first; without one, the newest earlier revision.
    matching = [rs for rs in candidates if healthy_tmpl is not None and _same_template(rs["spec"]["template"], healthy_tmpl)]
    for rs in (matching or candidates)[:1]:
        rev = int(rs["metadata"]["annotations"][REVISION])
        yield [Action(verb="rollout_undo", kind="Deployment", name=comp, params={"to_revision": rev})], \
            f"{comp} returns to revision {rev}, the last one not written by STRATUS, and its pods stop failing"


def _same_template(a: dict[str, Any], b: dict[str, Any]) -> bool:
    def strip(t: dict[str, Any]) -> dict[str, Any]:
        t = {**t, "metadata": dict(t.get("metadata") or {})}
        labels = dict(t["metadata"].get("labels") or {})
        labels.pop("pod-template-hash", None)
        t["metadata"]["labels"] = labels
        return t
    return strip(a) == strip(b)


def _restart(comp: str) -> Candidate:
    return [Action(verb="rollout_restart", kind="Deployment", name=comp)], f"fresh pods of {comp} serve again"


@runbook("service_port_mismatch")
def service_port(v: View, h: Hypothesis, db: dict[str, Any]) -> Iterator[Candidate]:
    svc = next((s for s in v.services if s["metadata"]["name"] == h.component), None)
    if svc is None:
        return
    comp = v.service_component(h.component)
    tmpl = v.template_of(comp)
    ports = [int(p["containerPort"]) for c in (tmpl or {"spec": {}})["spec"].get("containers", [])
             for p in c.get("ports", [])]
    for i, sp in enumerate(svc["spec"].get("ports", [])):
        tp = sp.get("targetPort", sp["port"])
        if ports and isinstance(tp, int) and tp not in ports:
            value = sp["port"] if sp["port"] in ports else ports[0]
            yield [Action(verb="patch", kind="Service", name=h.component,
                          params={"type": "json", "patch": [{"op": "replace", "path": f"/spec/ports/{i}/targetPort",
                                                             "value": value}]})], \
                f"Service {h.component} routes to port {value} where its pods listen"


@runbook("scaled_to_zero")
def scaled_to_zero(v: View, h: Hypothesis, db: dict[str, Any]) -> Iterator[Candidate]:
    yield [Action(verb="scale", kind="Deployment", name=h.component, params={"replicas": 1})], \
        f"{h.component} runs one replica again and its Service gets an endpoint"


@runbook("unschedulable")
def unschedulable(v: View, h: Hypothesis, db: dict[str, Any]) -> Iterator[Candidate]:
    d = _deployment(v, h.component)
    if d is None:
        return
    if d["spec"]["template"]["spec"].get("nodeSelector"):
        yield [Action(verb="patch", kind="Deployment", name=h.component,
                      params={"type": "json", "patch": [{"op": "remove", "path": "/spec/template/spec/nodeSelector"}]})], \
            f"pods of {h.component} can be scheduled on any node"
    yield from _undo(v, h.component)


@runbook("wrong_binary")
def wrong_binary(v: View, h: Hypothesis, db: dict[str, Any]) -> Iterator[Candidate]:
    expected = next((f.expected for f in h.facts if f.expected is not None), [h.component])
    yield [Action(verb="patch", kind="Deployment", name=h.component,
                  params={"type": "json", "patch": [{"op": "replace",
                                                     "path": "/spec/template/spec/containers/0/command",
                                                     "value": expected}]})], \
        f"{h.component} runs its own binary {expected} and serves its port"
    yield from _undo(v, h.component)


def _service_moved(v: View, name: str) -> bool:
    """Whether the journal saw Service ``name`` healthy in a form it no longer has."""
    j = v.journal
    return bool(name and j is not None and j.last_healthy("Service", name, v.namespace) is not None
                and not j.current_is_healthy("Service", name, v.namespace))


@runbook("env_misconfig")
def env_misconfig(v: View, h: Hypothesis, db: dict[str, Any]) -> Iterator[Candidate]:
    facts = h.facts
    for var, expected in zip([f.var for f in facts if f.var is not None],
                             [f.expected for f in facts if f.expected is not None]):
        if any(f.var == var and _service_moved(v, str(getattr(f, "host", "") or "")) for f in facts):
            continue  # the Service changed, not the client: pointing the client at it keeps the change
        yield [Action(verb="set_env", kind="Deployment", name=h.component, params={"env": {var: expected}})], \
            f"{h.component} reaches its dependency at {expected}"
    yield from _undo(v, h.component)


@runbook("bad_rollout", "readiness_probe", "image_pull")
def bad_rollout(v: View, h: Hypothesis, db: dict[str, Any]) -> Iterator[Candidate]:
    yield from _undo(v, h.component)
    d = _deployment(v, h.component)
    if d is None:
        return
    c = _container(d)
    if h.fault_class == "readiness_probe" and c.get("readinessProbe"):
        yield [Action(verb="patch", kind="Deployment", name=h.component,
                      params={"type": "json", "patch": [{"op": "remove",
                                                         "path": "/spec/template/spec/containers/0/readinessProbe"}]})], \
            f"pods of {h.component} become Ready"
    if h.fault_class in ("image_pull", "bad_rollout"):
        repo = c.get("image", "").split(":")[0].rsplit("/", 1)[0]
        peers = [_container(x).get("image") for x in v.deployments if x is not d]
        same = [i for i in peers if i and i.split(":")[0].rsplit("/", 1)[0] == repo and i != c.get("image")]
        if same:
            image = max(set(same), key=same.count)
            yield [Action(verb="set_image", kind="Deployment", name=h.component,
                          params={"images": {c["name"]: image}})], \
                f"{h.component} runs the image its peers run ({image})"


@runbook("oom_limit")
def oom_limit(v: View, h: Hypothesis, db: dict[str, Any]) -> Iterator[Candidate]:
    if h.component in policed(v):
        return  # killed under a LimitRange default: limit_range_default puts the policy back
    yield from _undo(v, h.component)
    d = _deployment(v, h.component)
    # a workload that declares no memory limit was killed under one it never set (a LimitRange default):
    # the fix belongs to that policy, and writing a limit into the workload would change a bystander
    if d is not None and ((_container(d).get("resources") or {}).get("limits") or {}).get("memory") is not None:
        c = _container(d)
        yield [Action(verb="set_resources", kind="Deployment", name=h.component,
                      params={"limits": {"memory": "512Mi"}, "container": c["name"]})], \
            f"{h.component} has room for its working set"


@runbook("network_policy")
def network_policy(v: View, h: Hypothesis, db: dict[str, Any]) -> Iterator[Candidate]:
    for name in dict.fromkeys(f.policy for f in h.facts if f.policy is not None):
        yield [Action(verb="delete", kind="NetworkPolicy", name=name)], \
            f"traffic reaches {h.component} again"


@runbook("pod_chaos", "network_chaos")
def chaos(v: View, h: Hypothesis, db: dict[str, Any]) -> Iterator[Candidate]:
    facts = h.facts
    for kind, name in dict.fromkeys(zip([f.kind for f in facts if f.kind is not None],
                                        [f.name for f in facts if f.name is not None])):
        yield [Action(verb="delete", kind=kind, name=name)], f"the {kind} stops acting on {h.component}"


def _dependents(v: View, db_component: str) -> list[str]:
    out = []
    for d in v.deployments:
        env = v.container_env(d["metadata"]["name"])
        addr = env.get("MONGO_ADDR", "")
        if addr and v.service_component(addr.rpartition(":")[0]) == db_component:
            out.append(d["metadata"]["name"])
    return out


def _database_name(v: View, h: Hypothesis, dependents: list[str]) -> str:
    for f in h.facts:
        if f.db is not None:
            return f.db
    for dep in dependents:
        if v.container_env(dep).get("MONGO_DB"):
            return v.container_env(dep)["MONGO_DB"]
    return h.component.removeprefix("mongodb-") + "-db"


def restart_crashed_dependents(v: View, component: str) -> list[Action]:
    """Restart clients of ``component`` that are crash-looping (they would wait out a 5-minute back-off)."""
    deps = v.dependencies()
    target = v.service_component(component)
    clients = {c for c, ds in deps.items() if target in ds or component in ds}
    bad = set()
    for p in v.pods:
        comp = v.deployment_of_pod(p)
        waiting = [cs.get("state", {}).get("waiting", {}).get("reason")
                   for cs in p.get("status", {}).get("containerStatuses", [])]
        if comp in clients and comp != target and "CrashLoopBackOff" in waiting:
            bad.add(comp)
    return [Action(verb="rollout_restart", kind="Deployment", name=c) for c in sorted(bad)]


def _mongo(db: dict[str, Any]) -> dict[str, Any]:
    return {"engine": "mongodb", "client": db.get("client", "mongo"), "user_db": db.get("user_db", "admin")}


@runbook("db_role_revoked")
def db_role(v: View, h: Hypothesis, db: dict[str, Any]) -> Iterator[Candidate]:
    deps = _dependents(v, h.component)
    name = _database_name(v, h, deps)
    grant = Action(verb="exec", kind="Deployment", name=h.component,
                   params={"db_command": {**_mongo(db), "op": "grant_role", "user": db["app_user"],
                                          "roles": [{"role": db["app_role"], "db": name}]}})
    yield [grant], f"{db['app_user']} can read and write {name} again"


@runbook("db_user_missing")
def db_user(v: View, h: Hypothesis, db: dict[str, Any]) -> Iterator[Candidate]:
    deps = _dependents(v, h.component)
    name = _database_name(v, h, deps)
    create = Action(verb="exec", kind="Deployment", name=h.component,
                    params={"db_command": {**_mongo(db), "op": "create_user", "user": db["app_user"],
                                           "pwd": db["app_password"],
                                           "roles": [dict(db["admin_role"]), {"role": db["app_role"], "db": name}]}})
    yield [create], f"{db['app_user']} can log in to {h.component} again"


@runbook("dependency_unreachable", "crash_loop", "unavailable", "network_latency")
def generic(v: View, h: Hypothesis, db: dict[str, Any]) -> Iterator[Candidate]:
    if _deployment(v, h.component) is None:
        return
    if h.fault_class == "crash_loop" and h.component not in policed(v):
        yield from _undo(v, h.component)
    yield _restart(h.component)
