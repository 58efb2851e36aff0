"""``stratus rbac``: print the least-privilege RBAC objects for STRATUS on one namespace (``tools.rbac``)."""

from __future__ import annotations

from typing import Annotated

import typer


def rbac(
    namespace: Annotated[str, typer.Option("--namespace", "-n", help="Namespace STRATUS acts on.")] = "default",
    name: Annotated[str, typer.Option(help="Name of the ServiceAccount, Role and RoleBinding.")] = "stratus",
) -> None:
    """Print a ServiceAccount, Role/RoleBinding and ClusterRole/ClusterRoleBinding as YAML.

    Their rules are generated from the guard's allow-list: exactly what STRATUS needs to run and undo
    every allowed action, read the cluster (never Secrets), read pod logs and events, and hold its write
    lock. Apply with `stratus rbac -n NS | kubectl apply -f -`.
    """
    from stratus.tools.rbac import manifests, render

    print(render(manifests(namespace, name)), end="")
