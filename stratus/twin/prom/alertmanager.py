"""Alertmanager's words: label-set fingerprints, its time formats and the webhook payload.

* :func:`fingerprint` is Prometheus/Alertmanager's ``model.LabelSet.Fingerprint()``: 64-bit FNV-1a over
  the label names sorted ascending, hashing for each label ``name`` bytes, the separator byte ``0xff``,
  ``value`` bytes, ``0xff``; printed as 16 lowercase hex digits.
* :func:`rfc3339` formats times as Prometheus' API and Alertmanager's webhook (or API v2) print them.
* :func:`webhook_payload` builds the Alertmanager webhook (version "4") for one aggregation group from
  items shaped like Alertmanager API v2 alerts (:meth:`.rules.RuleEvaluator.alertmanager_alerts`).
"""

from __future__ import annotations

import math
from datetime import UTC, datetime

ZERO_TIME = "0001-01-01T00:00:00Z"


def rfc3339(t: float, millis: bool = False) -> str:
    """UTC RFC 3339 from epoch seconds.

    ``millis=False``: Go ``time.Time`` JSON (RFC3339Nano, trailing zeros trimmed: ``2026-01-01T00:00:05Z``),
    as in Prometheus' API and Alertmanager's webhook. ``millis=True``: go-openapi ``strfmt.DateTime``
    (``2026-01-01T00:00:05.000Z``), as in Alertmanager's API v2.
    """
    us = round(t * 1_000_000)
    sec, frac_us = divmod(us, 1_000_000)
    base = datetime.fromtimestamp(sec, UTC).strftime("%Y-%m-%dT%H:%M:%S")
    if millis:
        return f"{base}.{frac_us // 1000:03d}Z"
    if frac_us:
        return f"{base}.{frac_us:06d}".rstrip("0") + "Z"
    return base + "Z"


def fingerprint(labels: dict[str, str]) -> str:
    """Alertmanager/Prometheus label-set fingerprint (FNV-1a 64, see module docstring).."""
    h = 0xCBF29CE484222325
    prime = 0x100000001B3
    mask = 0xFFFFFFFFFFFFFFFF
    for name in sorted(labels):
        for b in name.encode() + b"\xff" + str(labels[name]).encode() + b"\xff":
            h = ((h ^ b) * prime) & mask
    return f"{h:016x}"


def _parse_ts(s: str) -> float:
    if s.startswith("0001-01-01"):
        return -math.inf
    return datetime.fromisoformat(s).timestamp()


def _go_quote_meta(s: str) -> str:
    return "".join("\\" + c if c in "\\.+*?()|[]{}^$" else c for c in s)


def _labelset_str(lab: dict[str, str]) -> str:
    def q(v: str) -> str:
        return '"' + v.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'

    return "{" + ", ".join(f"{k}={q(v)}" for k, v in sorted(lab.items())) + "}"


def webhook_payload(
    alerts: list[dict],
    receiver: str = "stratus",
    external_url: str = "http://alertmanager.twin:9093",
    group_by: tuple[str, ...] = ("namespace",),
    route_key: str = "{}",
    notification_reason: str | None = None,
) -> dict:
    """Alertmanager webhook (version "4") payload for one aggregation group.

    ``alerts`` are items of :meth:`.rules.RuleEvaluator.alertmanager_alerts` (``active_only=False`` to include
    resolved ones). An alert is resolved when its ``endsAt`` is not after its ``updatedAt``. Firing alerts
    carry ``endsAt: "0001-01-01T00:00:00Z"``.
    """
    items = []
    for a in alerts:
        starts = _parse_ts(a["startsAt"])
        ends = _parse_ts(a["endsAt"])
        updated = _parse_ts(a.get("updatedAt", a["endsAt"]))
        resolved = ends <= updated
        items.append(
            {
                "status": "resolved" if resolved else "firing",
                "labels": dict(sorted(a["labels"].items())),
                "annotations": dict(a.get("annotations") or {}),
                "startsAt": rfc3339(starts),
                "endsAt": rfc3339(ends) if resolved else ZERO_TIME,
                "generatorURL": a.get("generatorURL", ""),
                "fingerprint": a.get("fingerprint") or fingerprint(a["labels"]),
            }
        )
    items.sort(key=lambda x: (x["startsAt"], x["fingerprint"]))
    group_labels: dict[str, str] = {}
    if items:
        first = items[0]["labels"]
        for g in group_by:
            if g in first and all(it["labels"].get(g) == first[g] for it in items):
                group_labels[g] = first[g]

    def common(key: str) -> dict[str, str]:
        if not items:
            return {}
        c = dict(items[0][key])
        for it in items[1:]:
            c = {k: v for k, v in c.items() if it[key].get(k) == v}
        return dict(sorted(c.items()))

    status = "firing" if any(it["status"] == "firing" for it in items) else "resolved"
    if notification_reason is None:
        notification_reason = "first notification" if status == "firing" else "all alerts resolved"
    return {
        "receiver": _go_quote_meta(receiver),
        "status": status,
        "alerts": items,
        "groupLabels": group_labels,
        "commonLabels": common("labels"),
        "commonAnnotations": common("annotations"),
        "externalURL": external_url,
        "version": "4",
        "groupKey": f"{route_key}:{_labelset_str(group_labels)}",
        "truncatedAlerts": 0,
        "notification_reason": notification_reason,
    }
