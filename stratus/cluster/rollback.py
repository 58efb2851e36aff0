"""``rollout undo`` for StatefulSets and DaemonSets: their history is kept in ControllerRevisions.

Shared by both backends. The StatefulSet and DaemonSet controllers record each pod template they roll
out as a ControllerRevision they own, whose ``data`` is a strategic merge patch replacing
``spec.template`` and whose ``revision`` numbers the history. Undo works as kubectl's rollbacker does:
pick the revision (the one before the newest, or ``to_revision``), skip when the live template already
matches it, otherwise apply its ``data`` to the workload. The twin's controllers write the same records
(``revision_data`` and ``next_revision``), so the real controllers' numbering rules live here once.
"""

from __future__ import annotations

import copy
from typing import Any

from stratus.cluster.base import ClusterError

REVISION_KINDS = ("StatefulSet", "DaemonSet")
"""Workloads whose rollout history is ControllerRevisions (a Deployment's is its ReplicaSets)."""


def _drop_nulls(value: Any) -> Any:
    """JSON without null members: Go encoders write ``creationTimestamp: null`` where Python writes nothing."""
    if isinstance(value, dict):
        return {k: _drop_nulls(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_drop_nulls(v) for v in value]
    return value


def revision_data(workload: dict[str, Any]) -> dict[str, Any]:
    """The ControllerRevision ``data`` recording ``workload``'s current pod template."""
    template = _drop_nulls(copy.deepcopy(workload["spec"]["template"]))
    return {"spec": {"template": {**template, "$patch": "replace"}}}


def history(workload: dict[str, Any], revisions: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The ControllerRevisions ``workload`` controls, oldest revision first."""
    uid = workload["metadata"].get("uid")
    owned = [r for r in revisions if any(o.get("uid") == uid and o.get("controller")
                                          for o in r["metadata"].get("ownerReferences") or [])]
    return sorted(owned, key=lambda r: int(r.get("revision", 0)))


def next_revision(workload: dict[str, Any], revisions: list[dict[str, Any]]) -> tuple[dict[str, Any] | None, int]:
    """The controller's bookkeeping for the live template: the revision already recording it (if any) and
    the number it must carry, the newest. A template rolled back to keeps its old ControllerRevision, which
    moves to the next number, as the StatefulSet and DaemonSet controllers do."""
    hist = history(workload, revisions)
    newest = int(hist[-1].get("revision", 0)) if hist else 0
    want = _drop_nulls(revision_data(workload))
    same = next((r for r in hist if _drop_nulls(r.get("data")) == want), None)
    if same is not None and int(same.get("revision", 0)) == newest:
        return same, newest
    return same, newest + 1


def undo_target(workload: dict[str, Any], revisions: list[dict[str, Any]],
                to_revision: int | None) -> tuple[dict[str, Any] | None, str]:
    """The ControllerRevision ``rollout undo`` restores, or None with kubectl's "skipped" message when the
    live template already matches it. Raises ``ClusterError`` with kubectl's words when there is none."""
    hist = history(workload, revisions)
    target: dict[str, Any] | None
    if to_revision is not None and to_revision < 0:
        raise ClusterError(f"unable to find specified revision {to_revision} in history")
    if not to_revision:
        if len(hist) <= 1:
            raise ClusterError("no last revision to roll back to")
        target = hist[-2]
    else:
        target = next((r for r in hist if int(r.get("revision", 0)) == to_revision), None)
        if target is None:
            raise ClusterError(f"unable to find specified revision {to_revision} in history")
    if _drop_nulls(target.get("data")) == _drop_nulls(revision_data(workload)):
        return None, skipped_rollback(target.get("revision"))
    return target, ""


def skipped_rollback(revision: Any) -> str:
    """kubectl's words when the revision to restore is the live template (a Deployment's names the
    ``--to-revision`` asked for, 0 when none was, as kubectl's DeploymentRollbacker does)."""
    return f"skipped rollback (current template already matches revision {revision})"


def restored(workload: dict[str, Any], target: dict[str, Any]) -> dict[str, Any]:
    """``workload`` with ``target``'s template, as its strategic merge patch (``$patch: replace``) leaves it."""
    new = copy.deepcopy(workload)
    template = copy.deepcopy(target["data"]["spec"]["template"])
    template.pop("$patch", None)
    new["spec"]["template"] = template
    return new
