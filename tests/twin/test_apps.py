"""The twin's three apps: each builds from its data, runs healthy and quiet, and shows faults' symptoms.

SocialNetwork and the Astronomy Shop run their processes through ``twin.services`` (runtime families);
HotelReservation keeps its own model, checked here only where the generalised loader touches it.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from stratus.bench.scenarios import load_dir
from stratus.twin import services
from stratus.twin.apps import available_apps, load_app
from stratus.twin.controllers import pod_ready
from stratus.twin.faults import inject
from stratus.twin.world import World

SCENARIOS = Path(__file__).resolve().parents[2] / "scenarios"
NEW_APPS = ("social-network", "astronomy-shop")


def _warm(app: str, seed: int = 3) -> World:
    w = World(app=app, seed=seed)
    w.warm_up(300)
    return w


def _server_calls(w: World, service: str, status: str) -> float:
    return sum(acc[0] for (svc, _op, kind, st), acc in w.telemetry.spans.items()
               if svc == service and kind == "SPAN_KIND_SERVER" and st == status)


def _logs(w: World, component: str) -> str:
    out = []
    for pod in w.store.list("Pod", w.namespace, {w.app.label_key: component}):
        for previous in (False, True):
            out += [line for _, line in w.logs.read(w.namespace, pod["metadata"]["name"], None, previous)]
    return "\n".join(out)


def _alerts(w: World) -> set[tuple[str, str]]:
    return {(a["labels"]["alertname"], a["labels"].get("service_name") or a["labels"].get("deployment", ""))
            for a in w.firing()}


def test_all_three_apps_are_available() -> None:
    assert set(available_apps()) >= {"hotel-reservation", *NEW_APPS}


@pytest.mark.parametrize("app", NEW_APPS)
def test_app_renders_a_deployment_per_component_and_services_where_declared(app: str) -> None:
    a = load_app(app)
    objs = a.manifests()
    deployments = {o["metadata"]["name"] for o in objs if o["kind"] == "Deployment"}
    services = {o["metadata"]["name"] for o in objs if o["kind"] == "Service"}
    assert deployments == set(a.components)
    assert services == {c for c, s in a.components.items() if s.get("service", True)}
    for obj in objs:
        if obj["kind"] == "Deployment":
            name = obj["metadata"]["name"]
            assert obj["spec"]["selector"]["matchLabels"] == {a.label_key: name}
            assert obj["spec"]["template"]["spec"]["containers"][0]["name"] == name


def test_social_network_topology_follows_the_helm_chart() -> None:
    a = load_app("social-network")
    env = {e["name"]: e["value"] for e in a.env_for("user-service")}
    assert env["MONGO_ADDR"] == "user-mongodb:27017"
    assert env["MEMC_ADDR"] == "user-memcached:11211"
    assert env["SOCIAL_GRAPH_SERVICE_ADDR"] == "social-graph-service:9090"
    deploy = a.deployment("compose-post-service", a.namespace)
    assert deploy["spec"]["template"]["spec"]["containers"][0]["command"] == ["ComposePostService"]
    kinds = [a.kind_of(c) for c in a.components]
    assert (kinds.count("mongodb"), kinds.count("memcached"), kinds.count("redis")) == (6, 4, 3)
    assert len(a.components) == 27


def test_astronomy_shop_topology_follows_the_helm_chart() -> None:
    a = load_app("astronomy-shop")
    cart = {e["name"]: e["value"] for e in a.env_for("cart")}
    assert cart["VALKEY_ADDR"] == "valkey-cart:6379"
    assert (cart["FLAGD_HOST"], cart["FLAGD_PORT"]) == ("flagd", "8013")
    assert cart["OTEL_SERVICE_NAME"] == "cart"
    checkout = {e["name"]: e["value"] for e in a.env_for("checkout")}
    assert checkout["KAFKA_ADDR"] == "kafka:9092"
    assert checkout["PRODUCT_CATALOG_ADDR"] == "product-catalog:8080"
    container = a.deployment("cart", a.namespace)["spec"]["template"]["spec"]["containers"][0]
    assert "command" not in container  # the image's entrypoint runs the service
    assert {"flagd", "kafka", "valkey-cart", "load-generator", "fraud-detection", "accounting"} <= set(a.components)


def test_hotel_reservation_names_and_env_are_unchanged_by_the_generic_loader() -> None:
    a = load_app("hotel-reservation")
    assert a.container_name("mongodb-geo") == "hotel-reserv-geo-mongo"
    assert a.container_name("memcached-reserve") == "hotel-reserv-reserve-mmc"
    assert a.container_name("consul") == "hotel-reserv-consul"
    assert [e["name"] for e in a.env_for("rate")] == ["JAEGER_SAMPLE_RATIO", "CONSUL_ADDR", "MONGO_ADDR", "MONGO_DB",
                                                      "MEMC_ADDR"]
    assert a.env_for("memcached-rate") == [{"name": "MEMCACHED_CACHE_SIZE", "value": "128"},
                                           {"name": "MEMCACHED_THREADS", "value": "2"}]


@pytest.mark.parametrize("app", NEW_APPS)
def test_app_runs_healthy_with_quiet_alerts(app: str) -> None:
    w = _warm(app)
    pods = w.store.list("Pod", w.namespace)
    assert len(pods) == len(w.app.components)
    assert all(pod_ready(p) for p in pods), [p["metadata"]["name"] for p in pods if not pod_ready(p)]
    assert w.firing() == []
    entry_ok = _server_calls(w, w.app.entry, "STATUS_CODE_UNSET")
    assert entry_ok > 0.9 * w.app.rps * 300
    assert _server_calls(w, w.app.entry, "STATUS_CODE_ERROR") == 0


def test_social_network_scaled_down_service_fails_its_callers_with_thrift_errors() -> None:
    w = _warm("social-network")
    inject(w, "scale_to_zero", "user-service")
    w.advance(240)
    alerts = _alerts(w)
    assert ("HighRequestErrorRate", "nginx-thrift") in alerts
    assert ("DeploymentNotReady", "user-service") in alerts
    assert "Failed to connect user-service: connect() failed: Connection refused" in _logs(w, "compose-post-service")


def test_social_network_wrong_binary_on_port_9090_answers_invalid_method() -> None:
    w = _warm("social-network")
    inject(w, "wrong_command", "compose-post-service", {"command": "TextService"})
    w.advance(240)
    assert ("HighRequestErrorRate", "compose-post-service") in _alerts(w)
    assert "Invalid method name: 'ComposePost'" in _logs(w, "nginx-thrift")


def test_social_network_service_exits_when_its_mongodb_is_gone_at_start_up() -> None:
    w = _warm("social-network")
    inject(w, "scale_to_zero", "post-storage-mongodb")
    for pod in w.store.list("Pod", w.namespace, {"app": "post-storage-service"}):
        w.delete_pod(pod)
    w.advance(180)
    logs = _logs(w, "post-storage-service")
    assert "Failed to create mongodb index, try again" in logs
    pod = w.store.list("Pod", w.namespace, {"app": "post-storage-service"})[0]
    assert pod["status"]["containerStatuses"][0]["restartCount"] >= 2
    assert ("HighRequestErrorRate", "home-timeline-service") in _alerts(w)


def test_astronomy_shop_cart_fails_requests_when_valkey_is_gone() -> None:
    w = _warm("astronomy-shop")
    before = _server_calls(w, "cart", "STATUS_CODE_ERROR")
    inject(w, "scale_to_zero", "valkey-cart")
    w.advance(240)
    assert _server_calls(w, "cart", "STATUS_CODE_ERROR") > before
    assert ("HighRequestErrorRate", "cart") in _alerts(w)
    assert "Can't access cart storage" in _logs(w, "cart")
    assert all(pod_ready(p) for p in w.store.list("Pod", w.namespace, {w.app.label_key: "cart"}))


def test_astronomy_shop_checkout_cannot_start_without_kafka() -> None:
    w = _warm("astronomy-shop")
    inject(w, "env_misconfig", "checkout", {"var": "KAFKA_ADDR", "value": "kafka:9999"})
    w.advance(240)
    waiting = [cs["state"].get("waiting", {}).get("reason")
               for p in w.store.list("Pod", w.namespace, {w.app.label_key: "checkout"})
               for cs in p["status"].get("containerStatuses", [])]
    assert "CrashLoopBackOff" in waiting
    assert "kafka: client has run out of available brokers to talk to" in _logs(w, "checkout")


def test_astronomy_shop_missing_image_names_its_own_registry() -> None:
    w = _warm("astronomy-shop")
    inject(w, "missing_image", "email")
    w.advance(60)
    messages = [e["message"] for e in w.store.events(w.namespace) if e.get("reason") == "Failed"]
    assert any('"ghcr.io/open-telemetry/demo:v0.0.0-missing"' in m for m in messages), messages
    assert not any("docker.io/ghcr.io" in m for m in messages)


@pytest.mark.parametrize("prefix,app", [("social-", "social-network"), ("astro-", "astronomy-shop")])
def test_scenario_files_cover_the_new_apps(prefix: str, app: str) -> None:
    scenarios = [sc for path, sc in load_dir(SCENARIOS) if path.name.startswith(prefix)]
    assert all(sc.app == app for sc in scenarios)
    faulty = [sc for sc in scenarios if sc.faults]
    assert len(faulty) >= 8
    assert len({sc.faults[0].type for sc in faulty}) >= 8
    assert len({sc.seed for sc in scenarios}) == len(scenarios)
    assert any(not sc.faults and not sc.expect.detected for sc in scenarios)


def test_a_family_missing_from_the_app_file_is_named_in_the_error() -> None:
    a = load_app("social-network")
    a.binaries["TextService"]["family"] = "cobol"
    with pytest.raises(ValueError, match=r"binaries\.TextService\.family 'cobol' is not in logs\.families"):
        World(app=a, seed=1)


def test_log_templates_fill_only_their_placeholders() -> None:
    line = services.fill('{"level":"info","msg":"listening on {port}"}', port=8080)
    assert line == '{"level":"info","msg":"listening on 8080"}'
    assert services.stamp(0.0, "boost") == "1970-Jan-01 00:00:00.000000"
    assert services.stamp(0.0, "nginx") == "1970/01/01 00:00:00"
