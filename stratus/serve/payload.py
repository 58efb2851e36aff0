"""The Alertmanager webhook payload (version "4") as ``stratus serve`` accepts it, and its validation errors.

The shape follows Alertmanager's ``notify/webhook`` message (see reference/telemetry.md §5). Each alert is
the same ``stratus.state.Alert`` model the graph carries, so what is accepted here is what Detection reads.
Errors name the offending field in the form ``alerts[1].labels`` so a user can find it in the payload.
"""

from __future__ import annotations

import json
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from stratus.state import Alert
from stratus.twin.prom.alertmanager import fingerprint


class PayloadError(ValueError):
    """A webhook body that cannot be accepted; ``problems`` name each field and what is wrong with it."""

    def __init__(self, problems: list[dict[str, str]]) -> None:
        super().__init__("; ".join(f"{p['field']}: {p['message']}" for p in problems))
        self.problems = problems


class WebhookPayload(BaseModel):
    """One Alertmanager notification: an aggregation group (``groupKey``) and its alerts."""

    model_config = ConfigDict(extra="allow")

    version: Literal["4"]
    groupKey: str = Field(min_length=1)
    status: Literal["firing", "resolved"]
    receiver: str = ""
    groupLabels: dict[str, str] = Field(default_factory=dict)
    commonLabels: dict[str, str] = Field(default_factory=dict)
    commonAnnotations: dict[str, str] = Field(default_factory=dict)
    externalURL: str = ""
    truncatedAlerts: int = Field(default=0, ge=0)
    alerts: list[Alert] = Field(min_length=1, max_length=1000)

    @field_validator("alerts")
    @classmethod
    def _fingerprinted(cls, alerts: list[Alert]) -> list[Alert]:
        """Alertmanager always sends a fingerprint; a hand-written payload gets the same label-set hash."""
        for a in alerts:
            if not a.fingerprint:
                a.fingerprint = fingerprint(a.labels)
        return alerts

    def namespace(self, default: str) -> str:
        """The namespace the group is about: grouped on, common to all alerts, or on the first alert."""
        for labels in (self.groupLabels, self.commonLabels, *(a.labels for a in self.alerts)):
            if labels.get("namespace"):
                return labels["namespace"]
        return default


def _field(loc: tuple[Any, ...]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "(body)"


def _nul_fields(data: Any, loc: tuple[Any, ...] = ()) -> list[str]:
    """Fields (keys or values) holding a NUL character, which a PostgreSQL text column cannot store."""
    if isinstance(data, str):
        return [_field(loc).replace("\x00", "\\u0000")] if "\x00" in data else []
    out = []
    for key, value in (enumerate(data) if isinstance(data, list) else data.items() if isinstance(data, dict) else ()):
        out += _nul_fields(key, (*loc, key)) if isinstance(key, str) else []
        out += _nul_fields(value, (*loc, key))
    return list(dict.fromkeys(out))


def parse_payload(body: bytes) -> WebhookPayload:
    """Parse and validate a webhook body; raise ``PayloadError`` naming every problem found."""
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise PayloadError([{"field": "(body)", "message": f"not JSON: {exc}"}]) from None
    if not isinstance(data, dict):
        raise PayloadError([{"field": "(body)", "message": "expected a JSON object (an Alertmanager webhook "
                                                            f"payload), got {type(data).__name__}"}])
    if b"\\u0000" in body:  # only then walk the payload: the common case costs one scan of the bytes
        nul = _nul_fields(data)
        if nul:  # refused rather than stored by one backend and not the other
            raise PayloadError([{"field": f, "message": "contains a NUL character (\\u0000), which cannot be "
                                                        "stored; remove it from the label or annotation"} for f in nul])
    try:
        return WebhookPayload.model_validate(data)
    except ValidationError as exc:
        problems = [{"field": _field(err["loc"]), "message": err["msg"]} for err in exc.errors()]
        raise PayloadError(problems) from None
