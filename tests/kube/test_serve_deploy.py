"""deploy/: the kustomize base for ``stratus serve``, rendered by kubectl's built-in kustomize and applied
with a server-side dry run to the real API server (this folder's control plane fixture).

Also checks what a dry run cannot: every setting the ConfigMap and Secret give is read by ``stratus
serve`` (an option's env var or a ``Context`` field), the probes hit a route that needs no token, and
the Alertmanager receiver example posts to the Service's intake route.
"""

from __future__ import annotations

import subprocess
from dataclasses import fields
from pathlib import Path
from typing import Any

import pytest
import typer.main
import yaml

from stratus.cli import app
from stratus.context import Context

ROOT = Path(__file__).resolve().parents[2]


def kubectl(control_plane: Any, *args: str, stdin: str | None = None) -> str:
    out = subprocess.run([str(control_plane.bin / "kubectl"), *args], input=stdin, capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0, f"kubectl {' '.join(args)}: {out.stderr}"
    return out.stdout


@pytest.fixture(scope="module")
def rendered(control_plane: Any) -> str:
    return kubectl(control_plane, "kustomize", str(ROOT / "deploy"))


def _objects(text: str) -> dict[str, dict[str, Any]]:
    return {f"{d['kind']}/{d['metadata']['name']}": d for d in yaml.safe_load_all(text) if d}


def test_the_base_applies_with_a_server_side_dry_run(control_plane: Any, admin_kubeconfig: Path,
                                                     rendered: str) -> None:
    out = kubectl(control_plane, "--kubeconfig", str(admin_kubeconfig), "apply", "--server-side",
                  "--dry-run=server", "--field-manager=stratus-test", "-f", "-", stdin=rendered)
    applied = sorted(line.split()[0] for line in out.splitlines() if "serverside-applied (server dry run)" in line)
    assert applied == sorted([
        "serviceaccount/stratus", "role.rbac.authorization.k8s.io/stratus",
        "rolebinding.rbac.authorization.k8s.io/stratus", "clusterrole.rbac.authorization.k8s.io/stratus-default",
        "clusterrolebinding.rbac.authorization.k8s.io/stratus-default", "configmap/stratus-serve",
        "secret/stratus-serve", "deployment.apps/stratus-serve", "service/stratus-serve"])


def test_the_deployment_runs_serve_least_privileged_with_probes_and_requests(rendered: str) -> None:
    objs = _objects(rendered)
    pod = objs["Deployment/stratus-serve"]["spec"]["template"]["spec"]
    [c] = pod["containers"]
    assert pod["serviceAccountName"] == objs["ServiceAccount/stratus"]["metadata"]["name"]
    assert c["command"] == ["stratus", "serve"]
    for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
        assert c[probe]["httpGet"]["path"] == "/healthz"  # the one route without a token
    assert set(c["resources"]["requests"]) == {"cpu", "memory"}
    assert c["securityContext"]["allowPrivilegeEscalation"] is False
    assert {e["configMapRef"]["name"] for e in c["envFrom"] if "configMapRef" in e} == {"stratus-serve"}
    assert {e["secretRef"]["name"] for e in c["envFrom"] if "secretRef" in e} == {"stratus-serve"}
    port = objs["ConfigMap/stratus-serve"]["data"]["STRATUS_SERVE_PORT"]
    assert [p["containerPort"] for p in c["ports"]] == [int(port)]


def _read_settings() -> set[str]:
    serve = next(c for c in typer.main.get_command(app).commands.values() if c.name == "serve")  # type: ignore[attr-defined]
    option_envs = {p.envvar for p in serve.params if isinstance(p.envvar, str)}
    context_envs = {f"STRATUS_{f.name.upper()}" for f in fields(Context)} | {"STRATUS_DB"}
    return option_envs | context_envs | {"OPENAI_API_KEY", "HOME"}


def test_every_configured_setting_is_read_by_stratus_serve(rendered: str) -> None:
    objs = _objects(rendered)
    given = set(objs["ConfigMap/stratus-serve"]["data"]) | set(objs["Secret/stratus-serve"]["stringData"])
    assert given - _read_settings() == set()
    assert "STRATUS_SERVE_TOKEN" in objs["Secret/stratus-serve"]["stringData"]


def test_the_alertmanager_receiver_example_posts_to_the_service(rendered: str) -> None:
    example = yaml.safe_load((ROOT / "deploy" / "serve" / "alertmanager-receiver.example.yaml").read_text())
    svc = _objects(rendered)["Service/stratus-serve"]
    [hook] = example["receivers"][0]["webhook_configs"]
    name, ns, port = svc["metadata"]["name"], svc["metadata"]["namespace"], svc["spec"]["ports"][0]["port"]
    assert hook["url"] == f"http://{name}.{ns}.svc:{port}/api/v1/alerts"
    assert hook["http_config"]["authorization"]["type"] == "Bearer" and hook["send_resolved"] is True
    assert example["route"]["receiver"] == example["receivers"][0]["name"]
