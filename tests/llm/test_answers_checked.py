"""Issue 10's answers a small model gives: a fault type as the fault class, the same change proposed
again under another hypothesis, and an escalation that must say which limit was hit."""

from __future__ import annotations

from typing import Any

from langchain_core.messages import AIMessage, BaseMessage, ToolMessage

from stratus.api import invoke_graph
from stratus.context import Context
from stratus.policies.llm import LLMPolicy
from stratus.policies.rules import runbook_data
from stratus.policies.scripted import ScriptedChatModel, follow_evidence, tool_call
from stratus.state import Hypothesis

NS = "test-hotel-reservation"
RESTART = f"kubectl rollout restart deployment/geo -n {NS}"


def _diagnosis(cls: str, comp: str = "geo") -> dict[str, Any]:
    return {"root_cause_component": comp, "fault_class": cls, "confidence": 0.6, "summary": f"{cls} at {comp}",
            "evidence": [{"claim": "geo fails", "evidence": ["E1"]}]}


def test_fault_type_as_fault_class_is_repaired_once(llm_helpers: Any) -> None:
    f = llm_helpers.faulted("hotel-geo-service-target-port")
    model = ScriptedChatModel(script=[tool_call("submit_diagnosis", _diagnosis("Misconfiguration"), "d1"),
                                      tool_call("submit_diagnosis", _diagnosis("service_port_mismatch"), "d2")])
    _findings, hyps, _view = LLMPolicy(Context(policy="llm", chat_model=model)).diagnose(f.cluster, f.namespace)
    main = hyps[0]
    assert (main.fault_class, main.data["source"]) == ("service_port_mismatch", "llm")
    assert (main.system_level, main.fault_type) == tuple(runbook_data()["classes"]["service_port_mismatch"]["labels"])
    refusal = [m for m in model.seen[-1] if isinstance(m, ToolMessage) and "not in the catalogue" in str(m.content)]
    assert len(refusal) == 1 and "service_port_mismatch" in str(refusal[0].content)


def test_fault_class_outside_catalogue_twice_falls_back_to_analyzers(llm_helpers: Any) -> None:
    f = llm_helpers.faulted("hotel-geo-service-target-port")
    model = ScriptedChatModel(script=[lambda msgs: tool_call("submit_diagnosis", _diagnosis("Code Defect"),
                                                             f"d{len(msgs)}")])
    _findings, hyps, _view = LLMPolicy(Context(policy="llm", chat_model=model)).diagnose(f.cluster, f.namespace)
    assert model.calls == 2 and hyps and all(h.data.get("source") != "llm" for h in hyps)


def test_same_change_under_another_hypothesis_is_refused(llm_helpers: Any) -> None:
    f = llm_helpers.faulted("hotel-geo-service-target-port")
    other = Hypothesis(component="geo", fault_class="crash_loop", confidence=0.5, summary="geo restarts")
    # the restart was tried (and undone) under service_port_mismatch; typed differently now
    tried = {"geo:service_port_mismatch:llm:" + RESTART: [RESTART]}
    model = ScriptedChatModel(script=[
        tool_call("submit_plan", {"commands": [{"kubectl": f"kubectl -n {NS} rollout restart deploy geo"}]}, "p1"),
        tool_call("submit_plan", {"commands": [{"kubectl": f"kubectl scale deployment/geo -n {NS} --replicas=2"}]},
                  "p2")])
    plan = LLMPolicy(Context(policy="llm", chat_model=model)).next_plan(f.cluster, f.namespace, [other], tried)
    assert plan is not None and plan.commands == [f"kubectl scale deployment/geo -n {NS} --replicas=2"]
    refused = [m for m in model.seen[-1] if isinstance(m, ToolMessage) and str(m.content).startswith("refused:")]
    assert len(refused) == 1 and "already applied or refused" in str(refused[0].content)


def _same_harm_every_time(harmful: str) -> ScriptedChatModel:
    """Diagnosis names a new class each turn; Mitigation always proposes ``harmful``."""
    classes = iter(["crash_loop", "unavailable", "bad_rollout", "oom_limit", "env_misconfig", "image_pull"] * 5)

    def script(messages: list[BaseMessage]) -> AIMessage:
        system = str(messages[0].content)
        if "Diagnosis agent" in system:
            return tool_call("submit_diagnosis", _diagnosis(next(classes), "frontend"), f"d{len(messages)}")
        if "Mitigation agent" in system:
            return tool_call("submit_plan", {"commands": [{"kubectl": harmful}]}, f"p{len(messages)}")
        return follow_evidence(messages, runbook_data()["classes"])

    return ScriptedChatModel(script=[script])


HARMFUL = f"kubectl scale deployment/frontend -n {NS} --replicas=0"


def test_undone_change_is_never_applied_again(llm_helpers: Any) -> None:
    f = llm_helpers.faulted("hotel-geo-service-target-port")
    model = _same_harm_every_time(HARMFUL)
    result = invoke_graph(f.alerts, cluster=f.cluster,
                          context=Context(policy="llm", chat_model=model, db=":memory:", max_attempts=3))
    assert [(t["kubectl"], t["status"]) for t in result.transactions] == [([HARMFUL], "undone")]
    refused = [m for conv in model.seen for m in conv if isinstance(m, ToolMessage)
               and "already applied or refused" in str(m.content)]
    assert refused  # proposed again under a new hypothesis, refused before any transaction
    assert result.outcome == "escalated" and "no untried plan" in result.summary


def test_escalation_names_the_attempt_limit(llm_helpers: Any) -> None:
    f = llm_helpers.faulted("hotel-geo-service-target-port")
    result = invoke_graph(f.alerts, cluster=f.cluster, context=Context(
        policy="llm", chat_model=_same_harm_every_time(HARMFUL), db=":memory:", max_attempts=1))
    assert result.outcome == "escalated" and len(result.transactions) == 1
    assert "attempt limit reached (1/1 transactions, Context.max_attempts)" in result.summary
    assert "budget" not in result.summary


def test_escalation_names_the_step_limit(llm_helpers: Any) -> None:
    f = llm_helpers.faulted("hotel-geo-service-target-port")
    result = invoke_graph(f.alerts, cluster=f.cluster, context=Context(
        policy="llm", chat_model=_same_harm_every_time(HARMFUL), db=":memory:", max_steps=4))
    assert result.outcome == "escalated" and len(result.transactions) == 1  # the wrap-up steps finish it
    assert "step limit reached (Context.max_steps=4 graph steps)" in result.summary


def test_a_component_that_is_not_in_the_namespace_is_repaired_once(llm_helpers: Any) -> None:
    f = llm_helpers.faulted("hotel-geo-service-target-port")
    model = ScriptedChatModel(script=[
        tool_call("submit_diagnosis", _diagnosis("service_port_mismatch", comp="Misconfiguration"), "d1"),
        tool_call("submit_diagnosis", _diagnosis("service_port_mismatch", comp="geo"), "d2")])
    _findings, hyps, _view = LLMPolicy(Context(policy="llm", chat_model=model)).diagnose(f.cluster, f.namespace)
    assert (hyps[0].component, hyps[0].data["source"]) == ("geo", "llm")
    refusal = [m for m in model.seen[-1] if isinstance(m, ToolMessage) and "is not a component" in str(m.content)]
    assert len(refusal) == 1 and "'Misconfiguration'" in str(refusal[0].content) and "geo" in str(refusal[0].content)
