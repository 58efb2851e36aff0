"""Alerting rules as data, evaluated over the twin's TSDB with Prometheus' alert state machine.

The counterpart of Prometheus' ``rules/`` package.

* :func:`load_rules` reads Prometheus rule-file YAML (``groups: [{name, interval, rules: [...]}]``);
  recording rules are ignored. :func:`builtin_rules` loads the rule files shipped in ``twin/data``.
* :class:`RuleEvaluator` evaluates every rule at a simulated time and tracks alerts per label set exactly
  like ``rules/alerting.go``: a new result is ``pending`` with ``activeAt`` = that evaluation; it turns
  ``firing`` once ``t - activeAt >= for`` (immediately when ``for`` is 0); a label set no longer returned is
  dropped if pending, else becomes ``inactive`` (resolved, ``resolvedAt`` = that evaluation), unless
  ``keep_firing_for`` holds it; resolved alerts are kept 15 minutes (Alertmanager view), then dropped.
  ``ALERTS{alertname, alertstate, ...} 1`` and ``ALERTS_FOR_STATE{...} <activeAt>`` are written to the db.
* Output shapes: :meth:`RuleEvaluator.prometheus_alerts` (``/api/v1/alerts``),
  :meth:`RuleEvaluator.prometheus_rules` (``/api/v1/rules``) and :meth:`RuleEvaluator.alertmanager_alerts`
  (Alertmanager ``GET /api/v2/alerts``, the input of :func:`.alertmanager.webhook_payload`).
"""

from __future__ import annotations

import re
import time as _time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote_plus

import yaml

from ..tsdb import TSDB
from .alertmanager import ZERO_TIME, fingerprint, rfc3339
from .parser import compile_expr
from .query import eval_instant
from .template import expand_template, format_alert_value
from .value import PromQLError

DATA_DIR = Path(__file__).parent.parent / "data"
RESOLVED_RETENTION_S = 15 * 60.0  # rules/alerting.go resolvedRetention
RESEND_DELAY_S = 60.0  # Prometheus --rules.alert.resend-delay default

_DUR_RE = re.compile(r"^(?:(\d+)y)?(?:(\d+)w)?(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?(?:(\d+)ms)?$")
_DUR_UNITS = (365 * 86400.0, 7 * 86400.0, 86400.0, 3600.0, 60.0, 1.0, 0.001)


def parse_duration(s: str | float | None) -> float:
    """Prometheus duration (``30s``, ``1m``, ``1h30m``, ``0s``, ``0``) to seconds."""
    if s is None:
        return 0.0
    if isinstance(s, (int, float)):
        return float(s)
    s = s.strip()
    if s in ("", "0"):
        return 0.0
    m = _DUR_RE.match(s)
    if not m or not any(m.groups()):
        raise ValueError(f'not a valid duration string: "{s}"')
    return sum(float(g) * u for g, u in zip(m.groups(), _DUR_UNITS, strict=True) if g)


@dataclass
class AlertRule:
    """One alerting rule of a rule file (durations in seconds)."""

    name: str
    expr: str
    for_s: float = 0.0
    keep_firing_for_s: float = 0.0
    labels: dict[str, str] = field(default_factory=dict)
    annotations: dict[str, str] = field(default_factory=dict)
    group: str = ""
    interval_s: float | None = None
    file: str = ""

    @property
    def query(self) -> str:
        """The expression with whitespace collapsed (used in ``generatorURL`` and ``/api/v1/rules``)."""
        return " ".join(self.expr.split())


def load_rules(source: str | Path | dict) -> list[AlertRule]:
    """Alerting rules from a rule-file path, YAML text, or an already parsed dict."""
    file = ""
    if isinstance(source, dict):
        doc = source
    else:
        if isinstance(source, Path) or ("\n" not in str(source) and str(source).endswith((".yaml", ".yml"))):
            path = Path(source)
            file = str(path)
            doc = yaml.safe_load(path.read_text())
        else:
            doc = yaml.safe_load(source)
    if not isinstance(doc, dict) or "groups" not in doc:
        raise ValueError("rule file must be a mapping with a 'groups' list")
    rules: list[AlertRule] = []
    for g in doc.get("groups") or []:
        gname = g.get("name", "")
        interval = parse_duration(g["interval"]) if g.get("interval") else None
        for r in g.get("rules") or []:
            if "alert" not in r:
                continue  # recording rules are not used by the twin
            expr = str(r["expr"]).strip()
            try:
                compile_expr(expr)
            except PromQLError as e:
                raise ValueError(f"group {gname!r}, rule {r['alert']!r}: {e}") from None
            rules.append(
                AlertRule(
                    name=str(r["alert"]),
                    expr=expr,
                    for_s=parse_duration(r.get("for")),
                    keep_firing_for_s=parse_duration(r.get("keep_firing_for")),
                    labels={str(k): str(v) for k, v in (r.get("labels") or {}).items()},
                    annotations={str(k): str(v) for k, v in (r.get("annotations") or {}).items()},
                    group=gname,
                    interval_s=interval,
                    file=file,
                )
            )
    return rules


def builtin_rules(kind: str = "benchmark") -> list[AlertRule]:
    """Rules shipped with the twin: ``benchmark`` (fast) or ``kube-prometheus`` (upstream ``for`` values)."""
    return load_rules(DATA_DIR / f"rules-{kind}.yaml")


@dataclass
class Alert:
    """One alert of a rule: a label set the rule's expression returned, with its state."""

    rule: AlertRule
    labels: dict[str, str]  # alertname + expression output labels + rule labels (no external labels)
    annotations: dict[str, str]
    value: float
    state: str  # pending | firing | inactive
    active_at: float
    fired_at: float | None = None
    resolved_at: float | None = None
    last_eval: float = 0.0
    keep_firing_since: float | None = None

    @property
    def fingerprint(self) -> str:
        """The alert's label-set fingerprint (without external labels)."""
        return fingerprint(self.labels)


class RuleEvaluator:
    """Evaluates alerting rules and keeps Prometheus-style alert state."""

    def __init__(
        self,
        rules: list[AlertRule],
        external_labels: dict[str, str] | None = None,
        external_url: str = "http://prometheus.twin:9090",
        resolved_retention_s: float = RESOLVED_RETENTION_S,
        resend_delay_s: float = RESEND_DELAY_S,
        write_alerts_series: bool = True,
    ):
        self.rules = list(rules)
        self.external_labels = dict(external_labels or {})
        self.external_url = external_url.rstrip("/")
        self.resolved_retention_s = resolved_retention_s
        self.resend_delay_s = resend_delay_s
        self.write_alerts_series = write_alerts_series
        # per rule index: fingerprint-key -> Alert
        self._active: list[dict[tuple, Alert]] = [{} for _ in self.rules]
        self._health: list[dict[str, Any]] = [
            {"health": "unknown", "lastError": "", "lastEvaluation": None, "evaluationTime": 0.0} for _ in self.rules
        ]
        self._target = f"__rule_evaluator_{id(self)}"
        self.last_eval: float | None = None

    # ------------------------------------------------------------------ evaluation

    def evaluate(self, db: TSDB, at: float) -> list[Alert]:
        """Evaluate every rule at ``at``; returns the pending and firing alerts.

        Holds ``db.lock`` throughout, so readers in other threads (the HTTP API) that hold it see the
        alerts' state and the ``ALERTS`` series of one evaluation, never half of one."""
        with db.lock:
            return self._evaluate(db, float(at))

    def _evaluate(self, db: TSDB, at: float) -> list[Alert]:
        for i, rule in enumerate(self.rules):
            t0 = _time.perf_counter()
            h = self._health[i]
            try:
                self._eval_rule(i, rule, db, at)
                h["health"], h["lastError"] = "ok", ""
            except PromQLError as e:
                h["health"], h["lastError"] = "err", e.message
            h["lastEvaluation"] = at
            h["evaluationTime"] = _time.perf_counter() - t0
        self.last_eval = at
        if self.write_alerts_series:
            samples = []
            for a in self.alerts():
                lab = dict(a.labels)
                samples.append(("ALERTS_FOR_STATE", lab, a.active_at))
                lab2 = dict(lab)
                lab2["alertstate"] = a.state
                samples.append(("ALERTS", lab2, 1.0))
            db.add_many(samples, at, target=self._target)
        return self.alerts()

    def _eval_rule(self, i: int, rule: AlertRule, db: TSDB, at: float) -> None:
        res = eval_instant(db, rule.expr, at)
        if not isinstance(res, list) or (res and not isinstance(res[0][1], float)):
            raise PromQLError("rule result is not a vector", "execution")
        active = self._active[i]
        current: dict[tuple, Alert] = {}
        for lab, value in res:
            tlabels = {k: v for k, v in lab.items() if k != "__name__"}
            exp_labels = dict(tlabels)
            for k, v in rule.labels.items():
                ev = expand_template(v, tlabels, value, self.external_labels, self.external_url, rule.name)
                if ev:
                    exp_labels[k] = ev
                else:
                    exp_labels.pop(k, None)
            exp_labels["alertname"] = rule.name
            key = tuple(sorted(exp_labels.items()))
            if key in current:
                raise PromQLError(
                    "vector contains metrics with the same labelset after applying alert labels", "execution"
                )
            annotations = {
                k: expand_template(v, tlabels, value, self.external_labels, self.external_url, rule.name)
                for k, v in rule.annotations.items()
            }
            a = active.get(key)
            if a is not None and a.state != "inactive":
                a.value = value
                a.annotations = annotations
            else:
                a = Alert(rule, exp_labels, annotations, value, "pending", active_at=at)
                active[key] = a
            a.last_eval = at
            current[key] = a
        for key in list(active):
            a = active[key]
            if key not in current:
                if a.state == "firing" and rule.keep_firing_for_s > 0:
                    if a.keep_firing_since is None:
                        a.keep_firing_since = at
                    if at - a.keep_firing_since < rule.keep_firing_for_s:
                        a.last_eval = at
                        continue
                if a.state == "pending" or (
                    a.resolved_at is not None and at - a.resolved_at > self.resolved_retention_s
                ):
                    del active[key]
                    continue
                if a.state != "inactive":
                    a.state = "inactive"
                    a.resolved_at = at
                    a.keep_firing_since = None
                continue
            a.keep_firing_since = None
            if a.state == "pending" and at - a.active_at >= rule.for_s:
                a.state = "firing"
                a.fired_at = at

    # ------------------------------------------------------------------ views

    def alerts(self, states: tuple[str, ...] = ("pending", "firing")) -> list[Alert]:
        """Alerts in ``states``, rule by rule, in label order."""
        out = []
        for active in self._active:
            for key in sorted(active):
                a = active[key]
                if a.state in states:
                    out.append(a)
        return out

    def firing(self) -> list[Alert]:
        """The firing alerts."""
        return self.alerts(("firing",))

    def generator_url(self, rule: AlertRule) -> str:
        """Link to the rule's expression in the Prometheus UI, as alerts carry it."""
        return f"{self.external_url}/graph?g0.expr={quote_plus(rule.query, safe='')}&g0.tab=1"

    def _prom_alert(self, a: Alert) -> dict:
        d = {
            "labels": dict(sorted(a.labels.items())),
            "annotations": dict(a.annotations),
            "state": a.state,
            "activeAt": rfc3339(a.active_at),
        }
        if a.keep_firing_since is not None:
            d["keepFiringSince"] = rfc3339(a.keep_firing_since)
        d["value"] = format_alert_value(a.value)
        return d

    def prometheus_alerts(self) -> list[dict]:
        """``GET /api/v1/alerts`` ``data.alerts`` (pending and firing, no resolved)."""
        return [self._prom_alert(a) for a in self.alerts()]

    def prometheus_rules(self) -> dict:
        """``GET /api/v1/rules`` ``data`` (alerting rules only)."""
        groups: dict[str, dict] = {}
        for i, rule in enumerate(self.rules):
            g = groups.get(rule.group)
            if g is None:
                g = groups[rule.group] = {
                    "name": rule.group,
                    "file": rule.file,
                    "rules": [],
                    "interval": rule.interval_s if rule.interval_s is not None else 15,
                    "limit": 0,
                    "evaluationTime": 0.0,
                    "lastEvaluation": ZERO_TIME,
                }
            h = self._health[i]
            alerts = [a for a in self.alerts() if a.rule is rule]
            state = "inactive"
            if any(a.state == "firing" for a in alerts):
                state = "firing"
            elif alerts:
                state = "pending"
            r = {
                "state": state,
                "name": rule.name,
                "query": rule.query,
                "duration": rule.for_s,
                "keepFiringFor": rule.keep_firing_for_s,
                "labels": dict(rule.labels),
                "annotations": dict(rule.annotations),
                "alerts": [self._prom_alert(a) for a in alerts],
                "health": h["health"],
                "evaluationTime": h["evaluationTime"],
                "lastEvaluation": rfc3339(h["lastEvaluation"]) if h["lastEvaluation"] is not None else ZERO_TIME,
                "type": "alerting",
            }
            if h["lastError"]:
                r["lastError"] = h["lastError"]
            g["rules"].append(r)
            g["evaluationTime"] += h["evaluationTime"]
            if h["lastEvaluation"] is not None:
                g["lastEvaluation"] = rfc3339(h["lastEvaluation"])
        return {"groups": list(groups.values())}

    def am_labels(self, a: Alert) -> dict[str, str]:
        """Labels as Alertmanager receives them: alert labels plus external labels (alert labels win)."""
        lab = dict(self.external_labels)
        lab.update(a.labels)
        return dict(sorted(lab.items()))

    def alertmanager_alerts(self, active_only: bool = True) -> list[dict]:
        """Alertmanager API v2 ``GET /api/v2/alerts`` items.

        Only alerts Prometheus sends (firing, plus resolved ones within the 15 minute retention when
        ``active_only`` is False: those carry their resolve time as ``endsAt``). Sorted by fingerprint.
        """
        now = self.last_eval if self.last_eval is not None else 0.0
        out: list[dict[str, Any]] = []
        for active in self._active:
            for a in active.values():
                if a.state == "firing":
                    delta = max(self.resend_delay_s, a.rule.interval_s or 0.0)
                    ends = a.last_eval + 4 * delta
                    updated = a.last_eval
                elif a.state == "inactive" and not active_only and a.fired_at is not None:
                    assert a.resolved_at is not None, "an alert turns inactive when it is resolved"
                    ends = a.resolved_at
                    updated = a.resolved_at
                else:
                    continue
                labels = self.am_labels(a)
                out.append(
                    {
                        "annotations": dict(a.annotations),
                        "endsAt": rfc3339(ends, millis=True),
                        "fingerprint": fingerprint(labels),
                        "receivers": [{"name": "default"}],
                        "startsAt": rfc3339(a.fired_at if a.fired_at is not None else a.active_at, millis=True),
                        "status": {"inhibitedBy": [], "mutedBy": [], "silencedBy": [], "state": "active"},
                        "updatedAt": rfc3339(updated if updated is not None else now, millis=True),
                        "generatorURL": self.generator_url(a.rule),
                        "labels": labels,
                    }
                )
        out.sort(key=lambda d: d["fingerprint"])
        return out
