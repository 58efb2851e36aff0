"""The Cluster protocol: the only door between agents and a world (the twin or a real cluster).

Every read is bounded. Objects are plain dicts shaped like Kubernetes manifests. Query results follow
the Prometheus HTTP API ``data`` shape; alerts follow Alertmanager API v2.
"""

from __future__ import annotations

import builtins
from datetime import datetime
from typing import Any, Protocol, runtime_checkable

from stratus.cluster.actions import Action, ActionResult

Manifest = dict[str, Any]
Ref = tuple[str, str, str | None]  # (kind, name, namespace)


class ClusterError(Exception):
    """A request the cluster refused; the message names the object, field or permission."""


class NotFound(ClusterError):
    pass


class Conflict(ClusterError):
    pass


@runtime_checkable
class Cluster(Protocol):
    """What STRATUS needs from a world. Implemented by ``TwinCluster`` and ``KubeCluster``."""

    # reads -----------------------------------------------------------------------------------
    def list(self, kind: str, namespace: str | None = None, selector: dict[str, str] | None = None,
             limit: int = 200) -> builtins.list[Manifest]: ...

    def get(self, kind: str, name: str, namespace: str | None = None) -> Manifest: ...

    def events(self, namespace: str | None = None, since: float | None = None,
               limit: int = 200) -> builtins.list[Manifest]: ...

    def logs(self, pod: str, namespace: str, container: str | None = None, tail: int = 200,
             since: float | None = None, previous: bool = False) -> builtins.list[str]: ...

    def query(self, promql: str, at: float | None = None) -> dict[str, Any]: ...

    def query_range(self, promql: str, start: float, end: float, step: float) -> dict[str, Any]: ...

    def traces(self, service: str | None = None, since: float | None = None,
               limit: int = 50) -> builtins.list[dict[str, Any]]: ...

    def alerts(self) -> builtins.list[dict[str, Any]]: ...

    def now(self) -> float: ...

    def read_db(self, action: Action) -> dict[str, Any]:
        """Run a catalogued read-only database command (``action`` is an ``exec`` whose
        ``params.db_command.op`` is ``get_user`` or ``get_requirepass``) and return its result:
        ``{"user", "db", "roles"}``, ``{"user", "db", "absent": True}`` or ``{"requirepass"}``.
        Raises ``ClusterError`` when the target runs no database STRATUS can administer."""
        ...

    # writes ----------------------------------------------------------------------------------
    def apply(self, action: Action, dry_run: bool = False) -> ActionResult: ...

    def snapshot(self, refs: builtins.list[Ref]) -> builtins.list[Manifest]: ...

    def restore(self, snapshot: builtins.list[Manifest]) -> None: ...

    def wait(self, seconds: float) -> None: ...

    # coordination ----------------------------------------------------------------------------
    def acquire_lock(self, namespace: str, holder: str, ttl_s: float = 600.0) -> bool: ...

    def release_lock(self, namespace: str, holder: str) -> None: ...


def epoch(stamp: str | None) -> float | None:
    """Seconds since the epoch of an RFC 3339 timestamp as the API server writes them (``...Z``)."""
    return datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp() if stamp else None


def omitted_marker(total: int, shown: int, what: str = "items") -> str:
    """The marker appended to any bounded listing that cut something off."""
    return f"... {total - shown} more {what} omitted"
