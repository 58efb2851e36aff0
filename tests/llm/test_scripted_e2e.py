"""The llm policy end to end on the twin, with scripted chat models (no network, no weights).

What is proved here: the LLM agents resolve real incidents through the unchanged TNR graph; a harmful
LLM plan is undone by TNR and a later correct plan resolves the incident; claims that cite nothing are
dropped; every tool loop ends (step cap, repair cap); spent budgets escalate cleanly with a reason.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, ToolMessage

from stratus.api import invoke_graph
from stratus.bench.runner import run_scenario
from stratus.context import Context
from stratus.policies import prompts
from stratus.policies.llm import LLMPolicy
from stratus.policies.rules import runbook_data
from stratus.policies.scripted import EvidenceFollowingModel, ScriptedChatModel, follow_evidence, tool_call
from stratus.state import Hypothesis
from stratus.tools.kubectl import parse, render

NS = "test-hotel-reservation"
PIPED = "kubectl get secrets -n test-hotel-reservation -o yaml | sh"


def _llm_ctx(model: Any, **kw: Any) -> Context:
    return Context(policy="llm", chat_model=model, db=":memory:", **kw)


def _follow(messages: list[BaseMessage]) -> AIMessage:
    return follow_evidence(messages, runbook_data()["classes"])


def _transactions(updates: list[tuple[str, dict[str, Any]]]) -> list[dict[str, Any]]:
    """The transaction log rebuilt from node updates (the last version of each transaction wins)."""
    out: dict[str, dict[str, Any]] = {}
    for _node, update in updates:
        for tx in update.get("transactions") or []:
            out[tx["id"]] = tx
    return list(out.values())


# --- 1. resolves incidents of several fault types ----------------------------------------------
RESOLVED_BY_EVIDENCE = [
    "hotel-geo-service-target-port",      # Service targetPort misconfiguration
    "hotel-rate-scale-to-zero",           # operation error: replicas 0
    "hotel-mongodb-geo-revoke-db-role",   # authentication: database role revoked
    "hotel-profile-wrong-command",        # container command is not the binary
    "hotel-search-missing-image",         # image pull failure (bad rollout)
    "hotel-rate-memory-limit-oom",        # OOMKilled under a too-small memory limit
]


@pytest.mark.parametrize("name", RESOLVED_BY_EVIDENCE)
def test_evidence_following_model_resolves_incident(name: str, llm_helpers: Any, record_property: Any) -> None:
    model = EvidenceFollowingModel()
    r = run_scenario(llm_helpers.SCENARIOS / f"{name}.yaml", policy="llm",
                     context=Context(policy="llm", chat_model=model))
    record_property("llm_prompt_tokens", r["llm_prompt_tokens"])
    assert r["policy"] == "llm"
    assert r["detected"] and r["outcome"] == "resolved", r
    assert r["mitigated"], r["oracle"]
    assert r["tnr_violations"] == 0
    assert r["llm_calls"] > 0 and r["llm_calls"] == model.calls
    assert r["llm_tokens"] > r["llm_prompt_tokens"] > 0
    assert r["llm_prompt_tokens"] < 20_000


# The runbooks of these classes need the analyzers' facts (which NetworkPolicy, which chaos object);
# an LLM hypothesis for the same (class, component) must carry them, or Mitigation gets no suggestion.
@pytest.mark.parametrize("name", ["hotel-user-network-policy-block", "hotel-user-pod-failure",
                                  "hotel-geo-network-delay"])
def test_evidence_following_model_resolves_fact_dependent_incident(name: str, llm_helpers: Any) -> None:
    r = run_scenario(llm_helpers.SCENARIOS / f"{name}.yaml", policy="llm",
                     context=Context(policy="llm", chat_model=EvidenceFollowingModel()))
    assert r["outcome"] == "resolved" and r["mitigated"], (r["actions"], r["oracle"])
    assert r["rollbacks"] == 0, r["actions"]


# --- 2. a harmful LLM fix is undone by TNR, then a correct one resolves ------------------------
HARMFUL = {
    "scale-entry-to-zero": f"kubectl scale deployment/frontend -n {NS} --replicas=0",
    "wrong-target-port": f"kubectl patch service frontend -n {NS} --type=json "
                         "-p '[{\"op\":\"replace\",\"path\":\"/spec/ports/0/targetPort\",\"value\":9999}]'",
}


def _harmful_then_correct(llm_helpers: Any, harmful: str, port: int, prompts_seen: list[str]) -> ScriptedChatModel:
    """Diagnosis answers right; Mitigation first submits ``harmful``, then (told it was tried) the fix."""

    def script(messages: list[BaseMessage]) -> AIMessage:
        agent = llm_helpers.agent_of(messages)
        n = llm_helpers.turn_index(messages)
        if agent == "diagnosis":
            return tool_call("submit_diagnosis", {
                "root_cause_component": "geo", "fault_class": "service_port_mismatch",
                "system_level": "Virtualization", "fault_type": "Misconfiguration", "confidence": 0.7,
                "summary": "callers of geo cannot connect",
                "evidence": [{"claim": "geo is unreachable", "evidence": ["E1"]}]}, f"d{n}")
        if agent == "mitigation":
            human = llm_helpers.first_human(messages)
            prompts_seen.append(human)
            if "Already tried" not in human:
                cmds = [{"kubectl": harmful, "expected_effect": "stop the failing traffic"}]
            else:
                patch = json.dumps([{"op": "replace", "path": "/spec/ports/0/targetPort", "value": port}])
                cmds = [{"kubectl": f"kubectl patch service geo -n {NS} --type=json -p '{patch}'",
                         "expected_effect": "geo's Service reaches its pods"}]
            return tool_call("submit_plan", {"commands": cmds, "rationale": "scripted"}, f"p{n}")
        return _follow(messages)

    return ScriptedChatModel(script=[script])


def _geo_port(world: Any) -> int:
    # the port geo listens on, read from its Deployment as an operator would (the fault is in the Service)
    return int(world.store.get("Deployment", "geo", NS)["spec"]["template"]["spec"]["containers"][0]["ports"][0][
        "containerPort"])


@pytest.mark.parametrize("which", sorted(HARMFUL))
def test_harmful_plan_is_undone_then_correct_plan_resolves(which: str, llm_helpers: Any) -> None:
    f = llm_helpers.faulted("hotel-geo-service-target-port")
    # let the incident reach a steady state, so the baseline window measures noise, not the fault onset
    f.world.advance(180.0)
    alerts = [a for a in f.world.firing() if a["labels"].get("alertname") != "Watchdog"]
    frontend_before = f.cluster.get("Deployment", "frontend", NS)["spec"]
    frontend_svc_before = f.cluster.get("Service", "frontend", NS)["spec"]["ports"]
    human_prompts: list[str] = []
    model = _harmful_then_correct(llm_helpers, HARMFUL[which], _geo_port(f.world), human_prompts)

    result = invoke_graph(alerts, cluster=f.cluster, context=_llm_ctx(model))

    assert len(result.transactions) == 2, [(t["kubectl"], t["status"], t["verdict"]) for t in result.transactions]
    first, second = result.transactions
    assert first["kubectl"] == [render(parse(HARMFUL[which]))]
    assert first["status"] == "undone" and first["verdict"] == "regression", first["verdict_reason"]
    assert first["health_after"]["H"] < first["health_before"]["H"] - first["eps"]
    assert first["restore_ok"] is True and "verified" in result.reflections[0]
    assert "geo" in second["kubectl"][0] and second["status"] == "committed" and second["verdict"] == "commit"
    # the undone plan was fed back to the Mitigation agent as already tried
    assert len(human_prompts) == 2 and "Already tried" in human_prompts[1]
    assert result.outcome == "resolved" and not result.tnr_violation
    assert result.root_cause and result.root_cause["component"] == "geo"
    # the undo restored the harmed objects exactly where it matters
    assert f.cluster.get("Deployment", "frontend", NS)["spec"]["replicas"] == frontend_before["replicas"]
    assert f.cluster.get("Service", "frontend", NS)["spec"]["ports"] == frontend_svc_before
    assert result.health_final is not None and result.health_final > first["health_before"]["H"]


def _harm_at_bench_detection(llm_helpers: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    """The bench's own timing: the agent starts as soon as alerts fire, while the incident still evolves."""
    model = _harmful_then_correct(llm_helpers, HARMFUL["scale-entry-to-zero"],
                                  _geo_port(llm_helpers.faulted("hotel-geo-service-target-port").world), [])
    updates: list[tuple[str, dict[str, Any]]] = []
    r = run_scenario(llm_helpers.SCENARIOS / "hotel-geo-service-target-port.yaml", policy="llm",
                     context=Context(policy="llm", chat_model=model), on_update=lambda n, u: updates.append((n, u)))
    return r, _transactions(updates)[0]


# Regression guard: eps measured over a window that contains the fault's onset used to be ~0.6 (larger
# than the incident's whole H drop), so a harmful change right after detection was not a regression.
def test_harmful_plan_right_after_detection_is_a_regression(llm_helpers: Any) -> None:
    r, first = _harm_at_bench_detection(llm_helpers)
    assert r["outcome"] == "resolved" and r["mitigated"] and first["status"] == "undone"
    assert first["eps"] < 0.1, f"eps {first['eps']} is larger than the incident's whole H drop"
    assert first["verdict"] == "regression", first["verdict_reason"]
    assert first["health_restored"]["H"] >= first["health_before"]["H"] - first["eps"]


def test_exact_restore_right_after_detection_is_verified(llm_helpers: Any) -> None:
    _r, first = _harm_at_bench_detection(llm_helpers)
    assert abs(first["health_restored"]["H"] - first["health_before"]["H"]) < 1e-3
    assert first["restore_ok"] is True


# --- 3. claims that cite no tool result are dropped --------------------------------------------
def test_claims_without_tool_results_are_dropped(llm_helpers: Any) -> None:
    f = llm_helpers.faulted("hotel-geo-service-target-port")

    def script(messages: list[BaseMessage]) -> AIMessage:
        return tool_call("submit_diagnosis", {
            "root_cause_component": "geo", "fault_class": "service_port_mismatch",
            "system_level": "Virtualization", "fault_type": "Misconfiguration", "confidence": 0.9,
            "summary": "geo's Service targets the wrong port",
            "evidence": [{"claim": "the analyzers flag geo's Service", "evidence": ["E1"]},
                         {"claim": "a hallucinated log line", "evidence": ["nonexistent"]}]}, "d1")

    policy = LLMPolicy(_llm_ctx(ScriptedChatModel(script=[script])))
    _findings, hyps, _view = policy.diagnose(f.cluster, f.namespace)
    main = hyps[0]
    assert (main.component, main.fault_class, main.data["source"]) == ("geo", "service_port_mismatch", "llm")
    assert main.data["claims"] == [{"claim": "the analyzers flag geo's Service", "evidence": ["E1"]}]
    assert main.data["dropped_claims"] == 1
    assert main.evidence == ["E1"]


def test_claim_citing_a_real_tool_call_is_kept_and_partial_citation_dropped(llm_helpers: Any) -> None:
    f = llm_helpers.faulted("hotel-geo-service-target-port")

    def script(messages: list[BaseMessage]) -> AIMessage:
        if llm_helpers.turn_index(messages) == 0:
            return tool_call("list_objects", {"kind": "Service"}, "svc-listing")
        return tool_call("submit_diagnosis", {
            "root_cause_component": "geo", "fault_class": "service_port_mismatch",
            "system_level": "Virtualization", "fault_type": "Misconfiguration", "confidence": 0.9,
            "summary": "geo's Service targets the wrong port",
            "evidence": [{"claim": "geo's Service port mapping", "evidence": ["svc-listing"]},
                         {"claim": "half supported", "evidence": ["E1", "made-up"]},
                         {"claim": "no citation at all", "evidence": []}]}, "d2")

    model = ScriptedChatModel(script=[script])
    policy = LLMPolicy(_llm_ctx(model))
    _findings, hyps, _view = policy.diagnose(f.cluster, f.namespace)
    assert [c["evidence"] for c in hyps[0].data["claims"]] == [["svc-listing"]]
    assert hyps[0].data["dropped_claims"] == 2
    # the cited id is the one whose result the model actually saw
    seen_tool = llm_helpers.tool_messages(model.seen[-1])
    assert seen_tool[0].tool_call_id == "svc-listing" and "geo" in str(seen_tool[0].content)


# --- 4. step cap: the loop always ends ----------------------------------------------------------
def _never_stops(messages: list[BaseMessage]) -> AIMessage:
    return tool_call("list_objects", {"kind": "Pod"}, f"ls{len(messages)}")


def test_step_cap_forces_final_then_falls_back(llm_helpers: Any) -> None:
    f = llm_helpers.faulted("hotel-geo-service-target-port")
    model = ScriptedChatModel(script=[_never_stops])
    policy = LLMPolicy(_llm_ctx(model, llm_max_steps=3))
    _findings, hyps, _view = policy.diagnose(f.cluster, f.namespace)
    assert model.calls == 3 + 1
    # the last call was told to answer now; the answer never came, so the analyzers' ranking is used
    last = model.seen[-1]
    assert isinstance(last[-1], HumanMessage)
    assert last[-1].content == prompts.FORCE_FINAL.format(tool="submit_diagnosis")
    assert hyps and hyps[0].data.get("source") != "llm"
    assert hyps[0].component == "geo"
    # every tool call got its result before the next model call (a valid transcript)
    assert len(llm_helpers.tool_messages(last)) == 3


def test_step_cap_obeyed_force_gives_an_answer(llm_helpers: Any) -> None:
    f = llm_helpers.faulted("hotel-geo-service-target-port")
    force = prompts.FORCE_FINAL.format(tool="submit_diagnosis")

    def script(messages: list[BaseMessage]) -> AIMessage:
        if messages[-1].content == force:
            return tool_call("submit_diagnosis", {
                "root_cause_component": "geo", "fault_class": "service_port_mismatch",
                "system_level": "Virtualization", "fault_type": "Misconfiguration", "confidence": 0.5,
                "summary": "forced", "evidence": []}, "final")
        return _never_stops(messages)

    model = ScriptedChatModel(script=[script])
    _findings, hyps, _view = LLMPolicy(_llm_ctx(model, llm_max_steps=2)).diagnose(f.cluster, f.namespace)
    assert model.calls == 3
    assert hyps[0].data["source"] == "llm" and hyps[0].summary == "forced"


def test_step_cap_bounds_every_agent_turn_in_the_graph(llm_helpers: Any) -> None:
    f = llm_helpers.faulted("hotel-geo-service-target-port")
    model = ScriptedChatModel(script=[_never_stops])
    ctx = _llm_ctx(model, llm_max_steps=2, llm_max_steps_detect=1)
    result = invoke_graph(f.alerts, cluster=f.cluster, context=ctx)
    turns: dict[str, int] = {}
    for conv in model.seen:
        if llm_helpers.turn_index(conv) == 0:
            turns[llm_helpers.agent_of(conv)] = 0
        turns[llm_helpers.agent_of(conv)] += 1
    # detect: 1 step + forced; diagnose and mitigation: 2 steps + forced each; then escalation
    assert turns == {"detection": 2, "diagnosis": 3, "mitigation": 3}
    assert result.llm_calls == model.calls == 8
    assert result.outcome == "escalated" and result.transactions == []
    assert "Detection agent gave no answer" in result.detection_summary
    assert result.detected  # the Detection agent adds incidents, never vetoes the telemetry's


# --- 5. budgets escalate cleanly ------------------------------------------------------------------
BUDGETS = {  # knob -> (value, LLM calls made before the budget stops them, words of the reason)
    "max_llm_calls": (2, 2, "LLM call budget spent"),  # detect 1 + diagnose 1; Mitigation is refused
    "max_tokens": (50, 1, "LLM token budget spent"),  # the first call spends it; Diagnosis is refused
    "max_seconds": (0.0, 0, "time budget spent"),  # not even Detection may call
}


@pytest.mark.parametrize("knob", sorted(BUDGETS))
def test_budget_stops_llm_calls_and_escalates(knob: str, llm_helpers: Any) -> None:
    value, calls, _words = BUDGETS[knob]
    f = llm_helpers.faulted("hotel-geo-service-target-port")
    model = EvidenceFollowingModel()
    result = invoke_graph(f.alerts, cluster=f.cluster, context=_llm_ctx(model, **{knob: value}))
    assert model.calls == calls and result.llm_calls == calls
    assert result.outcome == "escalated" and result.transactions == []
    assert result.detected  # telemetry alone still shows the incident


@pytest.mark.parametrize("knob", [
    "max_llm_calls",
    pytest.param("max_tokens"),
    pytest.param("max_seconds"),
])
def test_budget_escalation_names_the_budget(knob: str, llm_helpers: Any) -> None:
    value, _calls, words = BUDGETS[knob]
    f = llm_helpers.faulted("hotel-geo-service-target-port")
    result = invoke_graph(f.alerts, cluster=f.cluster, context=_llm_ctx(EvidenceFollowingModel(), **{knob: value}))
    assert result.outcome == "escalated"
    assert words in result.summary, result.summary


# --- 6. malformed final answers: repaired once, then refused ---------------------------------------
def _geo_hypothesis() -> list[Hypothesis]:
    return [Hypothesis(component="geo", fault_class="service_port_mismatch", confidence=0.9,
                       summary="geo's Service targets the wrong port")]


def test_piped_plan_twice_is_refused(llm_helpers: Any) -> None:
    f = llm_helpers.faulted("hotel-geo-service-target-port")
    model = ScriptedChatModel(script=[lambda msgs: tool_call("submit_plan", {"commands": [{"kubectl": PIPED}]},
                                                             f"p{len(msgs)}")])
    choice = LLMPolicy(_llm_ctx(model)).next_plan(f.cluster, f.namespace, _geo_hypothesis(), {})
    assert choice is None
    assert model.calls == 2  # one repair, then the turn ends without a plan
    refusals = [m for m in llm_helpers.tool_messages(model.seen[-1]) if str(m.content).startswith("refused:")]
    assert len(refusals) == 1 and PIPED in str(refusals[0].content)


def test_bad_plan_repaired_once_is_accepted(llm_helpers: Any) -> None:
    f = llm_helpers.faulted("hotel-geo-service-target-port")
    good = f"kubectl rollout restart deployment/geo -n {NS}"
    model = ScriptedChatModel(script=[
        tool_call("submit_plan", {"commands": []}, "p1"),  # fails validation (min 1 command)
        tool_call("submit_plan", {"commands": [{"kubectl": good, "expected_effect": "fresh pods"}]}, "p2"),
    ])
    choice = LLMPolicy(_llm_ctx(model)).next_plan(f.cluster, f.namespace, _geo_hypothesis(), {})
    assert choice is not None
    assert [render(a) for a in choice.actions] == [good] and choice.expect == "fresh pods"
    assert choice.key.endswith(good) and ":llm:" in choice.key
    errors = [m for m in llm_helpers.tool_messages(model.seen[-1]) if "invalid submit_plan" in str(m.content)]
    assert len(errors) == 1


def test_invalid_diagnosis_twice_falls_back_to_analyzers(llm_helpers: Any) -> None:
    f = llm_helpers.faulted("hotel-geo-service-target-port")
    model = ScriptedChatModel(script=[lambda msgs: tool_call("submit_diagnosis", {
        "root_cause_component": "geo", "fault_class": "x", "system_level": "Kernel",  # not a level
        "fault_type": "Misconfiguration", "confidence": 7, "summary": "s"}, f"d{len(msgs)}")])
    _findings, hyps, _view = LLMPolicy(_llm_ctx(model)).diagnose(f.cluster, f.namespace)
    assert model.calls == 2
    assert hyps and all(h.data.get("source") != "llm" for h in hyps)


def test_refused_plans_never_reach_a_transaction(llm_helpers: Any) -> None:
    f = llm_helpers.faulted("hotel-geo-service-target-port")

    def script(messages: list[BaseMessage]) -> AIMessage:
        if llm_helpers.agent_of(messages) == "mitigation":
            return tool_call("submit_plan", {"commands": [{"kubectl": PIPED}]}, f"p{len(messages)}")
        return _follow(messages)

    model = ScriptedChatModel(script=[script])
    result = invoke_graph(f.alerts, cluster=f.cluster, context=_llm_ctx(model))
    assert result.outcome == "escalated" and result.transactions == []
    assert "no untried plan" in result.summary
    refused = [m for conv in model.seen for m in conv if isinstance(m, ToolMessage)
               and str(m.content).startswith("refused:")]
    assert refused
