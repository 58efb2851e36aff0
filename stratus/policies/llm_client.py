"""The wire between the LLM policy and OpenAI-compatible servers: client, request shapes, errors, usage.

What the servers users run (OpenAI, Azure OpenAI, vLLM, llama.cpp's ``llama-server``, llama-cpp-python,
Ollama) disagree on, handled in one place (README "LLM servers" has the per-server notes):

- request shapes: assistant messages that carry tool calls are sent with ``content: ""`` (llama.cpp-based
  templates and Ollama reject or mis-render ``null``); a custom server gets ``max_tokens``, which
  OpenAI's newer ``max_completion_tokens`` is unknown to;
- tool calls a server leaves as text (a chat template's ``<tool_call>{...}</tool_call>`` block, or a
  bare ``{"name": ..., "arguments": ...}`` object) are recovered into real tool calls;
- errors: a request the server rejects as invalid (HTTP 4xx, or a 5xx whose body says the request is
  invalid) can never succeed and is not retried; rate limits, timeouts, dropped connections and other
  5xx are transient;
- usage: every request is counted, failed ones included; tokens come from the response's ``usage``
  (which includes the tool schemas), estimated (messages plus schemas) only when a server sends none.
"""

from __future__ import annotations

import json
import os
import re
import time
import uuid
from collections.abc import Iterable
from functools import cache
from typing import Any

from langchain_core.messages import AIMessage, BaseMessage
from langchain_core.messages.utils import count_tokens_approximately
from langchain_core.tools import BaseTool
from langchain_core.utils.function_calling import convert_to_openai_tool
from pydantic import BaseModel

from stratus.context import Context
from stratus.policies.base import PolicyStop

MAX_COMPLETION_TOKENS = 1024
"""Cap on one reply: a final answer fits easily, and a small model rambling on a CPU is cut short."""

# bodies of 5xx answers that are really "your request is invalid" (template or validation errors)
_INVALID = re.compile(r"invalid|must be|\bexpected\b|not supported|unsupported|validation|missing|"
                      r"bad request|template|jinja|cannot parse|failed to parse|unknown (tool|function)", re.I)
_TOOL_CALL_TAG = re.compile(r"<tool_call>(.*?)(?:</tool_call>|$)", re.S)
_FENCE = re.compile(r"```[\w-]*\s*\n?(.*?)(?:```|$)", re.S)
_JSON_START = re.compile(r"[{\[]")


class LLMStop(PolicyStop):
    """The LLM cannot go on for this incident; the graph escalates with this message."""


class BudgetExceeded(LLMStop):
    """The incident's LLM budget (calls, tokens or seconds) is spent."""


class LLMCallFailed(LLMStop):
    """The model endpoint failed (after retries for transient errors, at once for others)."""


class LLMUnavailable(RuntimeError):
    """The chat model could not be configured or reached (the message says what to set)."""


# --- the client --------------------------------------------------------------------------------
def shape_payload(payload: dict[str, Any], custom_server: bool) -> dict[str, Any]:
    """The request body every server accepts (see the module docstring); changed in place and returned."""
    for m in payload.get("messages") or []:
        if m.get("role") == "assistant" and m.get("content") is None:
            m["content"] = ""
    if custom_server and "max_completion_tokens" in payload:
        payload["max_tokens"] = payload.pop("max_completion_tokens")
    return payload


@cache
def _client_classes() -> tuple[type, type]:
    """ChatOpenAI and AzureChatOpenAI with ``shape_payload`` applied to every request body."""
    from langchain_openai import AzureChatOpenAI, ChatOpenAI

    class StratusChatOpenAI(ChatOpenAI):
        def _get_request_payload(self, input_: Any, *, stop: list[str] | None = None, **kwargs: Any) -> dict:
            payload = super()._get_request_payload(input_, stop=stop, **kwargs)
            return shape_payload(payload, custom_server=bool(self.openai_api_base))

    class StratusAzureChatOpenAI(AzureChatOpenAI):
        def _get_request_payload(self, input_: Any, *, stop: list[str] | None = None, **kwargs: Any) -> dict:
            return shape_payload(super()._get_request_payload(input_, stop=stop, **kwargs), custom_server=False)

    return StratusChatOpenAI, StratusAzureChatOpenAI


def make_chat_model(ctx: Context) -> Any:
    """The chat model from the context and env; langchain-openai is imported here (it is slow to import)."""
    key = os.environ.get(ctx.api_key_env)
    if os.environ.get("AZURE_OPENAI_ENDPOINT") and not ctx.base_url:
        return _client_classes()[1](azure_deployment=ctx.model, api_key=key,
                                    api_version=os.environ.get("OPENAI_API_VERSION", "2024-10-21"),
                                    temperature=ctx.temperature, timeout=ctx.llm_timeout_s, max_retries=0,
                                    max_tokens=MAX_COMPLETION_TOKENS)
    if not key and not ctx.base_url:
        raise LLMUnavailable(f"the llm policy needs an API key in ${ctx.api_key_env}, or STRATUS_BASE_URL "
                             "pointing at an OpenAI-compatible server (vLLM, Ollama, llama.cpp)")
    return _client_classes()[0](model=ctx.model, base_url=ctx.base_url, api_key=key or "not-needed",
                                temperature=ctx.temperature, timeout=ctx.llm_timeout_s, max_retries=0,
                                max_tokens=MAX_COMPLETION_TOKENS)


# --- errors ------------------------------------------------------------------------------------
def server_reason(exc: BaseException) -> str:
    """The server's own words from an API error body (OpenAI, FastAPI/pydantic and plain shapes)."""
    body = getattr(exc, "body", None)
    if isinstance(body, dict):
        err = body.get("error", body)
        if isinstance(err, dict) and err.get("message"):
            return str(err["message"])
        if isinstance(err, str):
            return err
        detail = body.get("detail")
        if isinstance(detail, list):  # FastAPI's 422: [{"loc": [...], "msg": ...}, ...]
            return "; ".join(f"{'.'.join(map(str, d.get('loc', [])))}: {d.get('msg')}" for d in detail[:3]
                             if isinstance(d, dict))
        if detail:
            return str(detail)
    if isinstance(body, str) and body:
        return body
    return str(getattr(exc, "message", "") or exc)


def is_transient(exc: BaseException) -> bool:
    """Retry rate limits (429), 408/409, timeouts, dropped connections and 5xx that do not say the
    request is invalid; everything else would fail the same way again."""
    try:
        import openai
    except ImportError:  # pragma: no cover - langchain-openai depends on openai
        return False
    if isinstance(exc, openai.APIConnectionError):  # includes APITimeoutError
        return True
    if isinstance(exc, openai.APIStatusError):
        if exc.status_code in (408, 409, 429):
            return True
        return exc.status_code >= 500 and not _INVALID.search(server_reason(exc))
    return False


def is_api_error(exc: BaseException) -> bool:
    try:
        import openai
    except ImportError:  # pragma: no cover
        return False
    return isinstance(exc, openai.APIError)


def failure(exc: BaseException, attempts: int) -> LLMCallFailed:
    """The escalation for a failed request: the server's reason, and whether it was worth retrying."""
    status = getattr(exc, "status_code", None)
    reason = server_reason(exc)[:300]
    if is_transient(exc):
        return LLMCallFailed(f"the model endpoint failed after {attempts} attempt(s): {type(exc).__name__}"
                             f"{f' (HTTP {status})' if status else ''}: {reason}")
    return LLMCallFailed(f"the model endpoint rejected the request (HTTP {status}, not retried after 1 "
                         f"attempt): {reason}")


def rejects_tool_choice(exc: BaseException) -> bool:
    """A non-transient rejection that names ``tool_choice``: the server does not support that form."""
    return is_api_error(exc) and not is_transient(exc) and "tool" in server_reason(exc).lower()


# --- tool schemas and tool calls ---------------------------------------------------------------
def tool_schema(tool: BaseTool | type[BaseModel]) -> dict[str, Any]:
    """The OpenAI tool dict, without what costs tokens on every call and buys nothing: defaults (an
    optional parameter is one the model may leave out; pydantic and the tool fill the default in) and
    the ``anyOf [X, null]`` of optional parameters, reduced to ``X``."""
    spec = convert_to_openai_tool(tool)
    for prop in (spec["function"].get("parameters") or {}).get("properties", {}).values():
        options = prop.get("anyOf")
        if options and prop.get("default", ...) is None:
            kept = [o for o in options if o.get("type") != "null"]
            if len(kept) == 1:
                prop.pop("anyOf")
                prop.update(kept[0])
        prop.pop("default", None)
    return spec


def schema_tokens(schemas: Iterable[dict[str, Any]]) -> int:
    """Approximate tokens the tool schemas add to a prompt (about 4 characters a token of JSON)."""
    return sum(len(json.dumps(s, separators=(",", ":"))) for s in schemas) // 4


def _json_objects(text: str) -> list[Any]:
    """Every top-level JSON value that starts with ``{`` or ``[`` in ``text``, in order (prose between
    them skipped)."""
    decoder = json.JSONDecoder()
    found, i = [], 0
    while (m := _JSON_START.search(text, i)) is not None:
        try:
            obj, end = decoder.raw_decode(text, m.start())
        except ValueError:
            i = m.start() + 1
            continue
        found.append(obj)
        i = end
    return found


def _as_call(obj: Any, names: set[str]) -> dict[str, Any] | None:
    """A tool call from one decoded object when it names an offered tool: ``{"name", "arguments"}``
    (Hermes/Qwen), ``{"name", "parameters"}`` (Llama 3) or ``{"function": {...}}`` (OpenAI's own shape)."""
    if not isinstance(obj, dict):
        return None
    if isinstance(obj.get("function"), dict) and "name" not in obj:
        obj = obj["function"]
    if obj.get("name") not in names:
        return None
    args = obj.get("arguments", obj.get("parameters", {}))
    if isinstance(args, str):  # OpenAI's wire form, which small models copy
        try:
            args = json.loads(args) if args.strip() else {}
        except ValueError:
            return None
    if not isinstance(args, dict):
        return None
    return {"name": obj["name"], "args": args, "id": f"call_{uuid.uuid4().hex[:12]}", "type": "tool_call"}


def text_tool_calls(text: str, names: set[str]) -> list[dict[str, Any]]:
    """The tool calls a model wrote as text, for the tools named in ``names`` only.

    Where a model writes them: ``<tool_call>{...}</tool_call>`` blocks (the Hermes/Qwen chat templates'
    format; an unclosed last block is cut by the stop token), fenced ````json`` blocks, or bare JSON
    objects in prose; a JSON list of calls counts as its elements. An object that does not name an
    offered tool is prose, never a call.
    """
    # the most explicit form present wins; a stray fence (a model closing one it never opened) or an
    # empty tag falls through to the next
    for blobs in (_TOOL_CALL_TAG.findall(text), _FENCE.findall(text), [text]):
        calls = []
        for obj in (o for blob in blobs for o in _json_objects(blob)):
            for item in obj if isinstance(obj, list) else [obj]:
                call = _as_call(item, names)
                if call is not None:
                    calls.append(call)
        if calls:
            return calls
    return []


def recover_tool_calls(reply: AIMessage, names: set[str]) -> AIMessage:
    """Tool calls the server left in the text, made real; every tool call gets an id.

    Only calls of the tools offered are recovered, so prose that happens to hold JSON stays prose; a
    recovered call then goes through exactly the checks of a native one (argument validation, the
    answer tools' validators, the guard). A recovered reply carries ``recovered_tool_calls`` in its
    ``response_metadata`` (counted by the benchmark).
    """
    if not reply.tool_calls and not getattr(reply, "invalid_tool_calls", None) and isinstance(reply.content, str):
        calls = text_tool_calls(reply.content, names)
        if calls:
            # content "": the template renders the calls from tool_calls; the text again would repeat them
            reply = AIMessage(content="", tool_calls=calls, usage_metadata=reply.usage_metadata,
                              response_metadata={**reply.response_metadata, "recovered_tool_calls": len(calls)},
                              id=reply.id)
    for call in [*reply.tool_calls, *(getattr(reply, "invalid_tool_calls", None) or [])]:
        call["id"] = call.get("id") or f"call_{uuid.uuid4().hex[:12]}"  # a tool reply must answer an id
    return reply


# --- the budget --------------------------------------------------------------------------------
class Budget:
    """What the incident has spent on the LLM, carried in the graph state between node runs.

    ``calls`` counts every request sent, failed and retried ones included; ``stats`` holds the rest of
    the benchmark's per-incident figures (failed requests, tool calls by name, latency, how many
    replies carried the server's usage, the estimated tool-schema tokens sent, and per agent turn its
    requests, evidence calls, results the model read and calls recovered from text).
    """

    def __init__(self, ctx: Context, usage: dict[str, Any] | None = None) -> None:
        usage = usage or {}
        self.ctx = ctx
        self.calls = int(usage.get("llm_calls", 0))
        self.tokens = int(usage.get("llm_tokens", 0))
        self.prompt_tokens = int(usage.get("llm_prompt_tokens", 0))
        started = usage.get("llm_started")
        self.started = float(started) if started is not None else time.time()
        stats = dict(usage.get("llm_stats") or {})
        stats["tool_calls"] = dict(stats.get("tool_calls") or {})
        stats["turns"] = list(stats.get("turns") or [])
        self.stats = stats

    def check(self) -> None:
        """Raise ``BudgetExceeded`` naming the budget that is spent."""
        if self.calls >= self.ctx.max_llm_calls:
            raise BudgetExceeded(f"LLM call budget spent ({self.calls}/{self.ctx.max_llm_calls} requests, "
                                 "Context.max_llm_calls)")
        if self.tokens >= self.ctx.max_tokens:
            raise BudgetExceeded(f"LLM token budget spent ({self.tokens}/{self.ctx.max_tokens} tokens, "
                                 "Context.max_tokens)")
        if time.time() - self.started >= self.ctx.max_seconds:
            raise BudgetExceeded(f"LLM time budget spent ({self.ctx.max_seconds:.0f} s, Context.max_seconds)")

    def _add(self, key: str, value: float) -> None:
        self.stats[key] = round(self.stats.get(key, 0) + value, 3)

    def sent(self) -> None:
        """One request goes out (counted whether it succeeds or not)."""
        self.calls += 1

    def failed(self, latency_s: float) -> None:
        self._add("failed_requests", 1)
        self._add("latency_s", latency_s)

    def record(self, sent: list[BaseMessage], schemas: list[dict[str, Any]], reply: AIMessage,
               latency_s: float) -> None:
        """Tokens of one answered request: the server's ``usage``, else an estimate with the schemas."""
        usage = getattr(reply, "usage_metadata", None) or {}
        prompt, completion = usage.get("input_tokens"), usage.get("output_tokens")
        if prompt is None or completion is None:
            self._add("estimated_replies", 1)
        if prompt is None:
            prompt = count_tokens_approximately(sent) + schema_tokens(schemas)
        if completion is None:
            completion = count_tokens_approximately([reply])
        self.prompt_tokens += int(prompt)
        self.tokens += int(prompt) + int(completion)
        self._add("completion_tokens", int(completion))
        self._add("schema_tokens", schema_tokens(schemas))
        self._add("latency_s", latency_s)
        self.stats["max_latency_s"] = round(max(self.stats.get("max_latency_s", 0.0), latency_s), 3)

    def turn(self, figures: dict[str, Any]) -> None:
        """One agent turn's figures: requests, evidence calls, results the model read, recovered calls."""
        self.stats["turns"].append(figures)

    def tool_call(self, name: str) -> None:
        self.stats["tool_calls"][name] = self.stats["tool_calls"].get(name, 0) + 1

    def usage(self) -> dict[str, Any]:
        return {"llm_calls": self.calls, "llm_tokens": self.tokens, "llm_prompt_tokens": self.prompt_tokens,
                "llm_started": self.started, "llm_stats": self.stats}
