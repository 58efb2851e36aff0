"""Analyzers: evidence extraction from objects, events, logs, traces, metrics and alerts.

One small function per source, registered with ``@analyzer``; each returns plain ``Finding`` objects.
Both policies start from these findings (the LLM policy sees them as compact evidence). Analyzers read
the world only through the Cluster protocol and never know what fault, if any, was injected.
"""

from __future__ import annotations

import re
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from stratus.cluster.base import Cluster
from stratus.cluster.kinds import CHAOS_KINDS
from stratus.state import Finding
from stratus.tools.health import alert_component, component_of_pod
from stratus.tools.redact import redact_text

AnalyzerFn = Callable[["View"], list["Finding"]]
REGISTRY: dict[str, AnalyzerFn] = {}
LOG_TAIL = 60
LOG_WINDOW_S = 900.0


def analyzer(name: str) -> Callable[[AnalyzerFn], AnalyzerFn]:
    def register(fn: AnalyzerFn) -> AnalyzerFn:
        REGISTRY[name] = fn
        return fn
    return register


@dataclass
class View:
    """One consistent read of a namespace, shared by the analyzers of a diagnosis round."""

    cluster: Cluster
    namespace: str
    deployments: list[dict[str, Any]] = field(default_factory=list)
    replicasets: list[dict[str, Any]] = field(default_factory=list)
    pods: list[dict[str, Any]] = field(default_factory=list)
    services: list[dict[str, Any]] = field(default_factory=list)
    endpoints: dict[str, dict[str, Any]] = field(default_factory=dict)
    nodes: list[dict[str, Any]] = field(default_factory=list)
    events: list[dict[str, Any]] = field(default_factory=list)
    alerts: list[dict[str, Any]] = field(default_factory=list)

    @classmethod
    def read(cls, cluster: Cluster, namespace: str) -> "View":
        def real(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
            return [i for i in items if i.get("kind") != "Omitted"]
        v = cls(cluster, namespace)
        v.deployments = real(cluster.list("Deployment", namespace))
        v.replicasets = real(cluster.list("ReplicaSet", namespace))
        v.pods = real(cluster.list("Pod", namespace))
        v.services = real(cluster.list("Service", namespace))
        v.endpoints = {e["metadata"]["name"]: e for e in real(cluster.list("Endpoints", namespace))}
        v.nodes = real(cluster.list("Node"))
        v.events = real(cluster.events(namespace, since=cluster.now() - 900))
        v.alerts = [a for a in cluster.alerts() if a.get("labels", {}).get("namespace") in (None, namespace)]
        return v

    # --- topology ---------------------------------------------------------------------------
    def deployment_of_pod(self, pod: dict[str, Any]) -> str:
        for ref in pod["metadata"].get("ownerReferences", []):
            if ref.get("kind") == "ReplicaSet":
                rs = next((r for r in self.replicasets if r["metadata"]["name"] == ref["name"]), None)
                if rs:
                    for r2 in rs["metadata"].get("ownerReferences", []):
                        if r2.get("kind") == "Deployment":
                            return r2["name"]
                return component_of_pod(pod["metadata"]["name"])
        return pod["metadata"]["name"]

    def service_component(self, host: str) -> str:
        """The component behind a DNS name (Service name -> Deployment with matching labels)."""
        name = host.split(".")[0]
        svc = next((s for s in self.services if s["metadata"]["name"] == name), None)
        if svc is None:
            return name
        sel = svc["spec"].get("selector") or {}
        for d in self.deployments:
            labels = d["spec"]["template"].get("metadata", {}).get("labels", {})
            if sel and all(labels.get(k) == v for k, v in sel.items()):
                return d["metadata"]["name"]
        return name

    def dependencies(self) -> dict[str, set[str]]:
        """Call/dependency graph read from the Deployments' env (``*_ADDR``) and from traces."""
        graph: dict[str, set[str]] = defaultdict(set)
        for d in self.deployments:
            for c in d["spec"]["template"]["spec"].get("containers", []):
                for e in c.get("env") or []:
                    val = str(e.get("value", ""))
                    if e["name"].endswith("_ADDR") and ":" in val:
                        graph[d["metadata"]["name"]].add(self.service_component(val.rpartition(":")[0]))
        return graph

    def template_of(self, deployment: str) -> dict[str, Any] | None:
        d = next((x for x in self.deployments if x["metadata"]["name"] == deployment), None)
        return d["spec"]["template"] if d else None

    def container_env(self, deployment: str) -> dict[str, str]:
        t = self.template_of(deployment)
        if not t:
            return {}
        return {e["name"]: str(e.get("value", "")) for c in t["spec"].get("containers", [])
                for e in c.get("env") or []}


def _f(source: str, subject: str, summary: str, component: str | None, signal: str,
       severity: str = "warning", evidence: list[str] | None = None, **data: Any) -> Finding:
    return Finding(source=source, subject=subject, summary=summary, component=component, signal=signal,
                   severity=severity, evidence=evidence or [], data=data)  # type: ignore[arg-type]


# --- pods ------------------------------------------------------------------------------------
@analyzer("pods")
def pods(v: View) -> list[Finding]:
    out = []
    for p in v.pods:
        name, comp = p["metadata"]["name"], v.deployment_of_pod(p)
        st = p.get("status", {})
        ref = f"Pod/{name}"
        for cond in st.get("conditions", []):
            if cond.get("type") == "PodScheduled" and cond.get("status") == "False":
                out.append(_f("pods", ref, f"{name} cannot be scheduled: {cond.get('message', '')}", comp,
                              "Unschedulable", "critical", [f"pod:{name}:conditions"], message=cond.get("message", "")))
        for cs in st.get("containerStatuses", []):
            waiting = cs.get("state", {}).get("waiting")
            last = (cs.get("lastState") or {}).get("terminated")
            if waiting and waiting.get("reason") not in (None, "ContainerCreating"):
                out.append(_f("pods", ref, f"{name}/{cs['name']} waiting: {waiting['reason']} "
                                           f"{waiting.get('message', '')[:160]}", comp, waiting["reason"], "critical",
                              [f"pod:{name}:status"], restarts=cs.get("restartCount", 0)))
            if last and last.get("reason") == "OOMKilled":
                out.append(_f("pods", ref, f"{name}/{cs['name']} was OOMKilled (exit 137)", comp, "OOMKilled",
                              "critical", [f"pod:{name}:lastState"]))
            elif last and last.get("exitCode") == 128:
                out.append(_f("pods", ref, f"{name}/{cs['name']} failed to start (exit 128)", comp, "StartError",
                              "critical", [f"pod:{name}:lastState"]))
            if "running" in cs.get("state", {}) and not cs.get("ready"):
                out.append(_f("pods", ref, f"{name}/{cs['name']} is running but not Ready", comp, "NotReady",
                              "warning", [f"pod:{name}:status"]))
    return out


# --- events ----------------------------------------------------------------------------------
@analyzer("events")
def events(v: View) -> list[Finding]:
    out, seen = [], set()
    for e in v.events:
        if e.get("type") != "Warning":
            continue
        obj = e.get("involvedObject", {})
        key = (obj.get("name"), e.get("reason"))
        if key in seen:
            continue
        seen.add(key)
        comp = component_of_pod(obj.get("name", "")) if obj.get("kind") == "Pod" else obj.get("name")
        if obj.get("kind") == "Pod":
            pod = next((p for p in v.pods if p["metadata"]["name"] == obj.get("name")), None)
            if pod:
                comp = v.deployment_of_pod(pod)
        msg = e.get("message", "")
        signal = e.get("reason", "")
        if signal == "Failed" and "pull image" in msg:
            signal = "ImagePullFailed"
        elif signal == "Unhealthy" and msg.startswith("Readiness"):
            signal = "ReadinessProbeFailed"
        elif signal == "Unhealthy" and msg.startswith("Liveness"):
            signal = "LivenessProbeFailed"
        out.append(_f("events", f"{obj.get('kind')}/{obj.get('name')}", f"{e.get('reason')}: {msg[:200]}", comp,
                      signal, "warning", [f"event:{e['metadata']['name']}"], message=msg, count=e.get("count", 1)))
    return out


# --- deployments and rollouts ----------------------------------------------------------------
def _template_diff(old: dict[str, Any], new: dict[str, Any]) -> dict[str, tuple[Any, Any]]:
    diff: dict[str, tuple[Any, Any]] = {}
    oc = (old.get("spec", {}).get("containers") or [{}])[0]
    nc = (new.get("spec", {}).get("containers") or [{}])[0]
    for key in ("image", "command", "args", "env", "resources", "readinessProbe", "livenessProbe", "ports"):
        if oc.get(key) != nc.get(key):
            diff[f"containers[0].{key}"] = (oc.get(key), nc.get(key))
    for key in ("nodeSelector", "tolerations", "affinity"):
        if old.get("spec", {}).get(key) != new.get("spec", {}).get(key):
            diff[key] = (old.get("spec", {}).get(key), new.get("spec", {}).get(key))
    return diff


def _peer_port(v: View, deployment: str, var: str, host: str, ports: list[int]) -> int:
    """The port other Deployments use to reach ``host`` (peer consistency), else the Service's first."""
    seen: Counter[int] = Counter()
    for d in v.deployments:
        if d["metadata"]["name"] == deployment:
            continue
        for val in v.container_env(d["metadata"]["name"]).values():
            h, _, port = val.rpartition(":")
            if h == host and port.isdigit() and int(port) in ports:
                seen[int(port)] += 1
    return seen.most_common(1)[0][0] if seen else ports[0]


@analyzer("deployments")
def deployments(v: View) -> list[Finding]:
    out = []
    rev = "deployment.kubernetes.io/revision"
    selected = {v.service_component(s["metadata"]["name"]) for s in v.services}
    node_labels = [n["metadata"].get("labels", {}) for n in v.nodes]
    for d in v.deployments:
        name = d["metadata"]["name"]
        spec, st = d["spec"], d.get("status", {})
        ref = f"Deployment/{name}"
        desired = int(spec.get("replicas", 1))
        if desired == 0 and name in selected:
            out.append(_f("deployments", ref, f"{name} has 0 replicas but Service {name} routes traffic to it",
                          name, "ScaledToZero", "critical", [f"deployment:{name}:spec.replicas"]))
        avail = st.get("availableReplicas", 0)
        if avail < desired:
            out.append(_f("deployments", ref, f"{name}: {avail}/{desired} replicas available", name,
                          "ReplicasUnavailable", "warning", [f"deployment:{name}:status"], available=avail))
        tmpl = spec["template"]
        ps = tmpl["spec"]
        sel = ps.get("nodeSelector") or {}
        if sel and not any(all(nl.get(k) == val for k, val in sel.items()) for nl in node_labels):
            out.append(_f("deployments", ref, f"{name}: nodeSelector {sel} matches no node", name,
                          "NodeSelectorMatchesNoNode", "critical", [f"deployment:{name}:nodeSelector"], selector=sel))
        c = (ps.get("containers") or [{}])[0]
        ports = {int(p["containerPort"]) for p in c.get("ports", []) if "containerPort" in p}
        probe = c.get("readinessProbe") or {}
        handler = probe.get("tcpSocket") or probe.get("httpGet") or {}
        if handler and ports and str(handler.get("port")).isdigit() and int(handler["port"]) not in ports:
            out.append(_f("deployments", ref, f"{name}: readinessProbe checks port {handler['port']}, container "
                                              f"listens on {sorted(ports)}", name, "ProbePortMismatch", "warning",
                          [f"deployment:{name}:readinessProbe"], probe_port=handler["port"], ports=sorted(ports)))
        cmd = c.get("command")
        peers = [x for x in v.deployments if x is not d and (x["spec"]["template"]["spec"].get("containers") or [{}])[0]
                 .get("image") == c.get("image")]
        conv = [x for x in peers if (x["spec"]["template"]["spec"]["containers"][0].get("command") or [None])[0]
                == x["metadata"]["name"]]
        if cmd and peers and len(conv) == len(peers) and cmd[0] != name:
            out.append(_f("deployments", ref, f"{name} runs command {cmd} but every other Deployment of image "
                                              f"{c.get('image')} runs its own name", name, "CommandMismatch",
                          "critical", [f"deployment:{name}:command"], expected=[name], actual=cmd))
        svc_ports = {s["metadata"]["name"]: [int(p["port"]) for p in s["spec"].get("ports", [])] for s in v.services}
        for e in c.get("env") or []:
            val = str(e.get("value", ""))
            host, _, port = val.rpartition(":")
            if e["name"].endswith("_ADDR") and host in svc_ports and port.isdigit() \
                    and int(port) not in svc_ports[host]:
                out.append(_f("deployments", ref, f"{name}: env {e['name']}={val} but Service {host} exposes "
                                                  f"ports {sorted(svc_ports[host])}", name, "EnvAddressPortMismatch",
                              "critical", [f"deployment:{name}:env.{e['name']}"], var=e["name"], host=host,
                              expected=f"{host}:{_peer_port(v, name, e['name'], host, svc_ports[host])}"))
        # rollout history
        owned = [rs for rs in v.replicasets if any(r.get("uid") == d["metadata"].get("uid")
                                                   for r in rs["metadata"].get("ownerReferences", []))]
        owned.sort(key=lambda rs: int(rs["metadata"].get("annotations", {}).get(rev, "0")))
        if len(owned) >= 2:
            cur, prev = owned[-1], owned[-2]
            diff = _template_diff(prev["spec"]["template"], cur["spec"]["template"])
            cur_ready = cur.get("status", {}).get("readyReplicas", 0)
            if diff and cur_ready < max(1, cur["spec"].get("replicas", 1)):
                changed = ", ".join(sorted(diff))
                out.append(_f("deployments", ref, f"{name}: revision {cur['metadata']['annotations'].get(rev)} "
                                                  f"changed {changed} and its pods are not ready", name,
                              "BadRollout", "critical", [f"replicaset:{cur['metadata']['name']}"],
                              changed=sorted(diff), diff={k: [str(a)[:120], str(b)[:120]] for k, (a, b) in diff.items()},
                              previous_rs=prev["metadata"]["name"]))
    return out


# --- services --------------------------------------------------------------------------------
@analyzer("services")
def services(v: View) -> list[Finding]:
    out = []
    for s in v.services:
        name = s["metadata"]["name"]
        comp = v.service_component(name)
        tmpl = v.template_of(comp)
        ports = set()
        if tmpl:
            ports = {int(p["containerPort"]) for c in tmpl["spec"].get("containers", []) for p in c.get("ports", [])}
        for i, sp in enumerate(s["spec"].get("ports", [])):
            tp = sp.get("targetPort", sp.get("port"))
            if ports and isinstance(tp, int) and tp not in ports:
                out.append(_f("services", f"Service/{name}", f"Service {name} port {sp.get('port')} targets "
                                                            f"{tp}, but pods listen on {sorted(ports)}", name,
                              "TargetPortMismatch", "critical", [f"service:{name}:spec.ports[{i}]"],
                              index=i, target_port=tp, container_ports=sorted(ports)))
        ep = v.endpoints.get(name, {})
        ready = sum(len(ss.get("addresses") or []) for ss in ep.get("subsets") or [])
        if ready == 0:
            out.append(_f("services", f"Service/{name}", f"Service {name} has no ready endpoints", comp,
                          "NoEndpoints", "critical", [f"endpoints:{name}"]))
    return out


# --- network policies and chaos --------------------------------------------------------------
@analyzer("policies")
def policies(v: View) -> list[Finding]:
    out = []
    for pol in v.cluster.list("NetworkPolicy", v.namespace):
        if pol.get("kind") == "Omitted":
            continue
        spec = pol.get("spec", {})
        labels = (spec.get("podSelector") or {}).get("matchLabels") or {}
        targets = [d["metadata"]["name"] for d in v.deployments
                   if all(d["spec"]["template"].get("metadata", {}).get("labels", {}).get(k) == val
                          for k, val in labels.items())]
        deny_all = "Ingress" in (spec.get("policyTypes") or ["Ingress"]) and not spec.get("ingress")
        for t in targets:
            out.append(_f("policies", f"NetworkPolicy/{pol['metadata']['name']}",
                          f"NetworkPolicy {pol['metadata']['name']} {'denies all ingress to' if deny_all else 'restricts ingress to'} {t}",
                          t, "IngressDenied" if deny_all else "IngressRestricted", "critical" if deny_all else "info",
                          [f"networkpolicy:{pol['metadata']['name']}"], policy=pol["metadata"]["name"]))
    return out


@analyzer("chaos")
def chaos(v: View) -> list[Finding]:
    out = []
    for kind in CHAOS_KINDS:
        for ch in v.cluster.list(kind, v.namespace):
            if ch.get("kind") == "Omitted":
                continue
            sel = (ch.get("spec", {}).get("selector") or {}).get("labelSelectors") or {}
            targets = [d["metadata"]["name"] for d in v.deployments
                       if sel and all(d["spec"]["template"].get("metadata", {}).get("labels", {}).get(k) == val
                                      for k, val in sel.items())]
            for t in targets or [None]:
                out.append(_f("chaos", f"{kind}/{ch['metadata']['name']}",
                              f"{kind} {ch['metadata']['name']} ({ch.get('spec', {}).get('action')}) acts on {t}",
                              t, kind, "critical", [f"{kind.lower()}:{ch['metadata']['name']}"],
                              kind=kind, name=ch["metadata"]["name"], action=ch.get("spec", {}).get("action")))
    return out


# --- logs ------------------------------------------------------------------------------------
_LOG_RULES: list[tuple[re.Pattern[str], str, str]] = [
    (re.compile(r"not authorized on (?P<db>[\w.-]+) to execute"), "DBNotAuthorized", "MONGO_ADDR"),
    (re.compile(r"SASL authentication step: Authentication failed"), "DBAuthFailed", "MONGO_ADDR"),
    (re.compile(r"no reachable servers"), "DBUnreachable", "MONGO_ADDR"),
    (re.compile(r"memmcached error"), "CacheError", "MEMC_ADDR"),
    (re.compile(r"failed register"), "RegistryUnreachable", "CONSUL_ADDR"),
    (re.compile(r"executable file not found"), "ExecNotFound", ""),
    (re.compile(r"panic: runtime error"), "RuntimePanic", ""),
    (re.compile(r"call to (?P<callee>[\w-]+) failed: (?P<err>.*)"), "DownstreamError", ""),
    (re.compile(r"Read target port: (?P<port>\d+)"), "ListenPort", ""),
]


def _crashed_recently(pod: dict[str, Any], now: float, window_s: float = 300.0) -> bool:
    """Not Ready now, or a container terminated within the window: its previous log explains why."""
    from datetime import datetime

    for cs in pod.get("status", {}).get("containerStatuses", []):
        if not cs.get("restartCount"):
            continue
        if not cs.get("ready"):
            return True
        finished = ((cs.get("lastState") or {}).get("terminated") or {}).get("finishedAt")
        if finished and now - datetime.fromisoformat(finished.replace("Z", "+00:00")).timestamp() <= window_s:
            return True
    return False


@analyzer("logs")
def logs(v: View) -> list[Finding]:
    out = []
    for p in v.pods:
        name = p["metadata"]["name"]
        if not p["spec"].get("nodeName"):
            continue
        comp = v.deployment_of_pod(p)
        env = v.container_env(comp)
        restarted = _crashed_recently(p, v.cluster.now())
        since = v.cluster.now() - LOG_WINDOW_S
        try:
            lines = v.cluster.logs(name, v.namespace, tail=LOG_TAIL, since=since)
            if restarted:  # like `kubectl logs --previous`: why did the last instance die?
                lines = v.cluster.logs(name, v.namespace, tail=LOG_TAIL, since=since, previous=True) + lines
        except Exception:
            continue
        hits: Counter[tuple[str, str]] = Counter()
        samples: dict[tuple[str, str], tuple[str, dict[str, str]]] = {}
        for line in lines:
            for rx, signal, env_key in _LOG_RULES:
                m = rx.search(line)
                if not m:
                    continue
                groups = m.groupdict()
                if signal == "ListenPort":
                    ports = {int(pp["containerPort"]) for c in p["spec"]["containers"] for pp in c.get("ports", [])}
                    if ports and int(groups["port"]) not in ports:
                        key = ("ListenPortMismatch", comp)
                        hits[key] += 1
                        samples[key] = (line, {"port": groups["port"], "container_ports": str(sorted(ports))})
                    continue
                target = comp
                if env_key and env.get(env_key):
                    target = v.service_component(env[env_key].rpartition(":")[0])
                if signal == "DownstreamError":
                    target = v.service_component(groups["callee"])
                key = (signal, target)
                hits[key] += 1
                samples[key] = (line, groups)
        for (signal, target), n in hits.items():
            line, groups = samples[(signal, target)]
            out.append(_f("logs", f"Pod/{name}", f"{name} logs ({n}x): {redact_text(line)[-220:]}", target, signal,
                          "critical" if signal != "DownstreamError" else "warning", [f"logs:{name}"],
                          reporter=comp, count=n, **{k: str(val) for k, val in groups.items() if val}))
    return out


# --- traces ----------------------------------------------------------------------------------
@analyzer("traces")
def traces(v: View) -> list[Finding]:
    """Error and latency call graph from recent traces: edge caller->callee with error and delay share."""
    trs = v.cluster.traces(None, since=v.cluster.now() - 120, limit=60)
    edges: dict[tuple[str, str], list[float]] = defaultdict(lambda: [0, 0, 0.0, 0, 0.0])
    for tr in trs:
        by_id = {s["spanID"]: s for s in tr["spans"]}
        children = defaultdict(list)
        for s in tr["spans"]:
            children[s.get("parentSpanID")].append(s)
        for s in tr["spans"]:
            if s.get("kind") != "CLIENT":
                continue
            e = edges[(s["service"], s.get("peer", ""))]
            e[0] += 1
            server = next((c for c in children.get(s["spanID"], []) if c.get("kind") == "SERVER"), None)
            if s.get("status") == "ERROR":
                # the error is the callee's own when its children did not fail
                if server is None:
                    e[1] += 1  # never reached the callee
                elif not any(c.get("status") == "ERROR" for c in children.get(server["spanID"], [])):
                    e[3] += 1
            if server is not None:
                e[2] += max(0.0, s["duration_ms"] - server["duration_ms"])
                e[4] += server["duration_ms"]
        del by_id
    out = []
    for (caller, callee), (n, unreached, net_ms, own_err, server_ms) in edges.items():
        if not n:
            continue
        comp = v.service_component(callee)
        if unreached / n > 0.2:
            out.append(_f("traces", f"edge {caller}->{callee}", f"{unreached}/{n} calls {caller}->{callee} never "
                                                               f"reached {callee}", comp, "CalleeUnreachable",
                          "critical", [f"traces:{caller}->{callee}"], caller=caller, share=unreached / n))
        if own_err / n > 0.2:
            out.append(_f("traces", f"edge {caller}->{callee}", f"{own_err}/{n} calls to {callee} failed inside "
                                                               f"{callee} (its own calls succeeded)", comp,
                          "CalleeErrors", "warning", [f"traces:{caller}->{callee}"], caller=caller))
        if net_ms / n > 500:
            out.append(_f("traces", f"edge {caller}->{callee}", f"calls {caller}->{callee} spend {net_ms / n:.0f} ms "
                                                               f"on the network path (server time "
                                                               f"{server_ms / n:.0f} ms)", comp, "NetworkLatency",
                          "critical", [f"traces:{caller}->{callee}"], caller=caller, delay_ms=net_ms / n))
    return out


# --- alerts ----------------------------------------------------------------------------------
@analyzer("alerts")
def alerts(v: View) -> list[Finding]:
    out = []
    for a in v.alerts:
        labels = a.get("labels", {})
        if labels.get("alertname") in ("Watchdog", "InfoInhibitor"):
            continue
        comp = alert_component(labels)
        pod = next((p for p in v.pods if p["metadata"]["name"] == labels.get("pod")), None)
        if pod:
            comp = v.deployment_of_pod(pod)
        out.append(_f("alerts", f"Alert/{labels.get('alertname')}",
                      f"{labels.get('alertname')} firing for {comp}: "
                      f"{a.get('annotations', {}).get('summary', '')}", comp, labels.get("alertname", ""),
                      labels.get("severity", "warning") if labels.get("severity") in ("info", "warning", "critical")
                      else "warning", [f"alert:{a.get('fingerprint', '')}"]))
    return out


def run_all(cluster: Cluster, namespace: str, only: list[str] | None = None) -> tuple[View, list[Finding]]:
    view = View.read(cluster, namespace)
    findings: list[Finding] = []
    for name, fn in REGISTRY.items():
        if only and name not in only:
            continue
        findings.extend(fn(view))
    return view, findings


STATIC_ANALYZERS = ("services", "deployments", "policies", "chaos")


def latent_issues(cluster: Cluster, namespace: str) -> list[Finding]:
    """Critical configuration findings that need no traffic to show (k8sgpt-style static checks)."""
    _view, found = run_all(cluster, namespace, only=list(STATIC_ANALYZERS))
    return [f for f in found if f.severity == "critical" and f.signal not in ("NoEndpoints",)]


def assess(cluster: Cluster, ctx: Any, namespace: str) -> Any:
    """Health from telemetry, with latent critical misconfigurations added to the unhealthy set U."""
    from stratus.tools.health import measure

    report = measure(cluster, ctx, namespace)
    latent = sorted({f"latent:{f.signal}:{f.component}" for f in latent_issues(cluster, namespace)})
    if latent:
        report.unhealthy = sorted(set(report.unhealthy) | set(latent))
    return report
