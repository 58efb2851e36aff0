"""Application catalogue: each app is a YAML file of topology, binaries and workload.

``load_app(name)`` reads the data; ``App.manifests()`` renders the Kubernetes objects the twin starts
from. Adding an app is adding one YAML file here.

Optional keys (HotelReservation's file uses the first four; SocialNetwork and the Astronomy Shop all):
``container_names`` (name templates per component kind, ``{component}`` and ``{short}``), ``app_env``
(env of every application service; ``{addr:C}`` is component C's ``host:port``, ``{self}`` the component),
``store_env`` (data-store kind -> the variable, or [host var, port var], a client reads its address from),
``logs`` (log and error templates per runtime family, see ``twin.services``); per component ``stores``
(data-store components it uses), ``env`` (extra variables), ``service: false`` (no Service object); per
binary ``env`` (extra variables of every container running it) and ``command: false`` (the image's
entrypoint runs it, no ``command`` in the manifest).
"""

from __future__ import annotations

import copy
import re
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import yaml

APPS_DIR = Path(__file__).parent
_ADDR_REF = re.compile(r"\{addr:([a-z0-9-]+)\}")


def available_apps() -> list[str]:
    return sorted(p.stem for p in APPS_DIR.glob("*.yaml"))


@dataclass
class App:
    """One application's data plus helpers the twin uses to build and run it."""

    name: str
    namespace: str
    label_key: str
    entry: str
    load_generator: str
    rps: float
    timeout_ms: float
    nodes: list[str]
    workload: list[dict[str, Any]]
    images: dict[str, dict[str, Any]]
    binaries: dict[str, dict[str, Any]]
    components: dict[str, dict[str, Any]]
    db_users: dict[str, dict[str, Any]] = field(default_factory=dict)
    app_credentials: dict[str, str] = field(default_factory=dict)
    default_image: str = ""
    container_names: dict[str, str] = field(default_factory=dict)
    app_env: dict[str, str] = field(default_factory=dict)
    store_env: dict[str, Any] = field(default_factory=dict)
    logs: dict[str, Any] = field(default_factory=dict)

    # --- topology helpers -------------------------------------------------------------------
    def kind_of(self, component: str) -> str:
        """app | mongodb | memcached | consul."""
        binary = self.components[component]["binary"]
        return self.binaries[binary].get("kind", "app")

    def port_of(self, component: str) -> int:
        return int(self.binaries[self.components[component]["binary"]]["port"])

    def container_name(self, component: str) -> str:
        kind = self.kind_of(component)
        template = self.container_names.get(kind) or self.container_names.get("default", "{component}")
        return template.format(component=component, short=component.removeprefix(f"{kind}-"))

    def address(self, component: str) -> str:
        """``host:port`` of a component's Service as its clients are configured with it."""
        return f"{component}:{self.port_of(component)}"

    def render(self, value: Any, component: str) -> str:
        """An env template of the app's data with ``{addr:C}`` and ``{self}`` filled in."""
        text = _ADDR_REF.sub(lambda m: self.address(m.group(1)), str(value))
        return text.replace("{self}", component)

    def store_vars(self, store: str) -> list[tuple[str, str]]:
        """The (variable, value) pairs a client of data-store component ``store`` is configured with."""
        var = self.store_env.get(self.kind_of(store))
        if var is None:
            raise ValueError(f"{self.name}: store_env has no variable for {self.kind_of(store)!r} "
                             f"(component {store!r})")
        if isinstance(var, list):
            return [(var[0], store), (var[1], str(self.port_of(store)))]
        return [(var, self.address(store))]

    def store_address(self, env: dict[str, str], kind: str) -> str:
        """The address of the ``kind`` store a process reads from its env ("" when unset)."""
        var = self.store_env.get(kind)
        if isinstance(var, list):
            host, port = env.get(var[0], ""), env.get(var[1], "")
            return f"{host}:{port}" if host else ""
        return env.get(var or "", "")

    def app_services(self) -> list[str]:
        return [c for c in self.components if self.kind_of(c) == "app"]

    def env_for(self, component: str) -> list[dict[str, str]]:
        spec = self.components[component]
        kind = self.kind_of(component)
        env: list[dict[str, str]] = []
        if kind == "app":
            env += [{"name": k, "value": self.render(v, component)} for k, v in self.app_env.items()]
            if spec.get("mongo"):
                env.append({"name": "MONGO_ADDR", "value": f"{spec['mongo']}:{self.port_of(spec['mongo'])}"})
                env.append({"name": "MONGO_DB", "value": spec["db"]})
            if spec.get("memcached"):
                env.append({"name": "MEMC_ADDR",
                            "value": f"{spec['memcached']}:{self.port_of(spec['memcached'])}"})
            for store in spec.get("stores", []):
                env += [{"name": k, "value": v} for k, v in self.store_vars(store)]
            for callee in spec.get("calls", []):
                env.append({"name": f"{callee.upper().replace('-', '_')}_ADDR",
                            "value": f"{callee}:{self.port_of(callee)}"})
        extra = {**self.binaries[spec["binary"]].get("env", {}), **spec.get("env", {})}
        env += [{"name": k, "value": self.render(v, component)} for k, v in extra.items()]
        return env

    # --- manifests --------------------------------------------------------------------------
    def manifests(self, namespace: str | None = None) -> list[dict[str, Any]]:
        ns = namespace or self.namespace
        out: list[dict[str, Any]] = [{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}}]
        for i, node in enumerate(self.nodes):
            out.append({
                "apiVersion": "v1", "kind": "Node",
                "metadata": {"name": node, "labels": {"kubernetes.io/hostname": node,
                                                      "kubernetes.io/os": "linux"}},
                "spec": {"podCIDR": f"10.244.{i + 1}.0/24"},
                "status": {"capacity": {"cpu": "4", "memory": "8Gi", "pods": "110"},
                           "allocatable": {"cpu": "4", "memory": "8Gi", "pods": "110"},
                           "conditions": [{"type": "Ready", "status": "True", "reason": "KubeletReady"}]},
            })
        for comp, spec in self.components.items():
            out.append(self.deployment(comp, ns))
            if spec.get("service", True):
                out.append(self.service(comp, ns))
        return out

    def deployment(self, comp: str, ns: str) -> dict[str, Any]:
        spec = self.components[comp]
        binary = spec["binary"]
        labels = {self.label_key: comp}
        container: dict[str, Any] = {
            "name": self.container_name(comp),
            "image": spec.get("image", self.default_image),
            "ports": [{"containerPort": int(p), "protocol": "TCP"}
                      for p in (spec["ports"] if "ports" in spec else [self.port_of(comp)])],
            "resources": {"requests": {"cpu": "100m"}, "limits": {"cpu": "1000m"}},
        }
        kind = self.kind_of(comp)
        if kind == "app" and self.binaries[binary].get("command", True):
            container["command"] = [binary]
        elif kind == "mongodb" and spec.get("auth"):
            container["args"] = ["--auth"]
        env = self.env_for(comp)
        if env:
            container["env"] = env
        return {
            "apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": comp, "namespace": ns, "labels": dict(labels), "annotations": {}},
            "spec": {
                "replicas": 1,
                "selector": {"matchLabels": dict(labels)},
                "strategy": {"type": "RollingUpdate",
                             "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": "25%"}},
                "revisionHistoryLimit": 10,
                "progressDeadlineSeconds": 600,
                "template": {"metadata": {"labels": dict(labels)},
                             "spec": {"containers": [container], "restartPolicy": "Always"}},
            },
        }

    def service(self, comp: str, ns: str) -> dict[str, Any]:
        binary = self.binaries[self.components[comp]["binary"]]
        ports = self.components[comp].get("ports", [binary["port"]])
        return {
            "apiVersion": "v1", "kind": "Service",
            "metadata": {"name": comp, "namespace": ns, "labels": {self.label_key: comp}},
            "spec": {"type": "ClusterIP", "selector": {self.label_key: comp},
                     "ports": [{"name": str(p), "port": int(p), "targetPort": int(p), "protocol": "TCP"}
                               for p in ports]},
        }


@cache
def _raw(name: str) -> dict[str, Any]:
    path = APPS_DIR / f"{name}.yaml"
    if not path.exists():
        raise ValueError(f"unknown app {name!r}; available: {', '.join(available_apps())}")
    return yaml.safe_load(path.read_text())


def load_app(name: str) -> App:
    raw = copy.deepcopy(_raw(name))
    default_image = next(iter(raw["images"]))
    return App(
        name=raw["name"], namespace=raw["namespace"], label_key=raw["label_key"], entry=raw["entry"],
        load_generator=raw["load_generator"], rps=float(raw["rps"]), timeout_ms=float(raw["timeout_ms"]),
        nodes=raw["nodes"], workload=raw["workload"], images=raw["images"], binaries=raw["binaries"],
        components=raw["components"], db_users=raw.get("db_users", {}),
        app_credentials=raw.get("app_credentials", {}), default_image=default_image,
        container_names=raw.get("container_names", {}), app_env=raw.get("app_env", {}),
        store_env=raw.get("store_env", {}), logs=raw.get("logs", {}),
    )
