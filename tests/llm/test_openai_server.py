"""The real ChatOpenAI client against a local OpenAI-compatible server (loopback only).

A stdlib ``ThreadingHTTPServer`` on 127.0.0.1 answers ``POST /v1/chat/completions`` from a per-test queue
of scripted responses and records every request. Proved here: tool calls in OpenAI's wire format are
parsed into the policy's answers and tool results go back as ``role: tool`` messages; 429s and timeouts
are retried (and surface as exceptions when retries are exhausted); unparseable tool arguments are sent
back as an error and repaired; the forced final answer uses ``tool_choice``; and ``Budget`` records the
server's own usage figures.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler
from typing import Any

import pytest
from testkit import http_server

from stratus.context import Context
from stratus.policies.llm import LLMPolicy, make_chat_model

Responder = Callable[[dict[str, Any]], dict[str, Any]]


class Reply:
    """One scripted HTTP answer: a status, a JSON body, and an optional delay before answering."""

    def __init__(self, body: dict[str, Any] | Responder, status: int = 200, delay_s: float = 0.0,
                 headers: dict[str, str] | None = None) -> None:
        self.body, self.status, self.delay_s, self.headers = body, status, delay_s, headers or {}


class FakeOpenAI:
    """The server's shared state: the queue of replies and the requests received (parsed JSON)."""

    def __init__(self) -> None:
        self.queue: list[Reply] = []
        self.requests: list[dict[str, Any]] = []
        self.paths: list[str] = []
        self.lock = threading.Lock()
        self.port = 0

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def push(self, *replies: Reply) -> None:
        with self.lock:
            self.queue.extend(replies)

    def next(self, request: dict[str, Any]) -> Reply:
        with self.lock:
            self.requests.append(request)
            if not self.queue:
                return Reply({"error": {"message": "the test queued no more replies", "type": "test"}}, 500)
            return self.queue.pop(0)


def _handler(state: FakeOpenAI) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:  # keep pytest output clean
            pass

        def do_POST(self) -> None:  # noqa: N802 - http.server's naming
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            state.paths.append(self.path)
            if self.path.rstrip("/") != "/v1/chat/completions":
                self._send(404, {"error": {"message": f"no route {self.path}", "type": "not_found"}})
                return
            request = json.loads(body or b"{}")
            reply = state.next(request)
            if reply.delay_s:
                time.sleep(reply.delay_s)  # a slow server: the client's timeout is what the test exercises
            payload = reply.body(request) if callable(reply.body) else reply.body
            self._send(reply.status, payload, reply.headers)

        def _send(self, status: int, payload: dict[str, Any], headers: dict[str, str] | None = None) -> None:
            data = json.dumps(payload).encode()
            try:
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                for k, v in (headers or {}).items():
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(data)
            except (BrokenPipeError, ConnectionResetError):
                pass  # the client gave up (timeout test)

    return Handler


@pytest.fixture
def server(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeOpenAI]:
    for var in ("OPENAI_API_KEY", "AZURE_OPENAI_ENDPOINT", "OPENAI_BASE_URL", "HTTP_PROXY", "HTTPS_PROXY",
                "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    state = FakeOpenAI()
    with http_server(_handler(state)) as port:
        state.port = port
        yield state


# --- OpenAI wire format -------------------------------------------------------------------------
def completion(content: str | None = None, tool_calls: list[dict[str, Any]] | None = None,
               prompt_tokens: int = 11, completion_tokens: int = 7) -> dict[str, Any]:
    message: dict[str, Any] = {"role": "assistant", "content": content}
    if tool_calls:
        message["tool_calls"] = tool_calls
    return {
        "id": f"chatcmpl-{time.monotonic_ns()}", "object": "chat.completion", "created": int(time.time()),
        "model": "test-model",
        "choices": [{"index": 0, "message": message, "finish_reason": "tool_calls" if tool_calls else "stop",
                     "logprobs": None}],
        "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
                  "total_tokens": prompt_tokens + completion_tokens},
    }


def call(name: str, args: dict[str, Any] | str, call_id: str) -> dict[str, Any]:
    arguments = args if isinstance(args, str) else json.dumps(args)
    return {"id": call_id, "type": "function", "function": {"name": name, "arguments": arguments}}


DIAGNOSIS = {"root_cause_component": "geo", "fault_class": "service_port_mismatch",
             "system_level": "Virtualization", "fault_type": "Misconfiguration", "confidence": 0.8,
             "summary": "geo's Service targets a port nothing listens on",
             "evidence": [{"claim": "the pods are listed", "evidence": ["call_pods"]}]}


def _ctx(server: FakeOpenAI, **kw: Any) -> Context:
    kw.setdefault("llm_timeout_s", 5.0)
    kw.setdefault("llm_backoff_s", 0.01)
    return Context(policy="llm", base_url=server.base_url, model="test-model", db=":memory:", **kw)


def _policy(server: FakeOpenAI, **kw: Any) -> LLMPolicy:
    ctx = _ctx(server, **kw)
    ctx.chat_model = make_chat_model(ctx)
    return LLMPolicy(ctx)


def _roles(request: dict[str, Any]) -> list[str]:
    return [m["role"] for m in request["messages"]]


# --- tests -----------------------------------------------------------------------------------------
def test_make_chat_model_needs_key_or_base_url(monkeypatch: pytest.MonkeyPatch) -> None:
    from stratus.policies.llm import LLMUnavailable

    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    monkeypatch.delenv("AZURE_OPENAI_ENDPOINT", raising=False)
    monkeypatch.delenv("STRATUS_BASE_URL", raising=False)
    with pytest.raises(LLMUnavailable, match="OPENAI_API_KEY"):
        make_chat_model(Context(policy="llm", base_url=None))


def test_tool_calls_round_trip(server: FakeOpenAI, cluster: Any) -> None:
    server.push(Reply(completion(tool_calls=[call("list_objects", {"kind": "Pod"}, "call_pods")])),
                Reply(completion(tool_calls=[call("submit_diagnosis", DIAGNOSIS, "call_final")])))
    policy = _policy(server)
    _findings, hyps, _view = policy.diagnose(cluster, cluster.namespace)

    main = hyps[0]
    assert (main.component, main.fault_class, main.data["source"]) == ("geo", "service_port_mismatch", "llm")
    assert main.data["claims"] == [{"claim": "the pods are listed", "evidence": ["call_pods"]}]
    assert len(server.requests) == 2 and set(server.paths) == {"/v1/chat/completions"}
    first, second = server.requests
    assert first["model"] == "test-model"
    tools = {t["function"]["name"] for t in first["tools"]}
    assert {"list_objects", "pod_logs", "promql", "submit_diagnosis"} <= tools
    assert _roles(first) == ["system", "user"]
    # the assistant's tool call is echoed back, followed by its result
    assert _roles(second) == ["system", "user", "assistant", "tool"]
    assert second["messages"][2]["tool_calls"][0]["id"] == "call_pods"
    tool_msg = second["messages"][3]
    assert tool_msg["tool_call_id"] == "call_pods"
    frontend_pod = next(p["metadata"]["name"] for p in cluster.list("Pod", cluster.namespace)
                        if p["metadata"]["name"].startswith("frontend"))
    assert frontend_pod in tool_msg["content"]


def test_forced_final_answer_uses_tool_choice(server: FakeOpenAI, cluster: Any) -> None:
    server.push(Reply(completion(tool_calls=[call("list_objects", {"kind": "Pod"}, "call_pods")])),
                Reply(completion(tool_calls=[call("submit_diagnosis", DIAGNOSIS, "call_final")])))
    _findings, hyps, _view = _policy(server, llm_max_steps=1).diagnose(cluster, cluster.namespace)
    assert hyps[0].data["source"] == "llm"
    first, second = server.requests
    assert first.get("tool_choice") in (None, "auto")
    assert second["tool_choice"] == {"type": "function", "function": {"name": "submit_diagnosis"}}
    assert [t["function"]["name"] for t in second["tools"]] == ["submit_diagnosis"]
    assert "Step limit reached" in second["messages"][-1]["content"]


def test_rate_limit_is_retried(server: FakeOpenAI, cluster: Any) -> None:
    server.push(Reply({"error": {"message": "Rate limit reached for test-model", "type": "requests",
                                 "param": None, "code": "rate_limit_exceeded"}}, status=429),
                Reply(completion(tool_calls=[call("submit_diagnosis", DIAGNOSIS, "call_final")])))
    policy = _policy(server, llm_retries=2)
    _findings, hyps, _view = policy.diagnose(cluster, cluster.namespace)
    assert len(server.requests) == 2
    assert hyps[0].data["source"] == "llm"
    # every request counts against the budget, the rejected one included
    assert policy.budget.calls == 2 and policy.usage()["llm_stats"]["failed_requests"] == 1


def test_client_errors_are_not_retried(server: FakeOpenAI, cluster: Any) -> None:
    import openai

    server.push(Reply({"error": {"message": "model not found", "type": "invalid_request_error",
                                 "param": "model", "code": "model_not_found"}}, status=404))
    from stratus.policies.llm import LLMCallFailed

    with pytest.raises(LLMCallFailed, match="after 1 attempt") as err:
        _policy(server, llm_retries=3).diagnose(cluster, cluster.namespace)
    assert isinstance(err.value.__cause__, openai.NotFoundError)
    assert len(server.requests) == 1


def test_timeout_is_retried_then_succeeds(server: FakeOpenAI, cluster: Any) -> None:
    server.push(Reply(completion(content="too late"), delay_s=0.3),
                Reply(completion(tool_calls=[call("submit_diagnosis", DIAGNOSIS, "call_final")])))
    t0 = time.monotonic()
    _findings, hyps, _view = _policy(server, llm_timeout_s=0.1, llm_retries=1).diagnose(cluster, cluster.namespace)
    assert len(server.requests) == 2
    assert hyps[0].data["source"] == "llm"
    assert time.monotonic() - t0 < 3.0


def test_timeout_without_retries_raises(server: FakeOpenAI, cluster: Any) -> None:
    import openai

    from stratus.policies.llm import LLMCallFailed

    server.push(Reply(completion(content="too late"), delay_s=0.3))
    with pytest.raises(LLMCallFailed, match="TimeoutError") as err:
        _policy(server, llm_timeout_s=0.1, llm_retries=0).diagnose(cluster, cluster.namespace)
    assert isinstance(err.value.__cause__, openai.APITimeoutError)
    assert len(server.requests) == 1


def test_exhausted_retries_escalate_cleanly(server: FakeOpenAI, cluster: Any) -> None:
    """An unreachable model ends the incident with an escalation that says why, and changes nothing."""
    from stratus.api import invoke_graph
    from stratus.twin.faults import inject

    inject(cluster.world, "scale_to_zero", "rate")
    cluster.wait(150)
    server.push(Reply(completion(content="too late"), delay_s=0.3), Reply(completion(content="too late"), delay_s=0.3))
    ctx = _ctx(server, llm_timeout_s=0.1, llm_retries=0)
    result = invoke_graph(cluster.alerts(), cluster=cluster, context=ctx)
    assert result.detected  # telemetry alone detects it when the Detection agent cannot answer
    assert result.outcome == "escalated" and "model endpoint failed" in result.summary
    assert result.transactions == []
    assert not cluster.world.store.list("Lease", cluster.namespace)  # no write lock was taken


def test_malformed_tool_arguments_are_sent_back_and_repaired(server: FakeOpenAI, cluster: Any) -> None:
    server.push(Reply(completion(tool_calls=[call("submit_diagnosis", '{"root_cause_component": "geo", ',
                                                  "call_bad")])),
                Reply(completion(tool_calls=[call("submit_diagnosis", DIAGNOSIS, "call_good")])))
    _findings, hyps, _view = _policy(server).diagnose(cluster, cluster.namespace)
    assert hyps[0].component == "geo" and hyps[0].data["source"] == "llm"
    second = server.requests[1]
    assert _roles(second)[-2:] == ["assistant", "tool"]
    # the assistant message that carried the bad call is echoed with it, so the tool reply is not orphaned
    assert [c["id"] for c in second["messages"][-2]["tool_calls"]] == ["call_bad"]
    tool_msg = second["messages"][-1]
    assert tool_msg["tool_call_id"] == "call_bad"
    assert "not valid JSON" in tool_msg["content"]


def test_malformed_arguments_twice_ends_the_turn(server: FakeOpenAI, cluster: Any) -> None:
    bad = Reply(completion(tool_calls=[call("submit_diagnosis", "{oops", "call_bad")]))
    server.push(bad, Reply(bad.body), Reply(completion(tool_calls=[call("submit_diagnosis", DIAGNOSIS, "x")])))
    _findings, hyps, _view = _policy(server).diagnose(cluster, cluster.namespace)
    assert len(server.requests) == 2  # one repair, then the analyzers' ranking is used
    assert all(h.data.get("source") != "llm" for h in hyps)


def test_budget_records_server_usage(server: FakeOpenAI, cluster: Any) -> None:
    server.push(Reply(completion(tool_calls=[call("list_objects", {"kind": "Service"}, "call_svc")],
                                 prompt_tokens=1200, completion_tokens=30)),
                Reply(completion(tool_calls=[call("submit_diagnosis", DIAGNOSIS, "call_final")],
                                 prompt_tokens=1500, completion_tokens=90)))
    policy = _policy(server)
    policy.diagnose(cluster, cluster.namespace)
    usage = policy.usage()
    assert usage["llm_calls"] == 2
    assert usage["llm_prompt_tokens"] == 1200 + 1500
    assert usage["llm_tokens"] == 1200 + 30 + 1500 + 90


def test_token_budget_counts_server_usage_and_stops_calls(server: FakeOpenAI, cluster: Any) -> None:
    from stratus.policies.llm import BudgetExceeded

    server.push(Reply(completion(tool_calls=[call("list_objects", {"kind": "Service"}, "call_svc")],
                                 prompt_tokens=900, completion_tokens=200)),
                Reply(completion(tool_calls=[call("submit_diagnosis", DIAGNOSIS, "call_final")])))
    with pytest.raises(BudgetExceeded, match="token budget"):
        _policy(server, max_tokens=1000).diagnose(cluster, cluster.namespace)
    assert len(server.requests) == 1


def test_incident_end_to_end_over_http(server: FakeOpenAI, llm_helpers: Any) -> None:
    """The whole graph on a faulted twin, every model call served over HTTP by an evidence-following responder."""
    from langchain_core.messages import convert_to_messages, convert_to_openai_messages

    from stratus.api import invoke_graph
    from stratus.policies.rules import runbook_data
    from stratus.policies.scripted import follow_evidence

    usage = {"prompt": 0, "completion": 0}

    def respond(request: dict[str, Any]) -> dict[str, Any]:
        reply = follow_evidence(convert_to_messages(request["messages"]), runbook_data()["classes"])
        wire = convert_to_openai_messages(reply)
        prompt, completion_tokens = 100 + len(json.dumps(request["messages"])) // 10, 25
        usage["prompt"] += prompt
        usage["completion"] += completion_tokens
        return completion(wire.get("content") or None, wire.get("tool_calls"), prompt, completion_tokens)

    f = llm_helpers.faulted("hotel-rate-scale-to-zero")
    server.push(*[Reply(respond) for _ in range(12)])
    ctx = _ctx(server)
    result = invoke_graph(f.alerts, cluster=f.cluster, context=ctx)
    assert result.outcome == "resolved", result.summary
    assert [t["status"] for t in result.transactions] == ["committed"]
    assert f.cluster.get("Deployment", "rate", f.namespace)["spec"]["replicas"] >= 1
    assert result.llm_calls == len(server.requests) == 3
    assert result.llm_prompt_tokens == usage["prompt"]
    assert result.llm_tokens == usage["prompt"] + usage["completion"]


def test_budget_keeps_a_reported_zero(server: FakeOpenAI, cluster: Any) -> None:
    server.push(Reply(completion(tool_calls=[call("submit_diagnosis", DIAGNOSIS, "call_final")],
                                 prompt_tokens=500, completion_tokens=0)))
    policy = _policy(server)
    policy.diagnose(cluster, cluster.namespace)
    assert policy.usage()["llm_tokens"] == 500
