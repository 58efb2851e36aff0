"""The wire layer of the LLM policy: error classes, request shapes, tool calls left in text, usage figures."""

from __future__ import annotations

import json
from typing import Any

import httpx
import openai
import pytest
from langchain_core.messages import AIMessage, HumanMessage

from stratus.context import Context
from stratus.policies.llm import submit_diagnosis
from stratus.policies.llm_client import (
    Budget,
    BudgetExceeded,
    failure,
    is_transient,
    recover_tool_calls,
    schema_tokens,
    server_reason,
    shape_payload,
    tool_schema,
)

REQ = httpx.Request("POST", "http://127.0.0.1/v1/chat/completions")


def _status_error(status: int, body: Any) -> openai.APIStatusError:
    cls = {400: openai.BadRequestError, 422: openai.UnprocessableEntityError, 429: openai.RateLimitError}.get(
        status, openai.InternalServerError if status >= 500 else openai.APIStatusError)
    return cls("error", response=httpx.Response(status, request=REQ), body=body)


@pytest.mark.parametrize(("status", "body", "transient"), [
    (429, {"error": {"message": "Rate limit reached"}}, True),
    (408, {"error": {"message": "Request timed out"}}, True),
    (500, {"error": {"message": "Internal Server Error"}}, True),
    (503, "Service Unavailable: model is loading", True),
    (500, {"error": {"message": "content must be a string", "type": "InternalServerError"}}, False),
    (500, {"error": {"message": "Error rendering prompt with jinja template"}}, False),
    (400, {"error": {"message": "Invalid tool_choice: sometimes"}}, False),
    (422, {"detail": [{"loc": ["body", "messages", 2, "content"], "msg": "Input should be a valid string"}]}, False),
    (404, {"error": {"message": "The model `x` does not exist"}}, False),
])
def test_only_transient_errors_are_retried(status: int, body: Any, transient: bool) -> None:
    assert is_transient(_status_error(status, body)) is transient


def test_connection_errors_and_timeouts_are_transient() -> None:
    assert is_transient(openai.APITimeoutError(request=REQ))
    assert is_transient(openai.APIConnectionError(request=REQ))
    assert not is_transient(ValueError("a bug of ours"))


def test_escalation_carries_the_servers_reason() -> None:
    exc = _status_error(422, {"detail": [{"loc": ["body", "messages", 2, "content"], "msg": "Input should be a "
                                                                                           "valid string"}]})
    assert server_reason(exc) == "body.messages.2.content: Input should be a valid string"
    msg = str(failure(exc, 1))
    assert "HTTP 422" in msg and "not retried" in msg and "valid string" in msg
    assert "after 3 attempt(s)" in str(failure(_status_error(502, "Bad Gateway"), 3))


def test_request_shape_for_every_server() -> None:
    payload = {"messages": [{"role": "user", "content": "q"},
                            {"role": "assistant", "content": None, "tool_calls": [{"id": "c1"}]},
                            {"role": "tool", "tool_call_id": "c1", "content": "r"}],
               "max_completion_tokens": 100}
    shaped = shape_payload(json.loads(json.dumps(payload)), custom_server=True)
    assert shaped["messages"][1]["content"] == "" and shaped["max_tokens"] == 100
    assert "max_completion_tokens" not in shaped
    assert shape_payload(json.loads(json.dumps(payload)), custom_server=False)["max_completion_tokens"] == 100


def test_tool_calls_left_in_text_are_recovered() -> None:
    text = ('<tool_call>\n{"name": "list_objects", "arguments": {"kind": "Pod"}}\n</tool_call>\n'
            '<tool_call>\n{"name": "events", "arguments": "{\\"name\\": \\"geo\\"}"}\n</tool_call>')
    reply = recover_tool_calls(AIMessage(content=text), {"list_objects", "events"})
    assert [(c["name"], c["args"]) for c in reply.tool_calls] == [("list_objects", {"kind": "Pod"}),
                                                                   ("events", {"name": "geo"})]
    assert reply.content == "" and all(c["id"] for c in reply.tool_calls)
    bare = recover_tool_calls(AIMessage(content='```json\n{"name": "alerts", "parameters": {}}\n```'), {"alerts"})
    assert [c["name"] for c in bare.tool_calls] == ["alerts"]


def test_prose_and_unknown_tools_stay_text() -> None:
    for text in ('The pods are fine. {"name": "x"}', '<tool_call>{"name": "rm_rf", "arguments": {}}</tool_call>',
                 "<tool_call>{not json}</tool_call>"):
        reply = recover_tool_calls(AIMessage(content=text), {"alerts"})
        assert reply.tool_calls == [] and reply.content == text


def test_tool_calls_without_ids_get_ids() -> None:
    reply = AIMessage(content="", tool_calls=[{"name": "alerts", "args": {}, "id": None}])
    assert recover_tool_calls(reply, {"alerts"}).tool_calls[0]["id"].startswith("call_")


def test_compact_schema_drops_null_options() -> None:
    from langchain_core.tools import StructuredTool

    def events(name: str | None = None, warnings_only: bool = True) -> str:
        return ""

    spec = tool_schema(StructuredTool.from_function(events, name="events", description="Recent events."))
    assert spec["function"]["parameters"]["properties"]["name"] == {"type": "string"}
    assert schema_tokens([spec]) < schema_tokens([tool_schema(submit_diagnosis)])


def test_budget_counts_failures_and_estimates_schemas_when_usage_is_missing() -> None:
    budget = Budget(Context(policy="llm", max_llm_calls=3))
    schemas = [tool_schema(submit_diagnosis)]
    budget.sent()
    budget.failed(0.5)
    budget.sent()
    budget.record([HumanMessage("hello")], schemas, AIMessage(content="ok"), 1.5)
    usage = budget.usage()
    assert usage["llm_calls"] == 2 and usage["llm_stats"]["failed_requests"] == 1
    assert usage["llm_stats"]["estimated_replies"] == 1 and usage["llm_stats"]["latency_s"] == 2.0
    assert usage["llm_prompt_tokens"] >= schema_tokens(schemas)  # the schemas are in the estimate
    again = Budget(Context(policy="llm", max_llm_calls=3), usage)  # carried across node runs
    again.sent()
    with pytest.raises(BudgetExceeded, match="3/3 requests, Context.max_llm_calls"):
        again.check()
