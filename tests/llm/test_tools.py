"""The LLM's read tools are bounded with explicit "more ... omitted" markers, and redaction masks secrets."""

from __future__ import annotations

import copy
import re
from typing import Any

import pytest

from stratus.tools import telemetry as tt
from stratus.tools.redact import MASK, redact_manifest, redact_text

NS = "test-hotel-reservation"
BOUND = tt.MAX_CHARS + len("\n... 999999 more characters omitted")


def _add_pods(world: Any, n: int) -> list[str]:
    template = world.store.list("Pod", NS, {world.app.label_key: "geo"})[0]
    names = []
    for i in range(n):
        pod = copy.deepcopy(template)
        pod["metadata"] = {"name": f"extra-{i:03d}", "namespace": NS, "labels": {"extra": "yes"}}
        world.store.create(pod)
        names.append(pod["metadata"]["name"])
    return names


def _omitted(text: str, what: str) -> int:
    m = re.search(rf"\.\.\. (\d+) (?:more|earlier) {what} omitted", text)
    assert m, f"no '... N more {what} omitted' marker in:\n{text[-300:]}"
    return int(m.group(1))


# --- bounds ------------------------------------------------------------------------------------
def test_list_objects_is_bounded_with_a_marker(cluster: Any) -> None:
    total = len(cluster.list("Pod", NS)) + 60
    _add_pods(cluster.world, 60)
    out = tt.list_objects(cluster, "Pod", NS)
    lines = out.splitlines()
    assert len(lines) == tt.MAX_LINES + 1
    assert _omitted(out, "Pod objects") == total - tt.MAX_LINES
    assert all("ready" in line and "restarts" in line for line in lines[:-1])
    assert len(out) <= BOUND


def test_list_objects_small_result_is_complete(cluster: Any) -> None:
    out = tt.list_objects(cluster, "Service", NS)
    assert "omitted" not in out
    assert len(out.splitlines()) == len(cluster.list("Service", NS))
    assert tt.list_objects(cluster, "NetworkPolicy", NS) == f"no NetworkPolicy objects in namespace {NS}"


def test_list_objects_counts_past_the_cluster_limit(cluster: Any) -> None:
    _add_pods(cluster.world, 250)
    total = len(cluster.world.store.list("Pod", NS))
    out = tt.list_objects(cluster, "Pod", NS)
    assert _omitted(out, "Pod objects") == total - tt.MAX_LINES


def test_events_are_bounded_newest_first(cluster: Any) -> None:
    world = cluster.world
    geo = world.store.get("Deployment", "geo", NS)
    for i in range(100):
        world.store.event(geo, "Warning", "Flapping", f"distinct warning number {i:03d}", "test")
    out = tt.events(cluster, NS, since_s=3600)
    lines = out.splitlines()
    assert len(lines) == tt.MAX_LINES + 1
    assert _omitted(out, "events") >= 60
    assert "number 099" in lines[0]  # newest first: what just happened is never the part cut off
    assert "number 000" not in out
    only = tt.events(cluster, NS, since_s=3600, name="geo", warnings_only=True)
    assert all("Warning" in line for line in only.splitlines()[:-1])


def test_pod_logs_are_bounded_with_a_marker(cluster: Any) -> None:
    world = cluster.world
    pod = world.store.list("Pod", NS, {world.app.label_key: "geo"})[0]
    world.logs.write(pod, pod["spec"]["containers"][0]["name"], [f"log line {i:03d}" for i in range(300)])
    out = tt.pod_logs(cluster, pod["metadata"]["name"], NS, tail=100)
    assert len(out.splitlines()) == tt.MAX_LINES + 1
    assert _omitted(out, "log lines") == 100 - tt.MAX_LINES
    grep = tt.pod_logs(cluster, pod["metadata"]["name"], NS, grep=r"line 29\d", tail=50)
    assert grep.splitlines() == [f"log line {i}" for i in range(290, 300)]
    assert tt.pod_logs(cluster, pod["metadata"]["name"], NS, grep="no such text") == "no matching log lines"
    assert tt.pod_logs(cluster, pod["metadata"]["name"], NS, grep="(").startswith("error: invalid grep pattern")
    assert tt.pod_logs(cluster, "missing-pod", NS).startswith("error:")


def test_pod_logs_keep_the_newest_lines(cluster: Any) -> None:
    world = cluster.world
    pod = world.store.list("Pod", NS, {world.app.label_key: "geo"})[0]
    world.logs.write(pod, pod["spec"]["containers"][0]["name"], [f"log line {i:03d}" for i in range(300)])
    out = tt.pod_logs(cluster, pod["metadata"]["name"], NS, tail=100)
    assert "log line 299" in out


def test_get_object_is_bounded_by_characters(cluster: Any) -> None:
    cluster.world.store.create({"apiVersion": "v1", "kind": "ConfigMap",
                                "metadata": {"name": "huge", "namespace": NS},
                                "data": {f"key{i}": "x" * 100 for i in range(200)}})
    out = tt.get_object(cluster, "ConfigMap", "huge", NS)
    assert len(out) <= BOUND
    assert _omitted(out, "characters") > 10_000
    assert tt.get_object(cluster, "ConfigMap", "absent", NS).startswith("error:")


def test_promql_is_bounded(cluster: Any) -> None:
    out = tt.promql(cluster, '{__name__=~".+"}')
    assert len(out) <= BOUND
    assert "more characters omitted" in out or "more series omitted" in out
    few = tt.promql(cluster, "count by (namespace) (kube_pod_info)")
    assert "omitted" not in few and few.splitlines() == [f'{{namespace="{NS}"}} {len(cluster.list("Pod", NS))}']
    assert tt.promql(cluster, "sum(").startswith("error:")


class _Stub:
    """A Cluster that returns more than any tool may show (to exercise every bound without a twin)."""

    def __init__(self, n: int) -> None:
        self.n = n

    def now(self) -> float:
        return 10_000.0

    def query_range(self, q: str, start: float, end: float, step: float) -> dict[str, Any]:
        return {"resultType": "matrix", "result": [
            {"metric": {"pod": f"p{i}"}, "values": [[start, "1"], [end, "2"]]} for i in range(self.n)]}

    def traces(self, service: str | None, since: float, limit: int) -> list[dict[str, Any]]:
        return [{"spans": [{"service": f"svc{i}", "peer": f"dep{i}", "kind": "CLIENT", "duration_ms": 3.0,
                            "status": "ERROR", "error": "call failed: Authorization: Bearer abcdefgh12345678"}]}
                for i in range(self.n)]

    def alerts(self) -> list[dict[str, Any]]:
        return [{"labels": {"alertname": "KubePodCrashLooping", "namespace": NS, "pod": f"p{i}",
                            "severity": "warning"}, "annotations": {"description": "x"}, "startsAt": "t"}
                for i in range(self.n)]


def test_range_traces_and_alerts_are_bounded() -> None:
    stub = _Stub(100)
    assert _omitted(tt.promql_range(stub, "up"), "series") == 60  # type: ignore[arg-type]
    traces = tt.trace_summary(stub)  # type: ignore[arg-type]
    assert _omitted(traces, "edges") == 60
    assert "abcdefgh12345678" not in traces and "Bearer [REDACTED]" in traces
    assert _omitted(tt.firing_alerts(stub, NS), "alerts") == 60  # type: ignore[arg-type]


def test_findings_are_bounded(cluster: Any) -> None:
    text, found = tt.findings(cluster, NS, limit=3)
    assert len(text.splitlines()) <= 4
    if len(found) > 3:
        assert _omitted(text, "findings") == len(found) - 3


# --- redaction ---------------------------------------------------------------------------------
def test_secret_data_is_masked_and_input_untouched() -> None:
    secret = {"apiVersion": "v1", "kind": "Secret",
              "metadata": {"name": "s", "managedFields": [{"manager": "kubectl"}], "annotations": {
                  "kubectl.kubernetes.io/last-applied-configuration": '{"stringData":{"password":"hunter2"}}'}},
              "data": {"password": "aHVudGVyMg==", "user": "YWRtaW4="}, "stringData": {"token": "plain"}}
    before = copy.deepcopy(secret)
    out = redact_manifest(secret)
    assert out["data"] == {"password": MASK, "user": MASK}
    assert out["stringData"] == {"token": MASK}
    assert "managedFields" not in out["metadata"]
    assert out["metadata"]["annotations"]["kubectl.kubernetes.io/last-applied-configuration"] == "[omitted]"
    assert secret == before


@pytest.mark.parametrize("name", ["DB_PASSWORD", "MONGO_PASSWD", "PGPWD", "JWT_SECRET", "AUTH_TOKEN",
                                  "OPENAI_API_KEY", "api-key", "TLS_PRIVATE_KEY", "GCP_CREDENTIALS",
                                  "BASIC_AUTH"])
def test_credential_env_values_are_masked(name: str) -> None:
    dep = {"kind": "Deployment", "metadata": {"name": "d"}, "spec": {"template": {"spec": {"containers": [
        {"name": "c", "env": [{"name": name, "value": "hunter2"}, {"name": "MONGO_ADDR", "value": "mongodb-geo:27017"},
                              {"name": "FROM_SECRET", "valueFrom": {"secretKeyRef": {"name": "s", "key": "k"}}}]}],
        "initContainers": [{"name": "i", "env": [{"name": name, "value": "hunter2"}]}]}}}}
    out = redact_manifest(dep)
    spec = out["spec"]["template"]["spec"]
    env = {e["name"]: e for e in spec["containers"][0]["env"]}
    assert env[name]["value"] == MASK and spec["initContainers"][0]["env"][0]["value"] == MASK
    assert env["MONGO_ADDR"]["value"] == "mongodb-geo:27017"  # configuration stays readable: it is evidence
    assert env["FROM_SECRET"]["valueFrom"] == {"secretKeyRef": {"name": "s", "key": "k"}}


def test_non_credential_env_values_still_lose_embedded_secrets() -> None:
    dep = {"kind": "Pod", "metadata": {"name": "p"}, "spec": {"containers": [{"name": "c", "env": [
        {"name": "MONGO_URL", "value": "mongodb://admin:hunter2@mongodb-geo:27017/geo-db"},
        {"name": "UPSTREAM_HEADERS", "value": "Authorization: Bearer abcdefgh.ijkl.mnop"}]}]}}
    env = redact_manifest(dep)["spec"]["containers"][0]["env"]
    assert env[0]["value"] == f"mongodb://admin:{MASK}@mongodb-geo:27017/geo-db"
    assert env[1]["value"] == f"Authorization: Bearer {MASK}"


@pytest.mark.parametrize("text,secret", [
    ("GET /api Authorization: Bearer abc.def.ghijklmnop", "abc.def.ghijklmnop"),
    ("authorization: bearer eyJhbGciOiJIUzI1NiJ9.payload.sig", "eyJhbGciOiJIUzI1NiJ9.payload.sig"),
    ("calling with key sk-proj-AbCdEfGhIjKlMnOpQrSt12", "sk-proj-AbCdEfGhIjKlMnOpQrSt12"),
    ("OPENAI_API_KEY=sk-abcdefghijklmnopqrstuvwx", "sk-abcdefghijklmnopqrstuvwx"),
    ("dial mongodb://admin:hunter2@mongodb-geo:27017/geo-db", "hunter2"),
    ("proxy https://bob:s3cr3t%21@proxy.example:3128", "s3cr3t%21"),
    ("login failed password=hunter2 user=admin", "hunter2"),
    ("api_key: 'AbCdEf0123456789'", "AbCdEf0123456789"),
    ("mongo -u admin -p hunter2 --authenticationDatabase admin", "hunter2"),
    ("psql --password=hunter2", "hunter2"),
    ("aws key AKIAIOSFODNN7EXAMPLE used", "AKIAIOSFODNN7EXAMPLE"),
    ("token ghp_abcdefghijklmnopqrstuvwxyz0123456789", "ghp_abcdefghijklmnopqrstuvwxyz0123456789"),
    ("jwt eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N", "dozjgNryP4J3jVmNHl0w5N"),
])
def test_redact_text_masks_credentials(text: str, secret: str) -> None:
    out = redact_text(text)
    assert secret not in out and MASK in out


@pytest.mark.parametrize("text", ["redis://:hunter2@cache:6379/0",
                                  '{"level":"error","password": "hunter2","msg":"auth failed"}'])
def test_redact_text_masks_empty_user_urls_and_json_keys(text: str) -> None:
    assert "hunter2" not in redact_text(text)


@pytest.mark.parametrize("text", [
    "ERR call to geo failed: dial tcp 10.244.1.6:9999: connect: connection refused",
    "rpc error: code = Unavailable desc = connection error",
    "GET http://frontend:5000/hotels?inDate=2015-04-09 200",
    "max_tokens=512 tokens used",
    "mongodb-geo:27017",
])
def test_redact_text_keeps_ordinary_evidence(text: str) -> None:
    assert redact_text(text) == text


def test_get_object_redacts_configmap_and_annotation_values(cluster: Any) -> None:
    cluster.world.store.create({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {
        "name": "geo-config", "namespace": NS, "annotations": {"notes": "api_key: AbCdEf0123456789"}},
        "data": {"MONGO_URL": "mongodb://admin:hunter2@mongodb-geo:27017", "app.properties": "db.password=hunter2"}})
    out = tt.get_object(cluster, "ConfigMap", "geo-config", NS)
    assert "mongodb-geo:27017" in out
    assert "hunter2" not in out and "AbCdEf0123456789" not in out


def test_redact_text_masks_basic_auth() -> None:
    assert "dXNlcjpodW50ZXIy" not in redact_text("Authorization: Basic dXNlcjpodW50ZXIy")
