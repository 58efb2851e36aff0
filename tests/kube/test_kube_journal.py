"""The change journal on a real API server: the same poll-and-diff as on the twin, through KubeCluster.

Status churn written by kube-controller-manager (new resourceVersions, same desired state) is no
change; an image update, a selector patch and a delete are, with their fields; the last-known-healthy
manifests are the versions before them. No Prometheus runs here, so health is given to ``observe``.
"""

from __future__ import annotations

from kube_manifests import act, configmap, create, deployment, service
from testkit import eventually

from stratus.cluster.kube import KubeCluster
from stratus.tools.journal import ChangeJournal


def test_the_journal_records_changes_on_a_real_api_server(kube: KubeCluster) -> None:
    ns = kube.namespace
    create(kube, deployment("web", replicas=0))
    create(kube, service("web"))
    create(kube, configmap("web-config", {"MODE": "fast"}))
    # the controller-manager publishes the cluster's CA into every new namespace in its own time: a
    # journal that first polls before that rightly records the ConfigMap's creation, so wait for it
    eventually(lambda: kube.get("ConfigMap", "kube-root-ca.crt", ns), 30, "kube-root-ca.crt in the namespace")
    j = ChangeJournal([ns], healthy_dwell_s=0)
    j.observe(kube, healthy=True)
    eventually(lambda: kube.get("Deployment", "web", ns).get("status", {}).get("observedGeneration") == 1,
               30, "the controller-manager to write the Deployment's status")
    j.observe(kube, healthy=True)
    assert [c for c in j.recent() if c["kind"] in ("Deployment", "Service", "ConfigMap")] == []
    assert j.last_healthy("Service", "web", ns)["spec"]["selector"] == {"app": "web"}

    assert act(kube, "set_image", "Deployment", "web", images={"main": "nginx:1.28"}).ok
    assert act(kube, "patch", "Service", "web", type="merge", patch={"spec": {"selector": {"app": "web2"}}}).ok
    assert act(kube, "delete", "ConfigMap", "web-config").ok
    j.observe(kube, healthy=False)
    changes = {(c["kind"], c["name"]): c for c in j.recent()}
    image = [f for f in changes[("Deployment", "web")]["fields"] if f["field"] == "image"]
    assert [(f["path"], f["before"], f["after"]) for f in image] == [
        ("spec.template.spec.containers[main].image", "nginx:1.27", "nginx:1.28")]
    assert changes[("Service", "web")]["fields"][0]["path"] == "spec.selector.app"
    assert changes[("ConfigMap", "web-config")]["op"] == "delete"
    assert j.onset() is not None
    assert j.last_healthy("Deployment", "web", ns)["spec"]["template"]["spec"]["containers"][0]["image"] == "nginx:1.27"
    assert j.last_healthy("ConfigMap", "web-config", ns)["data"] == {"MODE": "fast"}
    assert "status" not in j.last_healthy("Deployment", "web", ns)
