"""The OpenAI-compatible servers users run, as loopback test servers: each one's request rules and reply shapes.

Each ``Flavour`` checks a request the way that server does (and rejects it with that server's status and
error body) and answers in that server's reply shape. Sources, per flavour:

- ``openai``: the Chat Completions API reference (tool_choice forms, tool messages answering a preceding
  assistant tool call, ``content`` null allowed beside ``tool_calls``; ``call_...`` ids, ``refusal``).
- ``azure``: Azure OpenAI's REST reference (``/openai/deployments/{deployment}/chat/completions``,
  ``api-version`` query, ``api-key`` header; content-filter results in every reply).
- ``vllm``: vLLM's tool-calling docs and its error text quoted in public issue threads (``"auto"`` needs
  ``--enable-auto-tool-choice --tool-call-parser``; named and ``required`` tool choice; ``chatcmpl-tool-``
  ids, ``content`` null beside tool calls).
- ``llama-server``: llama.cpp's ``common/chat.cpp`` (``common_chat_msgs_parse_oaicompat``,
  ``common_chat_tool_choice_parse_oaicompat``) and the server's ``json_value`` fallback: ``tool_choice``
  must be a string (auto/none/required); an object is ignored (treated as auto); ``content`` string,
  array or null; errors are 400 ``invalid_request_error``.
- ``llama-cpp-python``: its ``llama_chat_format.py`` (a named ``tool_choice`` is forced by a grammar and
  answered as ``tool_calls`` with ``content`` null and ids ``call__0_<name>_<id>``; with ``auto`` and the
  GGUF's own template the tool call is left in the text, ``<tool_call>{...}</tool_call>``), and the
  HTTP 500 "content must be a string" for an assistant message with ``content: null`` that issue 10
  recorded on a real run. ``llama-cpp-python-fenced``: the same server with the packaged
  Qwen2.5-Coder-1.5B, which writes its calls as fenced JSON after a sentence (recorded, see
  ``recorded/``).
- ``ollama``: its ``openai/openai.go`` (``tool_choice`` is not a field: ignored; ``content`` may be null
  only beside ``tool_calls``, else 400 "invalid message content type"; replies carry ``content: ""``
  beside tool calls, ids ``call_...``, finish reason ``tool_calls``).
"""

from __future__ import annotations

import json
import secrets
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from typing import Any

from langchain_core.messages import convert_to_messages
from testkit import http_server, send_json

from stratus.policies.rules import runbook_data
from stratus.policies.scripted import follow_evidence

Check = Callable[[str, dict[str, str], dict[str, Any]], "Rejection | None"]


@dataclass
class Rejection:
    status: int
    body: dict[str, Any]


@dataclass
class Flavour:
    name: str
    check: Check
    reply: Callable[[dict[str, Any], str, list[dict[str, Any]], dict[str, int]], dict[str, Any]]
    forced_grammar: bool = True  # a named tool_choice really forces the tool
    options: dict[str, Any] = field(default_factory=dict)


def _err(status: int, message: str, kind: str = "invalid_request_error") -> Rejection:
    return Rejection(status, {"error": {"message": message, "type": kind, "param": None, "code": None}})


# --- request rules ------------------------------------------------------------------------------
def common_problem(req: dict[str, Any]) -> str | None:
    """What every server requires of the message list and the tool definitions (OpenAI's rules)."""
    msgs = req.get("messages")
    if not isinstance(msgs, list) or not msgs:
        return "messages must be a non-empty array"
    seen_calls: set[str] = set()
    for i, m in enumerate(msgs):
        role = m.get("role")
        if role not in ("system", "user", "assistant", "tool", "developer"):
            return f"messages[{i}].role: unknown role {role!r}"
        if role == "tool":
            if m.get("tool_call_id") not in seen_calls:
                return (f"messages[{i}]: messages with role 'tool' must be a response to a preceding message "
                        "with 'tool_calls'")
            if not isinstance(m.get("content"), str):
                return f"messages[{i}].content must be a string"
        if role in ("system", "user") and not isinstance(m.get("content"), (str, list)):
            return f"messages[{i}].content must be a string"
        for tc in m.get("tool_calls") or []:
            fn = tc.get("function") or {}
            if tc.get("type") != "function" or not tc.get("id") or not isinstance(fn.get("arguments"), str) \
                    or not fn.get("name"):
                return f"messages[{i}].tool_calls: each needs id, type function, function.name and arguments"
            seen_calls.add(tc["id"])
    for t in req.get("tools") or []:
        fn = t.get("function") or {}
        if t.get("type") != "function" or not fn.get("name") or (fn.get("parameters") or {}).get("type") != "object":
            return "tools: each needs type function, a name and object parameters"
    return None


def _named(req: dict[str, Any]) -> str | None:
    choice = req.get("tool_choice")
    return choice["function"]["name"] if isinstance(choice, dict) else None


def _tool_names(req: dict[str, Any]) -> set[str]:
    return {t["function"]["name"] for t in req.get("tools") or []}


def openai_check(path: str, headers: dict[str, str], req: dict[str, Any]) -> Rejection | None:
    if path.split("?")[0].rstrip("/") != "/v1/chat/completions":
        return _err(404, f"Invalid URL (POST {path})")
    if not req.get("model"):
        return _err(400, "you must provide a model parameter")
    problem = common_problem(req)
    if problem:
        return _err(400, problem)
    choice = req.get("tool_choice")
    if choice is not None and not req.get("tools"):
        return _err(400, "Invalid value for 'tool_choice': 'tool_choice' is only allowed when 'tools' are specified.")
    if isinstance(choice, str) and choice not in ("none", "auto", "required"):
        return _err(400, f"Invalid value for 'tool_choice': {choice!r}")
    if _named(req) is not None and _named(req) not in _tool_names(req):
        return _err(400, f"Invalid value for 'tool_choice': no function named {_named(req)!r} was specified "
                         "in the 'tools' parameter")
    return None


def azure_check(path: str, headers: dict[str, str], req: dict[str, Any]) -> Rejection | None:
    route, _, query = path.partition("?")
    if not route.startswith("/openai/deployments/") or not route.endswith("/chat/completions"):
        return _err(404, "Resource not found", "NotFound")
    if "api-version=" not in query:
        return _err(404, "Resource not found", "NotFound")
    if not headers.get("api-key"):
        return _err(401, "Access denied due to missing subscription key.", "AuthenticationError")
    return openai_check("/v1/chat/completions", headers, {**req, "model": req.get("model") or "deployment"})


def vllm_check(parser: bool) -> Check:
    def check(path: str, headers: dict[str, str], req: dict[str, Any]) -> Rejection | None:
        problem = common_problem(req)
        if problem:
            return _err(400, problem, "BadRequestError")
        choice = req.get("tool_choice")
        if choice == "auto" and req.get("tools") and not parser:
            return _err(400, '"auto" tool choice requires --enable-auto-tool-choice and --tool-call-parser '
                             "to be set", "BadRequestError")
        if _named(req) is not None and _named(req) not in _tool_names(req):
            return _err(400, f"Tool '{_named(req)}' has not been passed in `tools`.", "BadRequestError")
        return None
    return check


def llama_server_check(path: str, headers: dict[str, str], req: dict[str, Any]) -> Rejection | None:
    for m in req.get("messages") or []:
        content = m.get("content")
        if content is not None and not isinstance(content, (str, list)):
            return _err(400, f"Failed to parse messages: Invalid 'content' type: expected string or array, "
                             f"got {json.dumps(content)}")
        if "content" not in m and "tool_calls" not in m:
            return _err(400, "Failed to parse messages: Expected 'content' or 'tool_calls'")
    choice = req.get("tool_choice")
    if isinstance(choice, str) and choice not in ("auto", "none", "required"):
        return _err(400, f"Invalid tool_choice: {choice}")
    problem = common_problem(req)
    return _err(400, problem) if problem else None


def llama_cpp_python_check(path: str, headers: dict[str, str], req: dict[str, Any]) -> Rejection | None:
    for m in req.get("messages") or []:
        if m.get("role") == "assistant" and not isinstance(m.get("content"), str):
            return _err(500, "content must be a string", "InternalServerError")
    if _named(req) is not None and _named(req) not in _tool_names(req):
        return _err(500, f"Tool choice '{_named(req)}' not found in tools.", "InternalServerError")
    problem = common_problem(req)
    return _err(500, problem, "InternalServerError") if problem else None


def ollama_check(path: str, headers: dict[str, str], req: dict[str, Any]) -> Rejection | None:
    for m in req.get("messages") or []:
        if m.get("content") is None and not m.get("tool_calls"):
            return _err(400, "invalid message content type: <nil>")
    problem = common_problem(req)
    return _err(400, problem) if problem else None


# --- reply shapes -------------------------------------------------------------------------------
def _usage(u: dict[str, int]) -> dict[str, Any]:
    return {"prompt_tokens": u["prompt"], "completion_tokens": u["completion"],
            "total_tokens": u["prompt"] + u["completion"]}


def _calls(calls: list[dict[str, Any]], make_id: Callable[[dict[str, Any]], str]) -> list[dict[str, Any]]:
    return [{"id": make_id(c), "type": "function",
             "function": {"name": c["name"], "arguments": json.dumps(c["args"])}} for c in calls]


def openai_reply(req: dict[str, Any], text: str, calls: list[dict[str, Any]], u: dict[str, int]) -> dict[str, Any]:
    msg = {"role": "assistant", "content": None if calls else text, "refusal": None, "annotations": []}
    if calls:
        msg["tool_calls"] = _calls(calls, lambda c: "call_" + secrets.token_hex(12))
    return {"id": "chatcmpl-" + secrets.token_hex(12), "object": "chat.completion", "created": int(time.time()),
            "model": req.get("model") or "gpt-4o-mini-2024-07-18", "system_fingerprint": "fp_test",
            "service_tier": "default",
            "choices": [{"index": 0, "message": msg, "logprobs": None,
                         "finish_reason": "tool_calls" if calls else "stop"}],
            "usage": {**_usage(u), "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
                      "completion_tokens_details": {"reasoning_tokens": 0, "audio_tokens": 0}}}


def azure_reply(req: dict[str, Any], text: str, calls: list[dict[str, Any]], u: dict[str, int]) -> dict[str, Any]:
    body = openai_reply(req, text, calls, u)
    safe = {k: {"filtered": False, "severity": "safe"} for k in ("hate", "self_harm", "sexual", "violence")}
    body["prompt_filter_results"] = [{"prompt_index": 0, "content_filter_results": safe}]
    body["choices"][0]["content_filter_results"] = {} if calls else safe
    return body


def vllm_reply(req: dict[str, Any], text: str, calls: list[dict[str, Any]], u: dict[str, int]) -> dict[str, Any]:
    msg: dict[str, Any] = {"role": "assistant", "content": None if calls else text, "reasoning_content": None,
                           "tool_calls": _calls(calls, lambda c: "chatcmpl-tool-" + secrets.token_hex(16))}
    return {"id": "chatcmpl-" + secrets.token_hex(16), "object": "chat.completion", "created": int(time.time()),
            "model": req["model"], "choices": [{"index": 0, "message": msg, "logprobs": None,
                                                "finish_reason": "tool_calls" if calls else "stop",
                                                "stop_reason": None}],
            "usage": {**_usage(u), "prompt_tokens_details": None}, "prompt_logprobs": None,
            "kv_transfer_params": None}


def llama_server_reply(req: dict[str, Any], text: str, calls: list[dict[str, Any]],
                       u: dict[str, int]) -> dict[str, Any]:
    msg: dict[str, Any] = {"role": "assistant", "content": None if calls else text}
    if calls:
        msg["tool_calls"] = _calls(calls, lambda c: secrets.token_hex(16))
    return {"id": "chatcmpl-" + secrets.token_hex(16), "object": "chat.completion", "created": int(time.time()),
            "model": req.get("model") or "gpt-3.5-turbo", "system_fingerprint": "b6000-test",
            "choices": [{"index": 0, "message": msg, "finish_reason": "tool_calls" if calls else "stop"}],
            "usage": _usage(u), "timings": {"prompt_n": u["prompt"], "predicted_n": u["completion"]}}


def _tagged(calls: list[dict[str, Any]]) -> str:
    return "\n".join("<tool_call>\n" + json.dumps({"name": c["name"], "arguments": c["args"]}) + "\n</tool_call>"
                     for c in calls)


def _fenced(calls: list[dict[str, Any]]) -> str:
    """What the packaged Qwen2.5-Coder-1.5B printed instead of the template's tags (recorded on a real
    run): a sentence, then each call as an indented ```json block."""
    return "I will call the tool.\n" + "\n".join(
        "```json\n" + json.dumps({"name": c["name"], "arguments": c["args"]}, indent=2) + "\n```" for c in calls)


def llama_cpp_python_reply(req: dict[str, Any], text: str, calls: list[dict[str, Any]],
                           u: dict[str, int], as_text: Callable[[list[dict[str, Any]]], str] = _tagged) -> dict[str, Any]:
    cid = "cmpl-" + secrets.token_hex(16)
    base = {"id": "chat" + cid, "object": "chat.completion", "created": int(time.time()), "model": req["model"],
            "usage": _usage(u)}
    if calls and _named(req):  # the grammar-forced path: one call of the named tool
        c = calls[0]
        args = json.dumps(c["args"])
        msg = {"role": "assistant", "content": None, "function_call": {"name": c["name"], "arguments": args},
               "tool_calls": [{"id": f"call__0_{c['name']}_{cid}", "type": "function",
                               "function": {"name": c["name"], "arguments": args}}]}
        return {**base, "choices": [{"index": 0, "message": msg, "logprobs": None, "finish_reason": "tool_calls"}]}
    if calls:  # left in the text by the server, in the template's format or the model's own
        text = as_text(calls)
    return {**base, "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "logprobs": None,
                                 "finish_reason": "stop"}]}


def ollama_reply(req: dict[str, Any], text: str, calls: list[dict[str, Any]], u: dict[str, int]) -> dict[str, Any]:
    msg: dict[str, Any] = {"role": "assistant", "content": "" if calls else text}
    if calls:
        msg["tool_calls"] = [{**c, "index": i} for i, c in enumerate(_calls(calls, lambda c: "call_" +
                                                                            secrets.token_hex(4)))]
    return {"id": "chatcmpl-" + str(secrets.randbelow(1000)), "object": "chat.completion",
            "created": int(time.time()), "model": req["model"], "system_fingerprint": "fp_ollama",
            "choices": [{"index": 0, "message": msg, "finish_reason": "tool_calls" if calls else "stop"}],
            "usage": _usage(u)}


FLAVOURS = {
    "openai": Flavour("openai", openai_check, openai_reply),
    "azure": Flavour("azure", azure_check, azure_reply),
    "vllm": Flavour("vllm", vllm_check(parser=True), vllm_reply),
    "llama-server": Flavour("llama-server", llama_server_check, llama_server_reply, forced_grammar=False),
    "llama-cpp-python": Flavour("llama-cpp-python", llama_cpp_python_check, llama_cpp_python_reply),
    "llama-cpp-python-fenced": Flavour("llama-cpp-python-fenced", llama_cpp_python_check,
                                       lambda *a: llama_cpp_python_reply(*a, as_text=_fenced)),
    "ollama": Flavour("ollama", ollama_check, ollama_reply, forced_grammar=False),
}


# --- the server -------------------------------------------------------------------------------
FIRST_TOOL = {"Detection agent": ("alerts", {}), "Diagnosis agent": ("list_objects", {"kind": "Pod"}),
              "Mitigation agent": ("list_objects", {"kind": "Deployment"})}
READ_ARGS = {"list_objects": {"kind": "Pod"}, "describe": {"kind": "Deployment", "name": "rate"}}
"""Arguments the model gives an evidence tool that the request names in ``tool_choice``."""


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
        named = _named(req)
        if named in READ_ARGS:
            return "", [{"name": named, "args": READ_ARGS[named]}]
        for marker, (tool, args) in FIRST_TOOL.items():
            if marker in system and first_turn and tool in offered:
                return "", [{"name": tool, "args": args}]
        reply = follow_evidence(convert_to_messages(wire), runbook_data()["classes"])
        return str(reply.content), [{"name": c["name"], "args": c["args"]} for c in reply.tool_calls]


def serve(server: Server) -> Iterator[Server]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:
            pass

        def do_POST(self) -> None:  # noqa: N802 - http.server's naming
            body = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)) or b"{}")
            status, payload = server.answer(self.path, {k.lower(): v for k, v in self.headers.items()}, body)
            send_json(self, status, payload)

    with http_server(Handler) as port:
        server.port = port
        yield server
