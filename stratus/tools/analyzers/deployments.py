"""Deployment analyzer: replicas, node selectors, probes, commands and env addresses, rollout history.

Each check compares a Deployment with what the rest of the namespace says it should be (its Service,
its nodes, its peers of the same image, its previous ReplicaSet).
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from stratus.state import Finding
from stratus.tools.analyzers.admission import policed as policed_workloads
from stratus.tools.analyzers.registry import analyzer, finding
from stratus.tools.analyzers.view import View


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
    policed = policed_workloads(v)
    for d in v.deployments:
        name = d["metadata"]["name"]
        spec, st = d["spec"], d.get("status", {})
        ref = f"Deployment/{name}"
        desired = int(spec.get("replicas", 1))
        if desired == 0 and name in selected:
            out.append(finding("deployments", ref, f"{name} has 0 replicas but Service {name} routes traffic to it",
                               name, "ScaledToZero", "critical", [f"deployment:{name}:spec.replicas"]))
        avail = st.get("availableReplicas", 0)
        if avail < desired:
            out.append(finding("deployments", ref, f"{name}: {avail}/{desired} replicas available", name,
                               "ReplicasUnavailable", "warning", [f"deployment:{name}:status"], available=avail))
        tmpl = spec["template"]
        ps = tmpl["spec"]
        sel = ps.get("nodeSelector") or {}
        if sel and not any(all(nl.get(k) == val for k, val in sel.items()) for nl in node_labels):
            out.append(finding("deployments", ref, f"{name}: nodeSelector {sel} matches no node", name,
                               "NodeSelectorMatchesNoNode", "critical", [f"deployment:{name}:nodeSelector"], selector=sel))
        c = (ps.get("containers") or [{}])[0]
        ports = {int(p["containerPort"]) for p in c.get("ports", []) if "containerPort" in p}
        probe = c.get("readinessProbe") or {}
        handler = probe.get("tcpSocket") or probe.get("httpGet") or {}
        if handler and ports and str(handler.get("port")).isdigit() and int(handler["port"]) not in ports:
            out.append(finding("deployments", ref, f"{name}: readinessProbe checks port {handler['port']}, container "
                                                   f"listens on {sorted(ports)}", name, "ProbePortMismatch", "warning",
                               [f"deployment:{name}:readinessProbe"], probe_port=handler["port"], ports=sorted(ports)))
        cmd = c.get("command")
        peers = [x for x in v.deployments if x is not d and (x["spec"]["template"]["spec"].get("containers") or [{}])[0]
                 .get("image") == c.get("image")]
        conv = [x for x in peers if (x["spec"]["template"]["spec"]["containers"][0].get("command") or [None])[0]
                == x["metadata"]["name"]]
        if cmd and peers and len(conv) == len(peers) and cmd[0] != name:
            out.append(finding("deployments", ref, f"{name} runs command {cmd} but every other Deployment of image "
                                                   f"{c.get('image')} runs its own name", name, "CommandMismatch",
                               "critical", [f"deployment:{name}:command"], expected=[name], actual=cmd))
        svc_ports = {s["metadata"]["name"]: [int(p["port"]) for p in s["spec"].get("ports", [])] for s in v.services}
        for e in c.get("env") or []:
            val = str(e.get("value", ""))
            host, _, port = val.rpartition(":")
            if e["name"].endswith("_ADDR") and host in svc_ports and port.isdigit() \
                    and int(port) not in svc_ports[host]:
                out.append(finding("deployments", ref, f"{name}: env {e['name']}={val} but Service {host} exposes "
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
            # pods that die under a LimitRange default were broken by the policy, not by this rollout
            excused = name in policed and set(diff) == {"containers[0].image"}
            if diff and cur_ready < max(1, cur["spec"].get("replicas", 1)) and not excused:
                changed = ", ".join(sorted(diff))
                out.append(finding("deployments", ref, f"{name}: revision {cur['metadata']['annotations'].get(rev)} "
                                                       f"changed {changed} and its pods are not ready", name,
                                   "BadRollout", "critical", [f"replicaset:{cur['metadata']['name']}"],
                                   changed=sorted(diff), diff={k: [str(a)[:120], str(b)[:120]] for k, (a, b) in diff.items()},
                                   previous_rs=prev["metadata"]["name"]))
    return out
