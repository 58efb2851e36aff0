"""Reference analyzers on twin manifests edited the way people break them: Service selectors and
ports, probe ports, addresses in env and ConfigMaps, ConfigMap/Secret/PVC/ServiceAccount references,
and scheduler messages split into causes."""

from __future__ import annotations

from twin_edit import FewServices, NoSecrets, add, edit, pod_spec, run, signals, twin

from stratus.tools.analyzers import ANALYZERS, REGISTRY, View
from stratus.tools.analyzers.addresses import parse_address, service_of_host
from stratus.tools.analyzers.scheduling import parse_message

NEW = ("references", "addresses", "config_refs", "scheduling", "workloads", "jobs", "ingress", "storage",
       "nodes", "autoscaling", "disruption", "endpoint_slices")


def test_a_healthy_twin_gives_the_new_analyzers_nothing_to_say() -> None:
    c = twin()
    c.world.warm_up(60)
    view = View.read(c, c.namespace)
    assert set(NEW) <= set(ANALYZERS)
    assert {name: REGISTRY[name](view) for name in NEW} == {name: [] for name in NEW}


def test_a_service_selector_no_pod_carries_names_the_closest_workload() -> None:
    c = twin()
    edit(c, "Service", "geo", lambda s: s["spec"].update(selector={"io.kompose.service": "geo-v2"}))
    found = run(c, "references")
    assert signals(found) == [("SelectorMatchesNoPods", "geo")]
    assert "Deployment geo has io.kompose.service=geo (wants geo-v2)" in found[0].data["closest"]


def test_a_named_target_port_no_container_declares_is_reported() -> None:
    c = twin()
    edit(c, "Service", "rate", lambda s: s["spec"]["ports"][0].update(targetPort="grpc"))
    found = run(c, "references")
    assert signals(found) == [("TargetPortNotExposed", "rate")]
    assert found[0].data["target_port"] == "grpc"
    edit(c, "Deployment", "rate", lambda d: d["spec"]["template"]["spec"]["containers"][0]["ports"][0]
         .update(name="grpc"))
    assert signals(run(c, "references")) == [("TargetPortNotExposed", "rate")]  # running pods still lack it
    for p in c.list("Pod", c.namespace):
        if p["metadata"]["name"].startswith("rate-"):
            edit(c, "Pod", p["metadata"]["name"], lambda q: q["spec"]["containers"][0]["ports"][0].update(name="grpc"))
    assert [f for f in run(c, "references") if f.signal == "TargetPortNotExposed"] == []


def test_a_liveness_probe_on_an_undeclared_port_is_reported() -> None:
    c = twin()
    port = pod_spec(c, "profile")["containers"][0]["ports"][0]["containerPort"]
    edit(c, "Deployment", "profile", lambda d: d["spec"]["template"]["spec"]["containers"][0].update(
        livenessProbe={"tcpSocket": {"port": port + 1}}))
    found = run(c, "references")
    assert signals(found) == [("ProbePortNotDeclared", "profile")]
    assert found[0].data["probe"] == "livenessProbe" and found[0].data["port"] == port + 1


def test_addresses_are_parsed_from_host_port_urls_and_cluster_names() -> None:
    assert parse_address("mongodb-geo:27017") == ("mongodb-geo", 27017)
    assert parse_address("http://frontend.ns.svc.cluster.local/api") == ("frontend.ns.svc.cluster.local", 80)
    assert parse_address("a b") is None and parse_address("/var/run") is None
    assert service_of_host("frontend.ns.svc.cluster.local", "ns") == ("frontend", True)
    assert service_of_host("frontend.other.svc", "ns") == ("", True)
    assert service_of_host("api.example.com", "ns") == ("", False)


def test_env_and_configmap_addresses_are_resolved_against_services() -> None:
    c = twin()
    add(c, "ConfigMap", "geo-config", data={"DB": "mongodb-geo:27018", "config.json": '{"consul": "consul:8501"}'})

    def wire(d: dict) -> None:
        spec = d["spec"]["template"]["spec"]
        spec["containers"][0].setdefault("env", []).extend([
            {"name": "CACHE_ADDR", "value": "memcached-gone:11211"},
            {"name": "DB_URL", "valueFrom": {"configMapKeyRef": {"name": "geo-config", "key": "DB"}}}])
        spec["volumes"] = [{"name": "cfg", "configMap": {"name": "geo-config"}}]
    edit(c, "Deployment", "geo", wire)
    found = {(f.signal, f.data["host"], f.data["port"]) for f in run(c, "addresses")}
    assert found == {("AddressUnresolved", "memcached-gone", 11211), ("AddressPortNotServed", "mongodb-geo", 27018),
                     ("AddressPortNotServed", "consul", 8501)}


def test_a_truncated_service_list_never_makes_an_address_unresolved() -> None:
    c = FewServices(seed=0)
    edit(c, "Deployment", "geo", lambda d: d["spec"]["template"]["spec"]["containers"][0].setdefault("env", [])
         .append({"name": "CACHE_ADDR", "value": "memcached-gone:11211"}))
    view = View.read(c, c.namespace)
    assert "Service" in view.truncated and REGISTRY["addresses"](view) == []


def test_missing_configmap_key_pvc_and_service_account_are_named() -> None:
    c = twin()
    add(c, "ConfigMap", "rate-config", data={"MODE": "fast"})
    add(c, "ConfigMap", "leftover", data={"X": "1"})

    def refs(d: dict) -> None:
        spec = d["spec"]["template"]["spec"]
        spec["serviceAccountName"] = "rate-sa"
        spec["volumes"] = [{"name": "data", "persistentVolumeClaim": {"claimName": "rate-data"}},
                           {"name": "extra", "configMap": {"name": "rate-extra", "optional": True}}]
        spec["containers"][0]["env"] = [{"name": "MODE", "valueFrom": {"configMapKeyRef": {
            "name": "rate-config", "key": "mode"}}}]
    edit(c, "Deployment", "rate", refs)
    found = {(f.signal, f.severity, f.data.get("name")) for f in run(c, "config_refs")}
    assert found == {("MissingServiceAccount", "critical", "rate-sa"),
                     ("MissingPersistentVolumeClaim", "critical", "rate-data"),
                     ("MissingConfigMap", "info", "rate-extra"),
                     ("MissingConfigMapKey", "critical", "rate-config"),
                     ("UnusedConfigMap", "info", "leftover")}


def test_secret_references_are_checked_by_name_or_said_unverified() -> None:
    def refs(d: dict) -> None:
        spec = d["spec"]["template"]["spec"]
        spec["imagePullSecrets"] = [{"name": "registry-cred"}]
        spec["containers"][0]["env"] = [{"name": "PW", "valueFrom": {"secretKeyRef": {"name": "db-pw", "key": "pw"}}}]
    c = twin()
    add(c, "Secret", "db-pw", data={"pw": "aGVsbG8="})
    edit(c, "Deployment", "user", refs)
    view = View.read(c, c.namespace)
    found = REGISTRY["config_refs"](view)
    assert signals(found) == [("MissingSecret", "user")] and found[0].data["name"] == "registry-cred"
    assert view.listed["Secret"] == [{"kind": "Secret", "metadata": {"name": "db-pw"}}]  # no data kept

    refused = NoSecrets(seed=0)
    edit(refused, "Deployment", "user", refs)
    found = run(refused, "config_refs")
    assert signals(found) == [("ReferencesUnverified", None)]
    assert "missing permission `list` on secrets" in found[0].data["reason"]
    assert len(found[0].data["references"]) == 2


def test_scheduler_messages_split_into_causes() -> None:
    msg = ("0/4 nodes are available: 1 Insufficient cpu, 1 Insufficient memory, 1 node(s) had untolerated taint "
           "{dedicated: db}, 1 node(s) didn't match Pod's node affinity/selector. preemption: 0/4 nodes are "
           "available: 4 Preemption is not helpful for scheduling.")
    causes = [(p["cause"], p["nodes"], p.get("resource") or p.get("taint")) for p in parse_message(msg)]
    assert causes == [("InsufficientResources", 1, "cpu"), ("InsufficientResources", 1, "memory"),
                      ("UntoleratedTaint", 1, "{dedicated: db}"), ("NodeSelectorMismatch", 1, None)]
    vol = parse_message("0/3 nodes are available: pod has unbound immediate PersistentVolumeClaims. preemption: x")
    assert [p["cause"] for p in vol] == ["VolumeBinding"]


def test_failed_scheduling_events_become_one_finding_per_workload_and_cause() -> None:
    c = twin()
    pods = [p for p in c.list("Pod", c.namespace) if p["metadata"]["name"].startswith("search-")]
    for p in pods:
        c.world.store.event(p, "Warning", "FailedScheduling",
                            "0/3 nodes are available: 3 Insufficient memory. preemption: 0/3 nodes are available.",
                            "default-scheduler")
    found = run(c, "scheduling")
    assert signals(found) == [("SchedulingInsufficientResources", "search")]
    assert found[0].data["resource"] == "memory" and found[0].data["nodes"] == 3
    assert len(found[0].data["pods"]) == len(pods)
