"""Conformance: what STRATUS sends is accepted by each server's rules, and each server's replies are parsed.

One loopback HTTP server per flavour (``flavours.py`` says where each flavour's rules and shapes come
from) plays a model that investigates before it answers: on the first request of every agent turn it
calls an evidence tool, then answers as ``follow_evidence`` would. The real ``ChatOpenAI`` /
``AzureChatOpenAI`` client of ``make_chat_model`` talks to it, through the whole graph.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from flavours import FLAVOURS, Flavour, Rejection, _err, openai_check
from langchain_core.messages import convert_to_messages

from stratus.api import invoke_graph
from stratus.context import Context
from stratus.policies.llm import LLMCallFailed, LLMPolicy, make_chat_model
from stratus.policies.rules import runbook_data
from stratus.policies.scripted import follow_evidence

FIRST_TOOL = {"Detection agent": ("alerts", {}), "Diagnosis agent": ("list_objects", {"kind": "Pod"}),
              "Mitigation agent": ("list_objects", {"kind": "Deployment"})}


class Server:
    """A flavour's server: checks every request, answers from the investigating model, records both."""

    def __init__(self, flavour: Flavour, check: Callable[..., Rejection | None] | None = None) -> None:
        self.flavour = flavour
        self.check = check or flavour.check
        self.requests: list[dict[str, Any]] = []
        self.replies: list[dict[str, Any]] = []
        self.rejections: list[tuple[int, str]] = []
        self.usage = {"prompt": 0, "completion": 0}
        self.lock = threading.Lock()
        self.port = 0

    def answer(self, path: str, headers: dict[str, str], req: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        with self.lock:
            self.requests.append(req)
            rejected = self.check(path, headers, req)
            if rejected is not None:
                self.rejections.append((rejected.status, rejected.body["error"]["message"]))
                return rejected.status, rejected.body
            text, calls = self.model(req)
            u = {"prompt": 200 + len(json.dumps(req)) // 8, "completion": 20}
            self.usage["prompt"] += u["prompt"]
            self.usage["completion"] += u["completion"]
            self.replies.append(self.flavour.reply(req, text, calls, u))
            return 200, self.replies[-1]

    @staticmethod
    def model(req: dict[str, Any]) -> tuple[str, list[dict[str, Any]]]:
        wire = req["messages"]
        system = wire[0]["content"] if wire[0]["role"] == "system" else ""
        offered = {t["function"]["name"] for t in req.get("tools") or []}
        first_turn = not any(m["role"] == "assistant" for m in wire)
        for marker, (tool, args) in FIRST_TOOL.items():
            if marker in system and first_turn and tool in offered:
                return "", [{"name": tool, "args": args}]
        reply = follow_evidence(convert_to_messages(wire), runbook_data()["classes"])
        return str(reply.content), [{"name": c["name"], "args": c["args"]} for c in reply.tool_calls]


def _serve(server: Server) -> Iterator[Server]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:
            pass

        def do_POST(self) -> None:  # noqa: N802 - http.server's naming
            body = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)) or b"{}")
            status, payload = server.answer(self.path, {k.lower(): v for k, v in self.headers.items()}, body)
            data = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    httpd.daemon_threads = True
    server.port = httpd.server_address[1]
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(timeout=5)


@pytest.fixture
def serve(monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[..., Server]]:
    for var in ("OPENAI_API_KEY", "AZURE_OPENAI_ENDPOINT", "OPENAI_BASE_URL", "OPENAI_API_VERSION", "HTTP_PROXY",
                "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy", "STRATUS_BASE_URL"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    stack: list[Iterator[Server]] = []

    def start(name: str, check: Callable[..., Rejection | None] | None = None) -> Server:
        gen = _serve(Server(FLAVOURS[name], check))
        stack.append(gen)
        return next(gen)

    yield start
    for gen in stack:
        next(gen, None)


def _ctx(server: Server, monkeypatch: pytest.MonkeyPatch, **kw: Any) -> Context:
    kw.setdefault("llm_timeout_s", 10.0)
    kw.setdefault("llm_backoff_s", 0.01)
    if server.flavour.name == "azure":
        monkeypatch.setenv("AZURE_OPENAI_ENDPOINT", f"http://127.0.0.1:{server.port}")
        monkeypatch.setenv("OPENAI_API_KEY", "test-key")
        ctx = Context(policy="llm", model="stratus-deployment", base_url=None, db=":memory:", **kw)
        ctx.base_url = None  # Azure is chosen by AZURE_OPENAI_ENDPOINT and no base URL
    else:
        ctx = Context(policy="llm", model="test-model", base_url=f"http://127.0.0.1:{server.port}/v1",
                      db=":memory:", **kw)
    ctx.chat_model = make_chat_model(ctx)
    return ctx


def _tool_results_reached_the_model(requests: list[dict[str, Any]]) -> list[str]:
    """Names of the evidence tools whose result was in the next request, as a role-tool message."""
    reached = []
    for req in requests:
        by_id = {tc["id"]: tc["function"]["name"] for m in req["messages"] for tc in m.get("tool_calls") or []}
        reached += [by_id[m["tool_call_id"]] for m in req["messages"]
                    if m["role"] == "tool" and m["content"] and not m["content"].startswith(("accepted", "error"))]
    return reached


@pytest.mark.parametrize("name", sorted(FLAVOURS))
def test_incident_end_to_end(name: str, serve: Callable[..., Server], monkeypatch: pytest.MonkeyPatch,
                             llm_helpers: Any) -> None:
    server = serve(name)
    f = llm_helpers.faulted("hotel-rate-scale-to-zero")
    result = invoke_graph(f.alerts, cluster=f.cluster, context=_ctx(server, monkeypatch))

    assert server.rejections == []
    assert result.outcome == "resolved", result.summary
    assert [t["status"] for t in result.transactions] == ["committed"]
    # every agent turn investigated, and each tool's result went back to the model
    assert set(_tool_results_reached_the_model(server.requests)) == {"alerts", "list_objects"}
    assert result.llm_stats["tool_calls"]["list_objects"] == 2 and result.llm_stats["tool_calls"]["alerts"] == 1
    # agent turns ask for tools explicitly; no assistant message goes out with content null
    assert all(r.get("tool_choice") == "auto" for r in server.requests if len(r.get("tools") or []) > 1)
    assert all(m.get("content") is not None for r in server.requests for m in r["messages"])
    assert result.llm_calls == len(server.requests) == 6
    assert result.llm_prompt_tokens == server.usage["prompt"]
    assert result.llm_tokens == server.usage["prompt"] + server.usage["completion"]
    assert result.llm_stats.get("estimated_replies", 0) == 0  # every reply carried the server's usage
    if name == "llama-cpp-python":  # with "auto" this server leaves the calls in the text: recovered
        assert sum("<tool_call>" in (r["choices"][0]["message"]["content"] or "") for r in server.replies) == 6


BAD_REQUESTS = {
    "orphan tool message": {"model": "m", "messages": [{"role": "user", "content": "hi"},
                                                       {"role": "tool", "tool_call_id": "x", "content": "r"}]},
    "user content null": {"model": "m", "messages": [{"role": "user", "content": None}]},
}


@pytest.mark.parametrize("name", sorted(FLAVOURS))
@pytest.mark.parametrize("bad", sorted(BAD_REQUESTS))
def test_each_flavour_rejects_what_its_server_rejects(name: str, bad: str) -> None:
    flavour = FLAVOURS[name]
    path = ("/openai/deployments/d/chat/completions?api-version=2024-10-21" if name == "azure"
            else "/v1/chat/completions")
    rejected = flavour.check(path, {"api-key": "k"}, BAD_REQUESTS[bad])
    assert rejected is not None and rejected.status in (400, 500)
    good = {"model": "m", "messages": [{"role": "user", "content": "hi"}]}
    assert flavour.check(path, {"api-key": "k"}, good) is None


@pytest.mark.parametrize("name", sorted(FLAVOURS))
def test_forced_final_step(name: str, serve: Callable[..., Server], monkeypatch: pytest.MonkeyPatch,
                           cluster: Any) -> None:
    server = serve(name)
    policy = LLMPolicy(_ctx(server, monkeypatch, llm_max_steps=1))
    _findings, hyps, _view = policy.diagnose(cluster, cluster.namespace)

    assert server.rejections == []
    assert hyps[0].data["source"] == "llm" and hyps[0].fault_class in runbook_data()["classes"]
    forced = server.requests[-1]
    assert [t["function"]["name"] for t in forced["tools"]] == ["submit_diagnosis"]
    assert forced["tool_choice"] == {"type": "function", "function": {"name": "submit_diagnosis"}}
    assert forced["tools"][0]["function"]["parameters"]["properties"]["fault_class"]["enum"]


def test_vllm_without_tool_parser_escalates_with_its_reason(serve: Callable[..., Server],
                                                            monkeypatch: pytest.MonkeyPatch, llm_helpers: Any) -> None:
    from flavours import vllm_check

    server = serve("vllm", vllm_check(parser=False))
    f = llm_helpers.faulted("hotel-rate-scale-to-zero")
    result = invoke_graph(f.alerts, cluster=f.cluster, context=_ctx(server, monkeypatch, llm_retries=3))
    assert result.outcome == "escalated" and result.transactions == []
    assert "--enable-auto-tool-choice" in result.summary and "not retried" in result.summary
    # detection asks once and lets telemetry decide; diagnosis asks once and escalates: nothing retried
    assert len(server.requests) == 2 == result.llm_calls
    assert result.llm_stats["failed_requests"] == 2


def test_invalid_request_500_is_not_retried(serve: Callable[..., Server], monkeypatch: pytest.MonkeyPatch,
                                            cluster: Any) -> None:
    """Issue 10's failure: the unshaped client sends ``content: null``; the 500 says why and is final."""
    from langchain_openai import ChatOpenAI

    server = serve("llama-cpp-python")
    ctx = _ctx(server, monkeypatch, llm_retries=4)
    ctx.chat_model = ChatOpenAI(model="m", base_url=f"http://127.0.0.1:{server.port}/v1", api_key="x",
                                max_retries=0, timeout=10)
    with pytest.raises(LLMCallFailed, match=r"rejected the request \(HTTP 500, not retried.*content must be a string"):
        LLMPolicy(ctx).diagnose(cluster, cluster.namespace)
    assert len(server.requests) == 2 and server.rejections == [(500, "content must be a string")]


def test_named_tool_choice_rejected_falls_back_to_required(serve: Callable[..., Server],
                                                          monkeypatch: pytest.MonkeyPatch, cluster: Any) -> None:
    """A server that takes tool_choice only as a string (LM Studio's 400, quoted in a public project note)."""
    def strings_only(path: str, headers: dict[str, str], req: dict[str, Any]) -> Rejection | None:
        if isinstance(req.get("tool_choice"), dict):
            return _err(400, "Invalid tool_choice type: 'object'. Supported string values: none, auto, required")
        return openai_check(path, headers, req)

    server = serve("openai", strings_only)
    policy = LLMPolicy(_ctx(server, monkeypatch, llm_max_steps=1))
    _findings, hyps, _view = policy.diagnose(cluster, cluster.namespace)
    assert hyps[0].data["source"] == "llm"
    assert [r.get("tool_choice") for r in server.requests[-2:]] == [
        {"type": "function", "function": {"name": "submit_diagnosis"}}, "required"]
    assert len(server.rejections) == 1 and policy.final_choice == 1
    assert policy.usage()["llm_calls"] == 3  # the rejected request is counted too


def test_omit_tool_choice_sends_none(serve: Callable[..., Server], monkeypatch: pytest.MonkeyPatch,
                                     cluster: Any) -> None:
    server = serve("ollama")
    LLMPolicy(_ctx(server, monkeypatch, llm_tool_choice="omit")).diagnose(cluster, cluster.namespace)
    assert server.rejections == [] and "tool_choice" not in server.requests[0]
