"""Real Prometheus evaluates the shipped rules over the twin's /metrics and a real Alertmanager holds the
alerts: its ``/api/v2/alerts`` items match the twin's own Alertmanager view field for field."""

from __future__ import annotations

from pathlib import Path

import httpx
import yaml
from prom_server import RealAlertmanager, RealPrometheus
from testkit import eventually

from stratus.cluster.promhttp import PrometheusHTTP
from stratus.twin.faults import inject
from stratus.twin.prom.http import serve_prometheus
from stratus.twin.prom.rules import DATA_DIR
from tests.conftest import warmed_world

ALERT = "DeploymentNotReady"
FIRE_TIMEOUT_S = 45.0


def _rules_without_for(tmp: Path) -> Path:
    """The shipped benchmark rules with ``for: 0s``, so a wall-clock Prometheus fires them at once."""
    doc = yaml.safe_load((DATA_DIR / "rules-benchmark.yaml").read_text())
    for group in doc["groups"]:
        for rule in group["rules"]:
            rule["for"] = "0s"
    path = tmp / "rules-benchmark-now.yaml"
    path.write_text(yaml.safe_dump(doc))
    return path


def test_real_alertmanager_alert_equals_the_twins(tmp_path: Path):
    world = warmed_world()
    inject(world, "scale_to_zero", "geo")
    world.advance(120)  # past the rule's `for: 1m` in the twin
    filt = {"filter": f'alertname="{ALERT}"'}
    with serve_prometheus(world) as twin:
        twin_alerts = httpx.get(twin.url + "/api/v2/alerts", params=filt).json()
        assert [a["labels"]["deployment"] for a in twin_alerts] == ["geo"]
        am_dir, prom_dir = tmp_path / "am", tmp_path / "prom"
        am_dir.mkdir()
        prom_dir.mkdir()
        am_config = {"route": {"receiver": "default", "group_wait": "1s", "group_interval": "1s",
                               "repeat_interval": "1h"},
                     "receivers": [{"name": "default"}]}
        with RealAlertmanager(am_dir, am_config) as am:
            prom_config = {
                "global": {"scrape_interval": "1s", "evaluation_interval": "1s",
                           "external_labels": dict(world.rules.external_labels)},
                "rule_files": [str(_rules_without_for(tmp_path))],
                "alerting": {"alertmanagers": [{"static_configs": [{"targets": [am.url.removeprefix("http://")]}]}]},
                "scrape_configs": [{"job_name": "stratus-twin", "honor_labels": True,
                                    "static_configs": [{"targets": [twin.url.removeprefix("http://")]}]}],
            }
            with RealPrometheus(prom_dir, prom_config):
                real = eventually(lambda: httpx.get(am.url + "/api/v2/alerts", params=filt, timeout=5).json(),
                                  FIRE_TIMEOUT_S, f"{ALERT} in the real Alertmanager")
                via_client = PrometheusHTTP(alertmanager_url=am.url).alerts()
    real_alert, twin_alert = real[0], twin_alerts[0]
    assert len(real) == 1
    for key in ("labels", "annotations", "fingerprint", "receivers"):
        assert real_alert[key] == twin_alert[key], key
    # the twin speaks Alertmanager 0.34's API, a superset of Debian's 0.25 (status.mutedBy is newer)
    assert set(real_alert) <= set(twin_alert)
    assert set(real_alert["status"]) <= set(twin_alert["status"])
    assert real_alert["status"]["state"] == twin_alert["status"]["state"] == "active"
    assert real_alert["endsAt"] > real_alert["startsAt"] and twin_alert["endsAt"] > twin_alert["startsAt"]
    assert ALERT in {a["labels"]["alertname"] for a in via_client}
