"""The two backends the contract suite runs on, behind one small test-side face.

``Backend`` wraps a Cluster with what a test needs beyond the protocol: making a Node (STRATUS may
not create Nodes), waiting until the controllers have caught up (the twin advances its clock, the real
control plane is polled), and the namespace the test writes in.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from kube_controlplane import eventually

from stratus.cluster.actions import Action, ActionResult
from stratus.cluster.base import Cluster


@dataclass
class Backend:
    name: str
    cluster: Cluster
    namespace: str
    make_node: Callable[[str], None]

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
