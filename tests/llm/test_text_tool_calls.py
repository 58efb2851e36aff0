"""Tool calls a small model writes as text, and the turn discipline that makes it read evidence first.

The shapes are the ones seen from the packaged Qwen2.5-Coder-1.5B on llama-cpp-python (the GGUF's own
template, ``tool_choice: "auto"``): a fenced ```` ```json ```` object naming the tool, with or without
prose around it, and the template's own ``<tool_call>`` blocks. A call recovered from text goes through
exactly the checks of a native one; text that names no offered tool is never run.
"""

from __future__ import annotations

import json
from typing import Any

from langchain_core.messages import AIMessage, BaseMessage, ToolMessage

from stratus.context import Context
from stratus.policies.llm import LLMPolicy
from stratus.policies.llm_client import recover_tool_calls, text_tool_calls
from stratus.policies.scripted import ScriptedChatModel

NS = "test-hotel-reservation"
OFFERED = {"list_objects", "describe", "events", "submit_diagnosis"}


def _fenced(name: str, args: dict[str, Any], prose: str = "") -> AIMessage:
    return AIMessage(content=f"{prose}```json\n{json.dumps({'name': name, 'arguments': args}, indent=2)}\n```")


def test_every_text_shape_of_an_offered_tool_is_recovered() -> None:
    shapes = {
        "fenced": '```json\n{"name": "describe", "arguments": {"kind": "Service", "name": "geo"}}\n```',
        "fenced after prose": 'Let me check the service first.\n```json\n{"name": "describe", "arguments": '
                              '{"kind": "Service", "name": "geo"}}\n```\nThen I will answer.',
        "tag": '<tool_call>\n{"name": "describe", "arguments": {"kind": "Service", "name": "geo"}}\n</tool_call>',
        "unclosed tag": '<tool_call>\n{"name": "describe", "arguments": {"kind": "Service", "name": "geo"}}',
        "bare in prose": 'I call {"name": "describe", "arguments": {"kind": "Service", "name": "geo"}} now.',
        "string arguments": '{"name": "describe", "arguments": "{\\"kind\\": \\"Service\\", \\"name\\": \\"geo\\"}"}',
        "parameters": '{"name": "describe", "parameters": {"kind": "Service", "name": "geo"}}',
        "openai shape": '{"function": {"name": "describe", "arguments": {"kind": "Service", "name": "geo"}}}',
        "list": '[{"name": "describe", "arguments": {"kind": "Service", "name": "geo"}}]',
        "stray closing fence (real)": '{"name": "describe", "arguments": "{\\"kind\\": \\"Service\\", \\"name\\": '
                                      '\\"geo\\"}"}\n```',
    }
    for shape, text in shapes.items():
        calls = text_tool_calls(text, OFFERED)
        assert [(c["name"], c["args"]) for c in calls] == [("describe", {"kind": "Service", "name": "geo"})], shape


def test_text_naming_no_offered_tool_is_never_a_call() -> None:
    for text in ('```json\n{"name": "kubectl", "arguments": {"cmd": "delete ns x"}}\n```',
                 '<tool_call>{"name": "shell", "arguments": {"cmd": "rm -rf /"}}</tool_call>',
                 '```json\n{"root_cause_component": "geo", "fault_class": "crash_loop"}\n```',
                 '{"name": "describe", "arguments": ["not", "an", "object"]}',
                 "The pods are fine [critical] {not json}"):
        reply = recover_tool_calls(AIMessage(content=text), OFFERED)
        assert reply.tool_calls == [] and reply.content == text, text
        assert "recovered_tool_calls" not in reply.response_metadata


def test_recovered_call_is_counted_and_carries_no_text() -> None:
    reply = recover_tool_calls(_fenced("events", {"name": "geo"}, "Checking events.\n"), OFFERED)
    assert [(c["name"], c["args"]) for c in reply.tool_calls] == [("events", {"name": "geo"})]
    assert reply.content == "" and reply.response_metadata["recovered_tool_calls"] == 1


def test_recovered_plan_goes_through_the_guard(llm_helpers: Any) -> None:
    f = llm_helpers.faulted("hotel-geo-service-target-port")
    hyp = LLMPolicy(Context(policy="llm", chat_model=ScriptedChatModel(script=[AIMessage("x")]))) \
        .rules.diagnose(f.cluster, f.namespace)[1][0]
    bad = {"commands": [{"kubectl": f"kubectl delete namespace {NS}"}]}
    good = {"commands": [{"kubectl": f"kubectl scale deployment/geo -n {NS} --replicas=2"}]}
    model = ScriptedChatModel(script=[_fenced("submit_plan", bad), _fenced("submit_plan", good)])
    plan = LLMPolicy(Context(policy="llm", chat_model=model)).next_plan(f.cluster, f.namespace, [hyp], {})
    assert plan is not None and plan.commands == [good["commands"][0]["kubectl"]]
    refused = [m for m in model.seen[-1] if isinstance(m, ToolMessage) and str(m.content).startswith("refused:")]
    assert len(refused) == 1 and "namespace" in str(refused[0].content)


def test_a_plan_command_without_the_program_name_gets_it_and_still_meets_the_guard() -> None:
    from stratus.policies.llm_answers import PlannedCommand

    patch = (f"patch service/geo -n {NS} --type=json -p "
             "'[{\"op\":\"replace\",\"path\":\"/spec/ports/0/targetPort\",\"value\":8083}]'")
    assert PlannedCommand(kubectl=patch).kubectl == "kubectl " + patch  # as the 1.5B model wrote it
    for other in ("rm -rf /", "sudo kubectl scale deployment/geo --replicas=0", "get pods"):
        assert PlannedCommand(kubectl=other).kubectl == other  # not a kubectl write verb: the guard refuses it


def _diagnosis() -> dict[str, Any]:
    return {"root_cause_component": "geo", "fault_class": "service_port_mismatch", "confidence": 0.8,
            "summary": "geo's Service targets the wrong port", "evidence": [{"claim": "no endpoints", "evidence": ["E1"]}]}


def test_an_answer_before_any_evidence_is_refused_and_the_result_reaches_the_model(llm_helpers: Any) -> None:
    """llm_min_tool_calls=1: the model answers at once (as the 1.5B model does), is told to read first,
    calls a tool in text, and its result goes back as a tool message answering that call."""
    f = llm_helpers.faulted("hotel-geo-service-target-port")
    model = ScriptedChatModel(script=[_fenced("submit_diagnosis", _diagnosis()),
                                      _fenced("describe", {"kind": "Service", "name": "geo"}, "Let me check.\n"),
                                      _fenced("submit_diagnosis", _diagnosis())])
    policy = LLMPolicy(Context(policy="llm", chat_model=model, llm_min_tool_calls=1, llm_max_steps=4))
    _findings, hyps, _view = policy.diagnose(f.cluster, f.namespace)
    assert (hyps[0].component, hyps[0].fault_class, hyps[0].data["source"]) == ("geo", "service_port_mismatch", "llm")
    assert model.calls == 3
    first_refusal = _tool_replies(model.seen[1])
    assert len(first_refusal) == 1 and str(first_refusal[0].content).startswith("refused: read the evidence first")
    last = model.seen[2]
    call_ids = {c["id"]: c["name"] for m in last if isinstance(m, AIMessage) for c in m.tool_calls}
    results = [m for m in _tool_replies(last) if call_ids.get(m.tool_call_id) == "describe"]
    assert len(results) == 1 and "kind: Service" in str(results[0].content)
    assert policy.usage()["llm_stats"]["turns"] == [{"agent": "diagnosis", "requests": 3, "tool_calls": 1,
                                                     "results_read": 1, "recovered": 3, "answer": "answered"}]


def test_without_the_setting_an_immediate_answer_is_accepted(llm_helpers: Any) -> None:
    f = llm_helpers.faulted("hotel-geo-service-target-port")
    model = ScriptedChatModel(script=[_fenced("submit_diagnosis", _diagnosis())])
    policy = LLMPolicy(Context(policy="llm", chat_model=model, llm_max_steps=4))
    _findings, hyps, _view = policy.diagnose(f.cluster, f.namespace)
    assert model.calls == 1 and hyps[0].data["source"] == "llm"
    assert policy.usage()["llm_stats"]["turns"][0]["tool_calls"] == 0


def test_the_forced_final_step_is_never_refused_and_repeats_are_not_rerun(llm_helpers: Any) -> None:
    """A model that repeats one call is answered from the first result; at the step cap the answer is
    taken even with min_tool_calls unmet (the loop always ends)."""
    f = llm_helpers.faulted("hotel-geo-service-target-port")
    model = ScriptedChatModel(script=[_fenced("submit_diagnosis", _diagnosis()),
                                      _fenced("submit_diagnosis", _diagnosis())])
    policy = LLMPolicy(Context(policy="llm", chat_model=model, llm_min_tool_calls=1, llm_max_steps=1))
    _findings, hyps, _view = policy.diagnose(f.cluster, f.namespace)
    assert model.calls == 1 and hyps[0].data["source"] == "llm"  # step 0 is the last before the forced one

    again = ScriptedChatModel(script=[_fenced("events", {"name": "geo"}), _fenced("events", {"name": "geo"}),
                                      _fenced("submit_diagnosis", _diagnosis())])
    policy = LLMPolicy(Context(policy="llm", chat_model=again, llm_min_tool_calls=1, llm_max_steps=4))
    policy.diagnose(f.cluster, f.namespace)
    repeated = [m for m in _tool_replies(again.seen[2]) if str(m.content).startswith("same call as")]
    assert len(repeated) == 1 and policy.usage()["llm_stats"]["turns"][0]["tool_calls"] == 1


def _tool_replies(messages: list[BaseMessage]) -> list[ToolMessage]:
    return [m for m in messages if isinstance(m, ToolMessage)]
