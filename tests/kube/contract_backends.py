"""The two backends the contract suite runs on, behind one small test-side face.

``Backend`` wraps a Cluster with what a test needs beyond the protocol: making a Node (STRATUS may
not create Nodes), waiting until the controllers have caught up (the twin advances its clock, the real
control plane is polled), and the namespace the test writes in. ``running_backend`` gives the pair
whose pods run: the twin with its own kubelet, and the real control plane with the twin as its kubelet
(``KubeletAgent``) on Ready nodes.
"""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from kube_controlplane import eventually
from kubernetes import client as k8s
from kubernetes import config as k8s_config
from kubernetes.dynamic import DynamicClient

from stratus.cluster.actions import Action, ActionResult
from stratus.cluster.base import Cluster
from stratus.twin.cluster import TwinCluster
from stratus.twin.kubelet_agent import KubeletAgent

KNOWN_IMAGE = "memcached:1.6.7"  # in the twin's registry: its kubelet and the KubeletAgent both run it


@dataclass
class Backend:
    name: str
    cluster: Cluster
    namespace: str
    make_node: Callable[[str], None]
    nodes: list[str] = field(default_factory=list)  # the Ready nodes whose kubelet is the twin

    def create(self, manifest: dict[str, Any]) -> None:
        res = self.cluster.apply(Action(verb="create", kind=manifest["kind"], name=manifest["metadata"]["name"],
                                        namespace=self.namespace, params={"manifest": manifest}))
        assert res.ok, res.message

    def act(self, verb: str, kind: str, name: str, dry_run: bool = False, **params: Any) -> ActionResult:
        ns = None if kind == "Node" else self.namespace
        return self.cluster.apply(Action(verb=verb, kind=kind, name=name, namespace=ns,  # type: ignore[arg-type]
                                         params=params), dry_run=dry_run)

    def eventually(self, check: Callable[[], Any], what: str, timeout_s: float = 60.0) -> Any:
        """Poll ``check`` until truthy; on the twin each poll advances the simulated clock by one tick."""
        tick = (lambda: self.cluster.wait(5.0)) if self.name == "twin" else (lambda: time.sleep(0.2))
        return eventually(check, timeout_s, f"{what} on {self.name}", tick)


def project(actual: Any, expected: Any) -> Any:
    """``actual`` cut down to the keys ``expected`` names (lists element-wise), to compare past server defaults."""
    if isinstance(expected, dict) and isinstance(actual, dict):
        return {k: project(actual[k], v) for k, v in expected.items() if k in actual}
    if isinstance(expected, list) and isinstance(actual, list) and len(expected) == len(actual):
        return [project(a, e) for a, e in zip(actual, expected, strict=True)]
    return actual


@pytest.fixture(params=["twin", "kube"])
def backend(request: pytest.FixtureRequest) -> Iterator[Backend]:
    """The twin, or a KubeCluster over a fresh namespace of the real control plane (no kubelet: pods stay
    Pending there). Nodes the test makes are deleted afterwards."""
    if request.param == "twin":
        twin = TwinCluster()

        def twin_node(name: str) -> None:
            twin.world.store.create({"apiVersion": "v1", "kind": "Node", "metadata": {"name": name}, "spec": {}})

        yield Backend("twin", twin, twin.namespace, twin_node)
        return
    kube = request.getfixturevalue("kube")
    admin: DynamicClient = request.getfixturevalue("admin")
    core, nodes = k8s.CoreV1Api(admin.client), []

    def kube_node(name: str) -> None:
        core.create_node({"metadata": {"name": name}})
        nodes.append(name)

    yield Backend("kube", kube, kube.namespace, kube_node)
    for n in nodes:
        core.delete_node(n)


@pytest.fixture(params=["twin", "kube"])
def running_backend(request: pytest.FixtureRequest) -> Iterator[Backend]:
    """A backend whose pods get scheduled and run: the twin, or the real control plane with the twin as
    its kubelet on two Ready nodes (the nodes are deleted afterwards, so later tests do not see them)."""
    if request.param == "twin":
        twin = TwinCluster()
        yield Backend("twin", twin, twin.namespace, lambda name: None, list(twin.world.app.nodes))
        return
    kube = request.getfixturevalue("kube")
    cfg = str(request.getfixturevalue("admin_kubeconfig"))
    agent = KubeletAgent(k8s_config.new_client_from_config(config_file=cfg), nodes=2,
                         prefix=f"run-{uuid.uuid4().hex[:6]}", interval_s=0.3)
    agent.start()
    core = k8s.CoreV1Api(request.getfixturevalue("admin").client)
    try:
        # the node lifecycle controller lifts its not-ready taint once the node's Lease is fresh
        eventually(lambda: all(not core.read_node(n).spec.taints for n in agent.nodes), 60,
                   "the twin's nodes untainted (Ready)")
        yield Backend("kube", kube, kube.namespace, lambda name: None, list(agent.nodes))
    finally:
        agent.stop()
        for n in agent.nodes:
            core.delete_node(n)


def scheduling_message(msg: str) -> tuple[list[str], list[str]]:
    """A scheduler's "0/N nodes are available: ..." message as its sorted reasons without node counts
    (the twin and the test cluster have different numbers of nodes): (filter reasons, preemption reasons)."""
    m = re.fullmatch(r"0/\d+ nodes are available: (.*)\. preemption: 0/\d+ nodes are available: (.*)\.", msg)
    assert m, f"not a scheduler message: {msg!r}"
    return tuple(sorted(re.sub(r"^\d+ ", "", r) for r in part.split(", ")) for part in m.groups())  # type: ignore[return-value]
