"""Generic plans: fixes for problems no runbook names, built from the evidence and the change journal.

Each is a runbook like the others (registered in ``runbooks.REGISTRY`` for a class of runbooks.yaml),
so every candidate goes through the guard, the dry run and TNR:

- ``recent_change``: revert a changed object to its last-known-healthy manifest (or re-create it);
- ``missing_object``: re-create a deleted object from the journal (a Secret from the contents the journal
  keeps in memory only; a ConfigMap or Secret put back also restarts the workloads that read it into env);
- ``broken_reference``: revert the Service or workload whose change broke a selector, port or address;
  without a journal, point the selector at the closest workload's labels, the targetPort at a port the
  pods open, or an address at the Service whose name and port come closest;
- ``insufficient_resources``: set the requests no node can fit back to what the workload's history or
  its peers use;
- ``node_unschedulable``: undo the taints and cordons the journal saw appear (a cordon without one).

Which of these runs first is the ranking's business (signal weights): a change is only evidence when it
lines up with the symptoms, so a plan never wins just because its change was recent. Nor is one offered
for a change that merely sits next to the symptoms (a routine rollout, scale-up or config edit: the
changes analyzer's ``ChangeNearSymptoms`` alone), or for a client whose change left its wiring alone.
"""

from __future__ import annotations

from collections.abc import Iterator
from difflib import SequenceMatcher
from typing import Any

from stratus.cluster.actions import Action
from stratus.cluster.base import ClusterError
from stratus.policies.generic_capacity import put_back
from stratus.policies.runbooks import Candidate, runbook, service_port
from stratus.state import Hypothesis
from stratus.tools.analyzers import View
from stratus.tools.analyzers.addresses import parse_address, service_of_host
from stratus.tools.analyzers.config_refs import template_refs
from stratus.tools.analyzers.leftovers import denies_all, node_drift
from stratus.tools.analyzers.match import pod_templates, selector_matches
from stratus.tools.journal import restore_secret

CREATABLE = frozenset({"Deployment", "StatefulSet", "DaemonSet", "Service", "ConfigMap", "NetworkPolicy",
                       "ResourceQuota", "HorizontalPodAutoscaler"})
"""Kinds a plan may re-create from their last healthy manifest (the allow-list's ``create``). A Secret is
re-created apart: only its contents kept in the journal's memory, never a manifest (``restore_secret``)."""
WORKLOADS = ("Deployment", "StatefulSet", "DaemonSet")
POLICIES = ("ResourceQuota", "LimitRange", "NetworkPolicy")
"""Namespace policies: reverting one means deleting it when it is new (``put_back``)."""
MIN_LIKENESS = 0.6
"""How alike (difflib ratio) a label value must be to a selector's for the selector to be "repaired" to it."""


def _facts(h: Hypothesis) -> list[dict[str, Any]]:
    return list(h.data.get("facts") or [])


def _objects(h: Hypothesis) -> list[tuple[str, str]]:
    return list(dict.fromkeys((f["kind"], f["name"]) for f in _facts(h) if f.get("kind") and f.get("name")))


def _current(v: View, kind: str, name: str) -> dict[str, Any] | None:
    try:
        return v.cluster.get(kind, name, None if kind == "Node" else v.namespace)
    except ClusterError:
        return None


def _manifest(v: View, m: dict[str, Any]) -> dict[str, Any]:
    m.setdefault("metadata", {})["namespace"] = v.namespace
    return m


def _node_fix(v: View, name: str) -> list[Action]:
    """Undo a node's cordon and the taints it gained since it was last seen healthy."""
    cur = _current(v, "Node", name)
    drift = node_drift(v.journal, cur) if cur is not None else None
    if drift is None:
        return []
    cordoned, new = drift
    out = [Action(verb="uncordon", kind="Node", name=name)] if cordoned else []
    if new:
        out.append(Action(verb="taint", kind="Node", name=name,
                          params={"remove": [{"key": t["key"], "effect": t["effect"]} for t in new]}))
    return out


def _signature(a: Action) -> tuple[str, str]:
    return a.verb, repr(sorted((t["key"], t["effect"]) for t in a.params.get("remove", [])))


def _same_mistake(v: View, fixes: list[Action]) -> list[Action]:
    """``fixes`` plus the same fix on every other node that took the same change since it was last healthy.

    The evidence names the node whose change came closest to the symptoms; a cordon or taint put on
    several nodes at once is one mistake, and undoing it on one node leaves the others refusing pods
    (a routine rollout elsewhere then fails to schedule and looks like a new fault)."""
    if not fixes:
        return fixes
    wanted = {_signature(a) for a in fixes}
    named = {a.name for a in fixes}
    more = [a for n in v.nodes if n["metadata"]["name"] not in named
            for a in _node_fix(v, n["metadata"]["name"]) if _signature(a) in wanted]
    return fixes + more


def revert(v: View, kind: str, name: str) -> Iterator[Candidate]:
    """Put an object back as it was when the namespace was last healthy (re-create it if deleted).

    Nodes are not replaced whole (their status and labels belong to the kubelet): ``_node_fix`` undoes
    only the cordon and the taints."""
    j = v.journal
    if j is None:
        return
    restarts = _env_readers(v, kind, name)
    then = f" and {', '.join(a.name for a in restarts)} restarted to read it" if restarts else ""
    if kind == "Secret":
        restore = restore_secret(j, name, v.namespace) if _current(v, kind, name) is None else None
        if restore is not None:
            yield [restore, *restarts], f"Secret {name} exists again with its last healthy contents{then}"
        return
    healthy = j.last_healthy(kind, name, v.namespace)
    if kind in POLICIES:  # a namespace policy created or changed: deleted or put back (generic_capacity)
        if kind == "NetworkPolicy" and not denies_all(v, name):
            return  # an allow rule takes nothing away; one that denies part needs its traffic to judge
        actions = put_back(v, kind, name)
        if actions:
            yield actions, f"{kind} {name} is {'gone' if actions[0].verb == 'delete' else 'back'} as it was while healthy"
        return
    if healthy is None or kind not in CREATABLE:
        return
    cur = _current(v, kind, name)
    if cur is None:
        yield [Action(verb="create", kind=kind, name=name, params={"manifest": _manifest(v, healthy)}), *restarts], \
            f"{kind} {name} exists again as it was while healthy{then}"
    elif not j.current_is_healthy(kind, name, v.namespace):
        yield [Action(verb="apply", kind=kind, name=name, params={"manifest": _manifest(v, healthy)}), *restarts], \
            f"{kind} {name} is back to its last healthy version{then}"


def _env_readers(v: View, kind: str, name: str) -> list[Action]:
    """Restarts of the workloads that read a ConfigMap or Secret into env or envFrom: a container reads
    those only when it starts, so putting the object back changes nothing in the pods already running."""
    if kind not in ("ConfigMap", "Secret"):
        return []
    return [Action(verb="rollout_restart", kind=wkind, name=owner)
            for wkind, owner, tmpl in pod_templates(v) if wkind in WORKLOADS
            and any(rk == kind and rn == name and ".env" in where for rk, rn, where, *_ in template_refs(tmpl))]


@runbook("recent_change", "missing_object")
def from_journal(v: View, h: Hypothesis, db: dict[str, Any]) -> Iterator[Candidate]:
    objects = _objects(h)
    for f in _facts(h):
        if f.get("host"):  # an address naming a Service that no longer exists
            name, _certain = service_of_host(str(f["host"]), v.namespace)
            if name:
                objects.append(("Service", name))
    nodes = _same_mistake(v, [a for kind, name in dict.fromkeys(objects) if kind == "Node" for a in _node_fix(v, name)])
    if nodes:  # one plan for every node: a taint left on the others is the same mistake left half undone
        yield nodes, "the nodes accept pods again as they did while healthy"
    for kind, name in dict.fromkeys(objects):
        if kind != "Node" and not _bystander(h, kind, name):
            yield from revert(v, kind, name)


def _bystander(h: Hypothesis, kind: str, name: str) -> bool:
    """Whether a change is routine and only next to the symptoms: every finding on the object is
    ``ChangeNearSymptoms`` (the changes analyzer's word for a change whose own workload or readers work,
    or a scale-up whose old replicas still serve), and it is an update of the kind people make every day
    (a workload's image tag or a larger replica count, a ConfigMap's or Secret's data). Reverting it
    would undo a legitimate change on the strength of its timing alone. A changed command, env, probe or
    a scale-down is never routine: a workload can run Ready and still serve nothing useful."""
    facts = [f for f in _facts(h) if f.get("kind") == kind and f.get("name") == name]
    if not facts or {f.get("link") for f in facts} != {"near"} or any(f.get("op") != "update" for f in facts):
        return False
    fields = [x for f in facts for x in f.get("fields") or []]
    if kind in WORKLOADS:
        return bool(fields) and all(x["field"] == "image" or x["field"] == "replicas" and _grew(x) for x in fields)
    return kind in ("ConfigMap", "Secret") and bool(fields) and all(x["field"] == "data" for x in fields)


def _grew(field: dict[str, Any]) -> bool:
    try:
        return int(field["after"]) > int(field["before"])
    except (TypeError, ValueError):
        return False


def _services_of(v: View, component: str) -> list[str]:
    """Services named like the component or whose selector (now or when healthy) picks it."""
    tmpl = v.template_of(component) or {}
    labels = (tmpl.get("metadata") or {}).get("labels") or {}
    out = []
    for s in v.services:
        name = s["metadata"]["name"]
        healthy = v.journal.last_healthy("Service", name, v.namespace) if v.journal else None
        sels = [(s.get("spec") or {}).get("selector"), ((healthy or {}).get("spec") or {}).get("selector")]
        if name == component or any(sel and selector_matches(labels, sel) for sel in sels):
            out.append(name)
    return out


def _selected_elsewhere(v: View, owner: str) -> list[dict[str, Any]]:
    """Selectors of the other Services, now and as the journal saw them healthy: pods they pick
    belong to another component, and a repair never steals them."""
    out = []
    for s in v.services:
        if s["metadata"]["name"] == owner:
            continue
        healthy = v.journal.last_healthy("Service", s["metadata"]["name"], v.namespace) if v.journal else None
        out += [sel for sel in ((s.get("spec") or {}).get("selector"),
                                ((healthy or {}).get("spec") or {}).get("selector")) if sel]
    return out


def _closest_selector(v: View, sel: dict[str, str], owner: str) -> dict[str, str] | None:
    """The selector's keys with the values of the workload whose labels differ least from it, among
    workloads no other Service selects (a workload another Service serves is not this one's) and whose
    differing values are spelled like the selector's (``MIN_LIKENESS``)."""
    taken = _selected_elsewhere(v, owner)
    best: tuple[int, float, dict[str, str]] | None = None
    for _kind, _name, t in pod_templates(v):
        labels = (t.get("metadata") or {}).get("labels") or {}
        if not all(k in labels for k in sel) or any(selector_matches(labels, other) for other in taken):
            continue
        diff = [k for k in sel if labels[k] != sel[k]]
        likeness = [SequenceMatcher(None, labels[k], sel[k]).ratio() for k in diff]
        if not diff or min(likeness) < MIN_LIKENESS:
            continue  # a typo stays close to the word it misspells; a far label is another workload
        score = (len(diff), -sum(likeness), {k: labels[k] for k in sel})
        if best is None or score[:2] < best[:2]:
            best = score
    return best[2] if best else None


def _recreate_selected(v: View, sel: dict[str, str]) -> Iterator[Candidate]:
    """Re-create the deleted workloads whose pods the selector picked while healthy (from the journal)."""
    for kind in WORKLOADS:
        for name, m in v.journal.gone(kind, v.namespace) if v.journal else []:
            labels = (((m.get("spec") or {}).get("template") or {}).get("metadata") or {}).get("labels") or {}
            if kind in CREATABLE and labels and selector_matches(labels, sel) and _current(v, kind, name) is None:
                yield [Action(verb="create", kind=kind, name=name, params={"manifest": _manifest(v, m)})], \
                    f"{kind} {name} exists again as it was while healthy and its Service has endpoints"


def _changed_since_healthy(v: View, kind: str, name: str) -> bool:
    j = v.journal
    return bool(j and j.last_healthy(kind, name, v.namespace) is not None
                and not j.current_is_healthy(kind, name, v.namespace))


def _plain_address(value: str) -> bool:
    """Whether a value is a bare ``host:port``: URLs may carry credentials, and a plan's commands are
    shown to people and models, so a plan never rewrites them."""
    return ":" in value and "@" not in value and "/" not in value


def _closest_address(v: View, value: str) -> str | None:
    """``value`` (a bare ``host:port``) with host and port replaced by the Service whose name comes closest."""
    parsed = parse_address(value)
    if parsed is None or not _plain_address(value):
        return None
    host, port = parsed
    name, _certain = service_of_host(host, v.namespace)
    ranked = sorted(((SequenceMatcher(None, name, s["metadata"]["name"]).ratio(), s) for s in v.services),
                    key=lambda x: -x[0])
    for ratio, s in ranked[:1]:
        ports = [int(p["port"]) for p in (s.get("spec") or {}).get("ports") or []]
        if ratio < 0.5 or not ports:
            return None
        fixed = f"{s['metadata']['name']}:{port if port in ports else ports[0]}"
        return value.replace(f"{host}:{port}", fixed) if f"{host}:{port}" in value else None
    return None


def _env_fixes(v: View, h: Hypothesis) -> Iterator[Candidate]:
    env = v.container_env(h.component)
    healthy = v.journal.last_healthy("Deployment", h.component, v.namespace) if v.journal else None
    old = {e["name"]: str(e.get("value", "")) for c in ((healthy or {}).get("spec", {}).get("template", {})
                                                          .get("spec", {}).get("containers") or [])
           for e in c.get("env") or [] if "value" in e}
    for f in _facts(h):
        var = str(f.get("field", "")).removeprefix("env.")
        if not str(f.get("field", "")).startswith("env.") or var not in env:
            continue
        if old.get(var, env[var]) != env[var]:
            value: str | None = old[var]
        elif f.get("host") and _changed_since_healthy(v, "Service", service_of_host(str(f["host"]), v.namespace)[0]):
            continue  # the Service moved, not the client: adapting the client would leave the change in place
        else:
            value = _closest_address(v, env[var])
        if value and value != env[var] and _plain_address(value) and _plain_address(env[var]):
            yield [Action(verb="set_env", kind="Deployment", name=h.component, params={"env": {var: value}})], \
                f"{h.component} reaches {value} again"


WIRING = ("env", "envFrom", "ports", "command", "args", "volumeMounts")
"""Container fields a reference runs through: a workload whose change left them alone (a new image tag,
a replica count) did not break a reference, and reverting it would undo someone's routine change."""


def _wiring_changed(v: View, component: str) -> bool:
    """Whether the workload's labels, volumes or containers' ``WIRING`` differ from its last healthy version."""
    healthy = v.journal.last_healthy("Deployment", component, v.namespace) if v.journal else None
    now = v.template_of(component)
    if healthy is None or now is None:
        return False
    old = (healthy.get("spec") or {}).get("template") or {}

    def wiring(t: dict[str, Any]) -> Any:
        spec = t.get("spec") or {}
        return ((t.get("metadata") or {}).get("labels"), spec.get("volumes"),
                [[c.get(k) for k in WIRING] for c in spec.get("containers") or []])
    return bool(wiring(old) != wiring(now))


@runbook("broken_reference")
def broken_reference(v: View, h: Hypothesis, db: dict[str, Any]) -> Iterator[Candidate]:
    """Put back the side of a reference that changed (a re-created workload, a reverted ConfigMap or
    Service) before adapting the side that did not change."""
    for f in _facts(h):
        if f.get("selector"):
            yield from _recreate_selected(v, f["selector"])
        if f.get("configmap"):
            yield from revert(v, "ConfigMap", str(f["configmap"]))
        if f.get("host"):
            yield from revert(v, "Service", service_of_host(str(f["host"]), v.namespace)[0])
    for svc in _services_of(v, h.component):
        yield from revert(v, "Service", svc)
    if v.template_of(h.component) is not None:
        if _wiring_changed(v, h.component):
            yield from revert(v, "Deployment", h.component)
        yield from _env_fixes(v, h)
    for f in _facts(h):
        if f.get("selector"):
            owner = next((s["metadata"]["name"] for s in v.services
                          if (s.get("spec") or {}).get("selector") == f["selector"]), None)
            fixed = _closest_selector(v, f["selector"], owner) if owner else None
            if fixed and owner and not any(_recreate_selected(v, f["selector"])):
                # the selector is right when the workload it picked was deleted: bring that back instead
                yield [Action(verb="patch", kind="Service", name=owner,
                              params={"type": "merge", "patch": {"spec": {"selector": fixed}}})], \
                    f"Service {owner} selects the pods of the workload labelled {fixed}"
    for svc in _services_of(v, h.component):
        yield from service_port(v, h.model_copy(update={"component": svc}), db)


_SUFFIX = {"m": 1e-3, "k": 1e3, "M": 1e6, "G": 1e9, "T": 1e12, "Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40}


def quantity(q: Any) -> float:
    """A Kubernetes quantity as a number (``100m`` -> 0.1, ``1Gi`` -> 2**30); unreadable ones sort last."""
    text = str(q)
    for suffix in sorted(_SUFFIX, key=len, reverse=True):
        if text.endswith(suffix):
            text, scale = text[: -len(suffix)], _SUFFIX[suffix]
            break
    else:
        scale = 1.0
    try:
        return float(text) * scale
    except ValueError:
        return float("inf")


def _requests(tmpl: dict[str, Any] | None) -> dict[str, dict[str, Any]]:
    return {c.get("name", ""): dict((c.get("resources") or {}).get("requests") or {})
            for c in ((tmpl or {}).get("spec") or {}).get("containers") or []}


@runbook("insufficient_resources")
def insufficient_resources(v: View, h: Hypothesis, db: dict[str, Any]) -> Iterator[Candidate]:
    now = _requests(v.template_of(h.component))
    if not now:
        return
    healthy = v.journal.last_healthy("Deployment", h.component, v.namespace) if v.journal else None
    history = [rs["spec"]["template"] for rs in v.replicasets
               if any(r.get("name") == h.component for r in rs["metadata"].get("ownerReferences", []))]
    sources = [((healthy or {}).get("spec") or {}).get("template")] + history[::-1]
    for tmpl in sources:
        for cname, req in _requests(tmpl).items():
            if cname in now and req and req != now[cname]:
                yield [Action(verb="set_resources", kind="Deployment", name=h.component,
                              params={"requests": req, "container": cname})], \
                    f"{h.component} requests {req} again, as it did before, and its pods fit on a node"
                return
    resources = {str(f.get("resource")) for f in _facts(h) if f.get("resource")}
    for res in sorted(resources & {"cpu", "memory"}):
        peers = [r[res] for d in v.deployments if d["metadata"]["name"] != h.component
                 for r in _requests(d["spec"]["template"]).values() if res in r]
        if peers:
            cname = next(iter(now))
            value = sorted(peers, key=quantity)[(len(peers) - 1) // 2]
            yield [Action(verb="set_resources", kind="Deployment", name=h.component,
                          params={"requests": {res: value}, "container": cname})], \
                f"{h.component} requests {res}={value}, what its peers use, and its pods fit on a node"


@runbook("node_unschedulable")
def node_unschedulable(v: View, h: Hypothesis, db: dict[str, Any]) -> Iterator[Candidate]:
    actions = [a for n in v.nodes for a in _node_fix(v, n["metadata"]["name"])]
    if actions:
        yield actions, "the nodes accept pods again as they did while healthy"
    cordoned = [n["metadata"]["name"] for n in v.nodes if (n.get("spec") or {}).get("unschedulable")]
    if cordoned and len(cordoned) == len(v.nodes) and any(f.get("cause") == "NodeUnschedulable" for f in _facts(h)):
        yield [Action(verb="uncordon", kind="Node", name=n) for n in cordoned], \
            "every node was cordoned: uncordoned, pods are scheduled again"
