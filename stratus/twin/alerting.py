"""Alerting rules as data, evaluated over the twin's TSDB with Prometheus' alert state machine.

* :func:`load_rules` reads Prometheus rule-file YAML (``groups: [{name, interval, rules: [...]}]``);
  recording rules are ignored. :func:`builtin_rules` loads the rule files shipped in ``twin/data``.
* :class:`RuleEvaluator` evaluates every rule at a simulated time and tracks alerts per label set exactly
  like ``rules/alerting.go``: a new result is ``pending`` with ``activeAt`` = that evaluation; it turns
  ``firing`` once ``t - activeAt >= for`` (immediately when ``for`` is 0); a label set no longer returned is
  dropped if pending, else becomes ``inactive`` (resolved, ``resolvedAt`` = that evaluation), unless
  ``keep_firing_for`` holds it; resolved alerts are kept 15 minutes (Alertmanager view), then dropped.
  ``ALERTS{alertname, alertstate, ...} 1`` and ``ALERTS_FOR_STATE{...} <activeAt>`` are written to the db.
* Output shapes: :meth:`RuleEvaluator.prometheus_alerts` (``/api/v1/alerts``),
  :meth:`RuleEvaluator.prometheus_rules` (``/api/v1/rules``), :meth:`RuleEvaluator.alertmanager_alerts`
  (Alertmanager ``GET /api/v2/alerts``) and :func:`webhook_payload` (Alertmanager webhook, version "4").
* Annotation/label templates support the Prometheus subset used by real rule files: ``{{ $labels.x }}``,
  ``{{ $value }}``, ``{{ $externalLabels.x }}``, ``{{ $externalURL }}``, ``.Labels``/``.Value``, pipelines
  and the functions ``humanize``, ``humanize1024``, ``humanizePercentage``, ``humanizeDuration``,
  ``printf``, ``toUpper``, ``toLower``, ``title``, ``index``. Missing labels expand to ``""``.

Fingerprints are Prometheus/Alertmanager's ``model.LabelSet.Fingerprint()``: 64-bit FNV-1a over the label
names sorted ascending, hashing for each label ``name`` bytes, the separator byte ``0xff``, ``value`` bytes,
``0xff``; printed as 16 lowercase hex digits.
"""

from __future__ import annotations

import math
import re
import time as _time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any
from urllib.parse import quote_plus

import yaml

from .promql import PromQLError, compile_expr, eval_instant
from .tsdb import TSDB

__all__ = [
    "Alert",
    "AlertRule",
    "RuleEvaluator",
    "builtin_rules",
    "expand_template",
    "fingerprint",
    "format_alert_value",
    "load_rules",
    "parse_duration",
    "rfc3339",
    "webhook_payload",
]

DATA_DIR = Path(__file__).parent / "data"
RESOLVED_RETENTION_S = 15 * 60.0  # rules/alerting.go resolvedRetention
RESEND_DELAY_S = 60.0  # Prometheus --rules.alert.resend-delay default
ZERO_TIME = "0001-01-01T00:00:00Z"

# ---------------------------------------------------------------------------------------------- helpers

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
    """Alertmanager/Prometheus label-set fingerprint (FNV-1a 64, see module docstring)."""
    h = 0xCBF29CE484222325
    prime = 0x100000001B3
    mask = 0xFFFFFFFFFFFFFFFF
    for name in sorted(labels):
        for b in name.encode() + b"\xff" + str(labels[name]).encode() + b"\xff":
            h = ((h ^ b) * prime) & mask
    return f"{h:016x}"


def _go_e(v: float) -> str:
    """Go ``strconv.FormatFloat(v, 'e', -1, 64)`` (shortest round-trip mantissa)."""
    if math.isnan(v):
        return "NaN"
    if math.isinf(v):
        return "+Inf" if v > 0 else "-Inf"
    for p in range(17):
        s = f"{v:.{p}e}"
        if float(s) == v:
            return s
    return f"{v:.17e}"


format_alert_value = _go_e


def _go_v(v: Any) -> str:
    """Go ``fmt`` ``%v`` of a value (floats: shortest digits, %e form if exp < -4 or >= 6, as Go's %g)."""
    if isinstance(v, bool):
        return "true" if v else "false"
    if not isinstance(v, float):
        return str(v)
    if math.isnan(v):
        return "NaN"
    if math.isinf(v):
        return "+Inf" if v > 0 else "-Inf"
    if v == 0:
        return "-0" if math.copysign(1.0, v) < 0 else "0"
    r = repr(v)
    mant, _, exp = r.partition("e")
    digits = mant.replace("-", "").replace(".", "").lstrip("0").rstrip("0") or "0"
    x = int(exp) if exp else 0
    # decimal exponent of the leading digit
    if exp:
        lead = x
    else:
        ip, _, fp = mant.lstrip("-").partition(".")
        ip = ip.lstrip("0")
        lead = len(ip) - 1 if ip else -(len(fp) - len(fp.lstrip("0")) + 1)
    if lead < -4 or lead >= 6:
        m = digits[0] + ("." + digits[1:] if len(digits) > 1 else "")
        return ("-" if v < 0 else "") + f"{m}e{'-' if lead < 0 else '+'}{abs(lead):02d}"
    s = format(Decimal(r), "f")
    if "." in s:
        s = s.rstrip("0").rstrip(".")
    return s


def _go_g4(v: float, suffix: str = "") -> str:
    if math.isnan(v):
        return "NaN" + suffix
    if math.isinf(v):
        return ("+Inf" if v > 0 else "-Inf") + suffix
    return f"{v:.4g}" + suffix


def _humanize(v: float) -> str:
    v = float(v)
    if v == 0 or math.isnan(v) or math.isinf(v):
        return _go_g4(v)
    if abs(v) >= 1:
        prefix = ""
        for p in ("k", "M", "G", "T", "P", "E", "Z", "Y"):
            if abs(v) < 1000:
                break
            prefix = p
            v /= 1000
        return _go_g4(v, prefix)
    prefix = ""
    for p in ("m", "u", "n", "p", "f", "a", "z", "y"):
        if abs(v) >= 1:
            break
        prefix = p
        v *= 1000
    return _go_g4(v, prefix)


def _humanize1024(v: float) -> str:
    v = float(v)
    if abs(v) <= 1 or math.isnan(v) or math.isinf(v):
        return _go_g4(v)
    prefix = ""
    for p in ("ki", "Mi", "Gi", "Ti", "Pi", "Ei", "Zi", "Yi"):
        if abs(v) < 1024:
            break
        prefix = p
        v /= 1024
    return _go_g4(v, prefix)


def _humanize_duration(v: float) -> str:
    v = float(v)
    if math.isnan(v) or math.isinf(v):
        return _go_g4(v)
    if v == 0:
        return _go_g4(v, "s")
    if abs(v) >= 1:
        sign = ""
        if v < 0:
            sign, v = "-", -v
        d = int(v)
        seconds, minutes, hours, days = d % 60, (d // 60) % 60, (d // 3600) % 24, d // 86400
        if days:
            return f"{sign}{days}d {hours}h {minutes}m {seconds}s"
        if hours:
            return f"{sign}{hours}h {minutes}m {seconds}s"
        if minutes:
            return f"{sign}{minutes}m {seconds}s"
        return f"{sign}{v:.4g}s"
    prefix = ""
    for p in ("m", "u", "n", "p", "f", "a", "z", "y"):
        if abs(v) >= 1:
            break
        prefix = p
        v *= 1000
    return f"{v:.4g}{prefix}s"


_PRINTF_RE = re.compile(r"%([-+ #0]*)(\d*)(?:\.(\d+))?([a-zA-Z%])")


def _printf(fmt: str, *args: Any) -> str:
    it = iter(args)

    def rep(m: re.Match) -> str:
        flags, width, prec, verb = m.groups()
        if verb == "%":
            return "%"
        try:
            a = next(it)
        except StopIteration:
            return f"%!{verb}(MISSING)"
        spec = flags + width + (f".{prec}" if prec is not None else "")
        if verb in "fFeEgG":
            return format(float(a), spec + verb)
        if verb == "d":
            return format(int(float(a)), spec + "d")
        if verb == "q":
            return '"' + str(a).replace("\\", "\\\\").replace('"', '\\"') + '"'
        if verb == "v":
            return format(_go_v(a), spec)
        return format(str(a), spec)

    return _PRINTF_RE.sub(rep, fmt)


def _to_float(x: Any) -> float:
    return float(x)


_FUNCS = {
    "humanize": lambda x: _humanize(_to_float(x)),
    "humanize1024": lambda x: _humanize1024(_to_float(x)),
    "humanizePercentage": lambda x: _go_g4(_to_float(x) * 100, "%"),
    "humanizeDuration": lambda x: _humanize_duration(_to_float(x)),
    "printf": _printf,
    "toUpper": lambda s: str(s).upper(),
    "toLower": lambda s: str(s).lower(),
    "title": lambda s: str(s).title(),
    "index": lambda m, k: (m or {}).get(k, ""),
}

_ACTION_RE = re.compile(r"\{\{(-?)\s*(.*?)\s*(-?)\}\}", re.DOTALL)
_TOKEN_RE = re.compile(r'"(?:[^"\\]|\\.)*"|`[^`]*`|\||[^\s|]+')


class _TemplateError(Exception):
    pass


def _eval_term(tok: str, data: dict) -> Any:
    if tok.startswith('"'):
        return bytes(tok[1:-1], "utf-8").decode("unicode_escape")
    if tok.startswith("`"):
        return tok[1:-1]
    if tok.startswith(("$", ".")):
        parts = tok.split(".")
        if tok.startswith("$"):
            root = parts[0][1:]
            rest = parts[1:]
            if root == "":
                root, rest = "", parts[1:]
            env = {
                "labels": data["labels"],
                "externalLabels": data["externalLabels"],
                "externalURL": data["externalURL"],
                "value": data["value"],
                "": data["dot"],
            }
            if root not in env:
                raise _TemplateError(f'undefined variable "${root}"')
            cur: Any = env[root]
        else:
            cur = data["dot"]
            rest = parts[1:]
        for p in rest:
            if p == "":
                continue
            if isinstance(cur, dict):
                cur = cur.get(p, "")
            else:
                raise _TemplateError(f"can't evaluate field {p}")
        return cur
    try:
        return float(tok) if any(c in tok for c in ".eE") else int(tok)
    except ValueError:
        pass
    if tok in ("true", "false"):
        return tok == "true"
    raise _TemplateError(f'function "{tok}" not defined')


def _eval_pipeline(expr: str, data: dict) -> Any:
    tokens = _TOKEN_RE.findall(expr)
    cmds: list[list[str]] = [[]]
    for t in tokens:
        if t == "|":
            cmds.append([])
        else:
            cmds[-1].append(t)
    val: Any = None
    first = True
    for cmd in cmds:
        if not cmd:
            raise _TemplateError("missing command")
        head, args = cmd[0], cmd[1:]
        if head in _FUNCS:
            argv = [_eval_term(a, data) for a in args]
            if not first:
                argv.append(val)
            try:
                val = _FUNCS[head](*argv)
            except (TypeError, ValueError) as e:
                raise _TemplateError(f"error calling {head}: {e}") from None
        else:
            if args or not first:
                raise _TemplateError(f'function "{head}" not defined')
            val = _eval_term(head, data)
        first = False
    return val


def expand_template(
    text: str,
    labels: dict[str, str],
    value: float,
    external_labels: dict[str, str] | None = None,
    external_url: str = "",
    name: str = "",
) -> str:
    """Expand a Prometheus alert template (subset, see module docstring)."""
    if "{{" not in text:
        return text
    data = {
        "labels": dict(labels),
        "externalLabels": dict(external_labels or {}),
        "externalURL": external_url,
        "value": float(value),
    }
    data["dot"] = {"Labels": data["labels"], "ExternalLabels": data["externalLabels"],
                   "ExternalURL": external_url, "Value": data["value"]}
    out: list[str] = []
    pos = 0
    try:
        for m in _ACTION_RE.finditer(text):
            lit = text[pos : m.start()]
            if m.group(1):
                lit = lit.rstrip()
            out.append(lit)
            body = m.group(2)
            if body.startswith("/*"):
                pass
            else:
                v = _eval_pipeline(body, data)
                out.append(_go_v(v) if not isinstance(v, dict) else "map[" + " ".join(
                    f"{k}:{x}" for k, x in sorted(v.items())) + "]")
            pos = m.end()
            if m.group(3):
                rest = text[pos:]
                pos += len(rest) - len(rest.lstrip())
        out.append(text[pos:])
    except _TemplateError as e:
        return f"<error expanding template: template: __alert_{name}: {e}>"
    return "".join(out)


# ---------------------------------------------------------------------------------------------- rules


@dataclass
class AlertRule:
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


# ---------------------------------------------------------------------------------------------- alerts


@dataclass
class Alert:
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
        """Evaluate every rule at ``at``; returns the pending and firing alerts."""
        at = float(at)
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
        out = []
        for active in self._active:
            for key in sorted(active):
                a = active[key]
                if a.state in states:
                    out.append(a)
        return out

    def firing(self) -> list[Alert]:
        return self.alerts(("firing",))

    def generator_url(self, rule: AlertRule) -> str:
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
        d["value"] = _go_e(a.value)
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
        out = []
        for active in self._active:
            for a in active.values():
                if a.state == "firing":
                    delta = max(self.resend_delay_s, a.rule.interval_s or 0.0)
                    ends = a.last_eval + 4 * delta
                    updated = a.last_eval
                elif a.state == "inactive" and not active_only and a.fired_at is not None:
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


# ---------------------------------------------------------------------------------------------- webhook


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

    ``alerts`` are items of :meth:`RuleEvaluator.alertmanager_alerts` (``active_only=False`` to include
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
