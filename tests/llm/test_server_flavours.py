"""Conformance: what STRATUS sends is accepted by each server's rules, and each server's replies are parsed.

One loopback HTTP server per flavour (``flavours.py`` says where each flavour's rules and shapes come
from) plays a model that investigates before it answers: on the first request of every agent turn it
calls an evidence tool, then answers as ``follow_evidence`` would. The real ``ChatOpenAI`` /
``AzureChatOpenAI`` client of ``make_chat_model`` talks to it, through the whole graph.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from flavours import FLAVOURS, Rejection, Server, _err, openai_check

from stratus.api import invoke_graph
from stratus.context import Context
from stratus.policies.llm import LLMCallFailed, LLMPolicy, make_chat_model
from stratus.policies.rules import runbook_data


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
def test_incident_end_to_end(name: str, flavour_server: Callable[..., Server], monkeypatch: pytest.MonkeyPatch,
                             llm_helpers: Any) -> None:
    server = flavour_server(name)
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
    if name.startswith("llama-cpp-python"):  # with "auto" this server leaves the calls in the text: recovered
        marker = "```json" if name.endswith("fenced") else "<tool_call>"
        assert sum(marker in (r["choices"][0]["message"]["content"] or "") for r in server.replies) == 6


@pytest.mark.parametrize("name", ["openai", "vllm", "llama-cpp-python", "llama-cpp-python-fenced"])
def test_first_read_of_every_turn(name: str, flavour_server: Callable[..., Server], monkeypatch: pytest.MonkeyPatch,
                                  llm_helpers: Any) -> None:
    """llm_min_tool_calls=1: each turn's first request names its evidence read among all the turn's
    tools (same tool list, so a server's cached prompt prefix holds); the result reaches the model."""
    server = flavour_server(name)
    f = llm_helpers.faulted("hotel-rate-scale-to-zero")
    result = invoke_graph(f.alerts, cluster=f.cluster, context=_ctx(server, monkeypatch, llm_min_tool_calls=1))
    assert server.rejections == [] and result.outcome == "resolved", result.summary
    firsts = [r for r in server.requests if len(r["messages"]) == 2 and len(r.get("tools") or []) > 1]
    assert [r.get("tool_choice") for r in firsts] == [
        {"type": "function", "function": {"name": tool}} for tool in ("list_objects", "describe", "describe")]
    assert all(len(r["tools"]) == len(server.requests[i + 1].get("tools") or []) for i, r in
               enumerate(server.requests[:-1]) if r in firsts)
    assert all(t["results_read"] >= 1 for t in result.llm_stats["turns"]), result.llm_stats["turns"]


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
def test_forced_final_step(name: str, flavour_server: Callable[..., Server], monkeypatch: pytest.MonkeyPatch,
                           cluster: Any) -> None:
    server = flavour_server(name)
    policy = LLMPolicy(_ctx(server, monkeypatch, llm_max_steps=1))
    _findings, hyps, _view = policy.diagnose(cluster, cluster.namespace)

    assert server.rejections == []
    assert hyps[0].data["source"] == "llm" and hyps[0].fault_class in runbook_data()["classes"]
    forced = server.requests[-1]
    assert [t["function"]["name"] for t in forced["tools"]] == ["submit_diagnosis"]
    assert forced["tool_choice"] == {"type": "function", "function": {"name": "submit_diagnosis"}}
    assert forced["tools"][0]["function"]["parameters"]["properties"]["fault_class"]["enum"]


def test_vllm_without_tool_parser_escalates_with_its_reason(flavour_server: Callable[..., Server],
                                                            monkeypatch: pytest.MonkeyPatch, llm_helpers: Any) -> None:
    from flavours import vllm_check

    server = flavour_server("vllm", vllm_check(parser=False))
    f = llm_helpers.faulted("hotel-rate-scale-to-zero")
    result = invoke_graph(f.alerts, cluster=f.cluster, context=_ctx(server, monkeypatch, llm_retries=3))
    assert result.outcome == "escalated" and result.transactions == []
    assert "--enable-auto-tool-choice" in result.summary and "not retried" in result.summary
    # detection asks once and lets telemetry decide; diagnosis asks once and escalates: nothing retried
    assert len(server.requests) == 2 == result.llm_calls
    assert result.llm_stats["failed_requests"] == 2


def test_invalid_request_500_is_not_retried(flavour_server: Callable[..., Server], monkeypatch: pytest.MonkeyPatch,
                                            cluster: Any) -> None:
    """Issue 10's failure: the unshaped client sends ``content: null``; the 500 says why and is final."""
    from langchain_openai import ChatOpenAI

    server = flavour_server("llama-cpp-python")
    ctx = _ctx(server, monkeypatch, llm_retries=4)
    ctx.chat_model = ChatOpenAI(model="m", base_url=f"http://127.0.0.1:{server.port}/v1", api_key="x",
                                max_retries=0, timeout=10)
    with pytest.raises(LLMCallFailed, match=r"rejected the request \(HTTP 500, not retried.*content must be a string"):
        LLMPolicy(ctx).diagnose(cluster, cluster.namespace)
    assert len(server.requests) == 2 and server.rejections == [(500, "content must be a string")]


def test_named_tool_choice_rejected_falls_back_to_required(flavour_server: Callable[..., Server],
                                                          monkeypatch: pytest.MonkeyPatch, cluster: Any) -> None:
    """A server that takes tool_choice only as a string (LM Studio's 400, quoted in a public project note)."""
    def strings_only(path: str, headers: dict[str, str], req: dict[str, Any]) -> Rejection | None:
        if isinstance(req.get("tool_choice"), dict):
            return _err(400, "Invalid tool_choice type: 'object'. Supported string values: none, auto, required")
        return openai_check(path, headers, req)

    server = flavour_server("openai", strings_only)
    policy = LLMPolicy(_ctx(server, monkeypatch, llm_max_steps=1))
    _findings, hyps, _view = policy.diagnose(cluster, cluster.namespace)
    assert hyps[0].data["source"] == "llm"
    assert [r.get("tool_choice") for r in server.requests[-2:]] == [
        {"type": "function", "function": {"name": "submit_diagnosis"}}, "required"]
    assert len(server.rejections) == 1 and policy.final_choice == 1
    assert policy.usage()["llm_calls"] == 3  # the rejected request is counted too


def test_omit_tool_choice_sends_none(flavour_server: Callable[..., Server], monkeypatch: pytest.MonkeyPatch,
                                     cluster: Any) -> None:
    server = flavour_server("ollama")
    LLMPolicy(_ctx(server, monkeypatch, llm_tool_choice="omit")).diagnose(cluster, cluster.namespace)
    assert server.rejections == [] and "tool_choice" not in server.requests[0]
