"""Alert rules, Prometheus alert state machine, Alertmanager views and webhook payloads."""

import re
from urllib.parse import parse_qs, urlsplit

import pytest

from stratus.twin.prom.alertmanager import fingerprint, rfc3339, webhook_payload
from stratus.twin.prom.query import eval_instant
from stratus.twin.prom.rules import RuleEvaluator, builtin_rules, load_rules, parse_duration
from stratus.twin.prom.template import expand_template
from stratus.twin.tsdb import TSDB

T0 = 1767225600.0  # 2026-01-01T00:00:00Z

RULES = """
groups:
  - name: test
    interval: 15s
    rules:
      - alert: PodDown
        expr: up{job="app"} == 0
        for: 1m
        labels:
          severity: critical
        annotations:
          summary: 'Pod {{ $labels.pod }} is down'
          description: '{{ $labels.namespace }}/{{ $labels.pod }} value {{ $value }} ({{ $value | humanizePercentage }})'
      - alert: Instant
        expr: errors > 0
        labels:
          severity: warning
        annotations:
          summary: now
      - record: ignored:recording
        expr: sum(up)
"""


def scrape(db, t, down=(), errors=0.0):
    samples = [("up", {"job": "app", "namespace": "hr", "pod": p}, 0.0 if p in down else 1.0) for p in ("a", "b")]
    samples.append(("errors", {"namespace": "hr"}, errors))
    db.add_many(samples, t)


def run(db, ev, t, **kw):
    scrape(db, t, **kw)
    return ev.evaluate(db, t)


@pytest.fixture
def setup():
    db = TSDB()
    ev = RuleEvaluator(load_rules(RULES), external_labels={"prometheus": "monitoring/k8s"})
    return db, ev


def test_duration_and_timestamp_helpers():
    assert [parse_duration(x) for x in ("30s", "1m", "15m", "1h30m", "0s", "0", None)] == [
        30, 60, 900, 5400, 0, 0, 0]
    with pytest.raises(ValueError):
        parse_duration("5 minutes")
    assert rfc3339(T0 + 5) == "2026-01-01T00:00:05Z"
    assert rfc3339(T0 + 5.25) == "2026-01-01T00:00:05.25Z"
    assert rfc3339(T0 + 5, millis=True) == "2026-01-01T00:00:05.000Z"


def test_pending_then_firing_after_for(setup):
    db, ev = setup
    assert run(db, ev, T0) == []
    alerts = run(db, ev, T0 + 15, down=("a",))
    assert [(a.labels["alertname"], a.state) for a in alerts] == [("PodDown", "pending")]
    assert ev.alertmanager_alerts() == []  # pending alerts are not sent
    for k in range(2, 5):  # 30 s, 45 s, 60 s after becoming active -> still pending
        run(db, ev, T0 + 15 * k, down=("a",))
        assert ev.alerts()[0].state == "pending"
    run(db, ev, T0 + 75, down=("a",))  # 60 s after activeAt
    (a,) = ev.alerts()
    assert a.state == "firing" and a.active_at == T0 + 15 and a.fired_at == T0 + 75
    (p,) = ev.prometheus_alerts()
    assert p == {
        "labels": {"alertname": "PodDown", "job": "app", "namespace": "hr", "pod": "a", "severity": "critical"},
        "annotations": {"summary": "Pod a is down", "description": "hr/a value 0 (0%)"},
        "state": "firing",
        "activeAt": "2026-01-01T00:00:15Z",
        "value": "0e+00",
    }
    # ALERTS series
    res = eval_instant(db, 'ALERTS{alertname="PodDown"}', T0 + 75)
    assert [(lab["alertstate"], lab["pod"], v) for lab, v in res] == [("firing", "a", 1.0)]
    assert eval_instant(db, "ALERTS_FOR_STATE", T0 + 75)[0][1] == T0 + 15


def test_for_zero_fires_immediately_and_value_format(setup):
    db, ev = setup
    run(db, ev, T0, errors=0.32)
    (a,) = ev.alerts()
    assert a.state == "firing" and a.labels["alertname"] == "Instant"
    assert ev.prometheus_alerts()[0]["value"] == "3.2e-01"
    # rule labels override, no __name__ leaks into alert labels
    assert a.labels == {"alertname": "Instant", "namespace": "hr", "severity": "warning"}


def test_resolution_retention_and_pending_drop(setup):
    db, ev = setup
    for k in range(6):
        run(db, ev, T0 + 15 * k, down=("a",))
    assert ev.firing()
    run(db, ev, T0 + 90)  # recovered
    assert ev.prometheus_alerts() == []
    assert ev.alertmanager_alerts() == []
    resolved = ev.alertmanager_alerts(active_only=False)
    assert len(resolved) == 1 and resolved[0]["endsAt"] == "2026-01-01T00:01:30.000Z"
    assert ev.alerts(("inactive",))[0].resolved_at == T0 + 90
    # ALERTS series go stale
    assert eval_instant(db, "ALERTS", T0 + 90) == []
    # kept 15 minutes for the Alertmanager view, then dropped
    t = T0 + 90
    while t < T0 + 90 + 900:
        t += 15
        run(db, ev, t)
        assert len(ev.alertmanager_alerts(active_only=False)) == 1
    run(db, ev, t + 15)
    assert ev.alertmanager_alerts(active_only=False) == []
    # a pending alert that disappears is dropped without a resolved record
    run(db, ev, t + 30, down=("b",))
    run(db, ev, t + 45)
    assert ev.alerts(("pending", "firing", "inactive")) == []
    # re-activation after resolution starts a fresh pending alert
    for k in range(4):
        run(db, ev, t + 60 + 15 * k, down=("b",))
    assert ev.alerts()[0].state == "pending" and ev.alerts()[0].active_at == t + 60


def test_keep_firing_for():
    rules = load_rules("""
groups:
  - name: g
    rules:
      - alert: Flappy
        expr: errors > 0
        keep_firing_for: 30s
        labels: {severity: warning}
        annotations: {summary: s}
""")
    db, ev = TSDB(), RuleEvaluator(rules)
    run(db, ev, T0, errors=1.0)
    assert ev.firing()
    run(db, ev, T0 + 15)
    run(db, ev, T0 + 30)
    assert ev.firing() and ev.prometheus_alerts()[0]["keepFiringSince"] == "2026-01-01T00:00:15Z"
    run(db, ev, T0 + 45)  # 30 s without results
    assert ev.firing() == []


def test_alertmanager_view_fingerprint_and_generator_url(setup):
    db, ev = setup
    for k in range(6):
        run(db, ev, T0 + 15 * k, down=("a", "b"))
    am = ev.alertmanager_alerts()
    assert len(am) == 2
    a = next(x for x in am if x["labels"]["pod"] == "a")
    assert set(a) == {"labels", "annotations", "startsAt", "endsAt", "updatedAt", "fingerprint", "generatorURL",
                      "receivers", "status"}
    assert a["labels"]["prometheus"] == "monitoring/k8s"  # external labels added
    assert a["status"] == {"state": "active", "silencedBy": [], "inhibitedBy": [], "mutedBy": []}
    assert a["receivers"] == [{"name": "default"}]
    assert a["startsAt"] == "2026-01-01T00:01:00.000Z"  # Prometheus sends FiredAt (activeAt + for) as startsAt
    assert a["updatedAt"] == "2026-01-01T00:01:15.000Z"
    assert a["endsAt"] == "2026-01-01T00:05:15.000Z"  # 4 x resend delay (1m) ahead
    assert re.fullmatch(r"[0-9a-f]{16}", a["fingerprint"])
    assert a["fingerprint"] == fingerprint(a["labels"])
    # stable: same label set -> same fingerprint, on another evaluator and after more evaluations
    run(db, ev, T0 + 90, down=("a", "b"))
    assert next(x for x in ev.alertmanager_alerts() if x["labels"]["pod"] == "a")["fingerprint"] == a["fingerprint"]
    assert fingerprint(dict(reversed(list(a["labels"].items())))) == a["fingerprint"]
    # Prometheus/Alertmanager test vectors (common/model LabelsToSignature)
    assert fingerprint({}) == f"{14695981039346656037:016x}"
    assert int(fingerprint({"name": "garland, briggs", "fear": "love is not enough"}), 16) == 5799056148416392346
    url = urlsplit(a["generatorURL"])
    assert f"{url.scheme}://{url.netloc}{url.path}" == "http://prometheus.twin:9090/graph"
    assert parse_qs(url.query) == {"g0.expr": ['up{job="app"} == 0'], "g0.tab": ["1"]}
    assert "+%3D%3D+0" in a["generatorURL"]  # Go url.QueryEscape: space -> +, '=' escaped


def test_webhook_payload_firing_and_resolved(setup):
    db, ev = setup
    for k in range(6):
        run(db, ev, T0 + 15 * k, down=("a", "b"))
    p = webhook_payload(ev.alertmanager_alerts(), receiver="stratus")
    assert p["version"] == "4" and p["status"] == "firing" and p["receiver"] == "stratus"
    assert p["groupLabels"] == {"namespace": "hr"}
    assert p["groupKey"] == '{}:{namespace="hr"}'
    assert p["truncatedAlerts"] == 0
    assert p["externalURL"] == "http://alertmanager.twin:9093"
    assert p["commonLabels"] == {"alertname": "PodDown", "job": "app", "namespace": "hr",
                                 "prometheus": "monitoring/k8s", "severity": "critical"}
    assert p["commonAnnotations"] == {}  # summaries differ per pod
    assert len(p["alerts"]) == 2
    for al in p["alerts"]:
        assert set(al) == {"status", "labels", "annotations", "startsAt", "endsAt", "generatorURL", "fingerprint"}
        assert al["status"] == "firing" and al["endsAt"] == "0001-01-01T00:00:00Z"
        assert al["startsAt"] == "2026-01-01T00:01:00Z"
    # pod a recovers: the group now has one resolved and one firing alert
    run(db, ev, T0 + 90, down=("b",))
    p2 = webhook_payload(ev.alertmanager_alerts(active_only=False))
    assert p2["status"] == "firing"
    st = {al["labels"]["pod"]: (al["status"], al["endsAt"]) for al in p2["alerts"]}
    assert st == {"a": ("resolved", "2026-01-01T00:01:30Z"), "b": ("firing", "0001-01-01T00:00:00Z")}
    run(db, ev, T0 + 105)
    p3 = webhook_payload(ev.alertmanager_alerts(active_only=False))
    assert p3["status"] == "resolved" and {al["status"] for al in p3["alerts"]} == {"resolved"}
    assert webhook_payload([], receiver="a.b")["receiver"] == r"a\.b"


def test_templates():
    lab = {"namespace": "hr", "pod": "geo-1"}
    assert expand_template("{{ $labels.pod }} in {{ $labels.namespace }}{{ $labels.cluster }}", lab, 1) == \
        "geo-1 in hr"
    assert expand_template("{{ $value | humanizePercentage }}", lab, 0.1234) == "12.34%"
    assert expand_template("{{ $value | humanize }}", lab, 1234567) == "1.235M"
    assert expand_template("{{ humanize $value }}", lab, 0.00125) == "1.25m"
    assert expand_template("{{ $value | humanizeDuration }}", lab, 3725) == "1h 2m 5s"
    assert expand_template('{{ printf "%.2f" $value }}', lab, 2.0 / 3) == "0.67"
    assert expand_template("{{ $value }}", lab, 1500.0) == "1500"
    assert expand_template("{{ .Labels.pod }} {{ $externalLabels.prometheus }}", lab, 0,
                           {"prometheus": "monitoring/k8s"}) == "geo-1 monitoring/k8s"
    assert expand_template("{{ nope }}", lab, 0).startswith("<error expanding template")


def test_builtin_rule_files():
    bench = builtin_rules("benchmark")
    assert [r.name for r in bench] == [
        "KubePodCrashLooping", "KubeContainerWaiting", "KubePodNotReady", "PodSchedulingFailure",
        "KubeDeploymentReplicasMismatch", "DeploymentNotReady", "KubeContainerOOMKilled",
        "HighRequestErrorRate", "HighRequestLatency", "NoRequestsReceived"]
    assert all(30 <= r.for_s <= 60 for r in bench)
    kp = {r.name: r for r in builtin_rules("kube-prometheus")}
    assert {n: r.for_s for n, r in kp.items()} == {
        "KubePodCrashLooping": 900, "KubePodNotReady": 900, "KubeDeploymentReplicasMismatch": 900,
        "KubeDeploymentRolloutStuck": 900, "KubeContainerWaiting": 3600}
    for r in [*bench, *kp.values()]:
        assert r.labels.get("severity") in ("warning", "critical")
        assert {"summary", "description", "runbook_url"} <= set(r.annotations)
        if r.name.startswith("Kube"):
            assert r.annotations["runbook_url"].startswith("https://runbooks.prometheus-operator.dev/runbooks/kubernetes/")


def test_benchmark_rules_fire_on_twin_like_metrics():
    """CrashLoopBackOff + error spike on KSM/span-metrics shaped series fire the benchmark rules."""
    db = TSDB()
    ev = RuleEvaluator(builtin_rules("benchmark"))
    ksm = {"job": "kube-state-metrics", "namespace": "hr"}
    calls = {"ok": 0.0, "err": 0.0}
    for k in range(20):
        t = T0 + 15 * k
        bad = k >= 4
        calls["ok"] += 15 * 10
        calls["err"] += 15 * (5 if bad else 0)
        span = {"job": "otel", "namespace": "hr", "service_name": "geo", "span_name": "Nearby",
                "span_kind": "SPAN_KIND_SERVER"}
        samples = [
            ("kube_pod_status_ready", {**ksm, "pod": "geo-1", "condition": "false"}, 1.0 if bad else 0.0),
            ("kube_pod_status_ready", {**ksm, "pod": "geo-1", "condition": "true"}, 0.0 if bad else 1.0),
            ("kube_pod_status_phase", {**ksm, "pod": "geo-1", "phase": "Running"}, 1.0),
            ("kube_deployment_spec_replicas", {**ksm, "deployment": "geo"}, 1.0),
            ("kube_deployment_status_replicas_available", {**ksm, "deployment": "geo"}, 0.0 if bad else 1.0),
            ("kube_deployment_status_replicas_updated", {**ksm, "deployment": "geo"}, 1.0),
            ("traces_span_metrics_calls_total", {**span, "status_code": "STATUS_CODE_UNSET"}, calls["ok"]),
            ("traces_span_metrics_calls_total", {**span, "status_code": "STATUS_CODE_ERROR"}, calls["err"]),
        ]
        if bad:
            samples.append(("kube_pod_container_status_waiting_reason",
                            {**ksm, "pod": "geo-1", "container": "hotel-reserv-geo", "reason": "CrashLoopBackOff"}, 1.0))
        db.add_many(samples, t)
        ev.evaluate(db, t)
    firing = {a["labels"]["alertname"]: a for a in ev.prometheus_alerts() if a["state"] == "firing"}
    assert set(firing) == {"KubePodCrashLooping", "KubePodNotReady", "KubeDeploymentReplicasMismatch",
                           "DeploymentNotReady", "HighRequestErrorRate"}
    err = firing["HighRequestErrorRate"]
    assert err["labels"] == {"alertname": "HighRequestErrorRate", "namespace": "hr", "service_name": "geo",
                             "severity": "critical"}
    assert err["annotations"]["description"].startswith("33.33% of the requests served by geo")
    crash = firing["KubePodCrashLooping"]
    assert crash["annotations"]["description"] == \
        'Pod hr/geo-1 (hotel-reserv-geo) is in waiting state (reason: "CrashLoopBackOff").'
    assert all(r["health"] == "ok" for g in ev.prometheus_rules()["groups"] for r in g["rules"])
