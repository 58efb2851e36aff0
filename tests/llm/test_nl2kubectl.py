"""NL2Kubectl: the in-context examples are valid and give no scenario away, and translation is guarded,
repaired once, then refused."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from langchain_core.messages import AIMessage, HumanMessage, SystemMessage

from stratus.bench.scenarios import load_dir
from stratus.context import Context
from stratus.policies.llm import LLMPolicy, _nl2kubectl_examples
from stratus.policies.scripted import ScriptedChatModel, tool_call
from stratus.state import Hypothesis
from stratus.tools.kubectl import guard, parse, render
from stratus.twin.faults import inject, stage
from stratus.twin.world import World

NS = "test-hotel-reservation"
ALLOWED = {NS}
EXAMPLES = _nl2kubectl_examples()
SCENARIOS = Path(__file__).resolve().parents[2] / "scenarios"
VOCABULARY_KEYS = {"role", "kind"}  # Mongo role names and Kubernetes kinds are notation, not answers


def _policy(*replies: Any) -> tuple[LLMPolicy, ScriptedChatModel]:
    model = ScriptedChatModel(script=list(replies))
    return LLMPolicy(Context(policy="llm", chat_model=model)), model


def test_there_are_examples_for_the_common_verbs() -> None:
    verbs = {parse(e["kubectl"].replace("NS", NS)).verb for e in EXAMPLES}
    assert {"patch", "scale", "rollout_undo", "rollout_restart", "set_env", "set_image", "set_resources",
            "delete", "exec"} <= verbs


@pytest.mark.parametrize("example", EXAMPLES, ids=[e["intent"][:40] for e in EXAMPLES])
def test_every_example_parses_and_passes_the_guard(example: dict[str, str]) -> None:
    command = example["kubectl"].replace("NS", NS)
    action = parse(command)
    assert action.namespace in (NS, None)  # None only for cluster-scoped kinds (Node)
    assert parse(render(action)).model_dump(exclude={"reason"}) == \
        action.model_dump(exclude={"reason"})
    verdict = guard(command, allowed_namespaces=ALLOWED)
    assert verdict.allowed, verdict.reason


def _values(node: Any, key: str = "") -> set[str]:
    """Every string (3+ characters) and port-sized number in an injection record, as text."""
    if key in VOCABULARY_KEYS:
        return set()
    if isinstance(node, dict):
        return set().union(*(_values(v, k) for k, v in node.items()))
    if isinstance(node, list):
        return set().union(*(_values(v, key) for v in node))
    if isinstance(node, bool) or node is None:
        return set()
    if isinstance(node, int):
        return {str(node)} if node >= 100 else set()
    return {str(node)} if len(str(node)) >= 3 else set()


def _scenario_answers() -> dict[str, set[str]]:
    """Per scenario: its namespace, its targets and every value its injectors recorded."""
    out = {}
    for _, sc in load_dir(SCENARIOS):
        world = World(sc.app, seed=sc.seed, namespace=sc.namespace)
        values = {world.namespace}
        for f in sc.faults:
            stage(world, f.type, f.target, f.params)
        for f in sc.faults:
            values |= {f.target} | _values(inject(world, f.type, f.target, f.params))
        out[sc.id] = values - {""}
    return out


def _example_text(example: dict[str, str]) -> list[str]:
    """The intent and every value of the parsed command (not the JS or kubectl syntax around them)."""
    action = parse(example["kubectl"].replace("NS", NS)).model_dump(exclude={"namespace"})
    return [example["intent"], *sorted(_values(action))]


def test_examples_give_no_scenario_away() -> None:
    answers = _scenario_answers()
    assert len(answers) >= 40 and "geo" in answers["hotel-geo-env-misconfig"]
    leaks = []
    for example in EXAMPLES:
        texts = _example_text(example)
        for sid, values in answers.items():
            for v in values:
                pattern = re.compile(rf"(?<![A-Za-z0-9_]){re.escape(v)}(?![A-Za-z0-9_])", re.IGNORECASE)
                leaks += [f"{example['intent']!r} mentions {v!r} of {sid}" for t in texts if pattern.search(t)]
    assert not leaks, "\n".join(sorted(set(leaks)))


def test_examples_are_shown_with_the_real_namespace() -> None:
    policy, model = _policy(AIMessage(content=f"kubectl rollout restart deployment/geo -n {NS}"))
    policy._nl2kubectl("restart geo", NS, ALLOWED)
    system = model.seen[0][0]
    assert isinstance(system, SystemMessage)
    assert f"-n {NS}" in str(system.content) and " -n NS " not in str(system.content)
    assert str(system.content).count("intent:") == len(EXAMPLES)
    assert model.seen[0][-1].content == "intent: restart geo\nkubectl:"


@pytest.mark.parametrize("reply", [
    f"kubectl scale deployment/rate -n {NS} --replicas=1",
    f"`kubectl scale deployment/rate -n {NS} --replicas=1`",
    f"```bash\nkubectl scale deployment/rate -n {NS} --replicas=1\n```",
    f"  kubectl scale deployment rate --replicas=1 -n {NS}\n",
])
def test_returns_the_guarded_command(reply: str) -> None:
    policy, model = _policy(AIMessage(content=reply))
    out = json.loads(policy._nl2kubectl("run one replica of rate", NS, ALLOWED))
    assert out == {"kubectl": f"kubectl scale deployment/rate -n {NS} --replicas=1"}
    assert model.calls == 1


def test_repairs_once_after_a_refused_reply() -> None:
    policy, model = _policy(AIMessage(content=f"kubectl delete deployment rate -n {NS}"),
                            AIMessage(content=f"kubectl rollout restart deployment/rate -n {NS}"))
    out = json.loads(policy._nl2kubectl("make rate start over", NS, ALLOWED))
    assert out == {"kubectl": f"kubectl rollout restart deployment/rate -n {NS}"}
    assert model.calls == 2
    repair = model.seen[1][-1]
    assert isinstance(repair, HumanMessage) and "refused" in str(repair.content)
    assert "Deployment" in str(repair.content)  # the guard's reason is passed on
    assert model.seen[1][-2].content == f"kubectl delete deployment rate -n {NS}"


def test_refuses_after_the_second_bad_reply() -> None:
    policy, model = _policy(AIMessage(content="kubectl get pods | sh"),
                            AIMessage(content="kubectl scale deployment/rate -n other-ns --replicas=1"),
                            AIMessage(content=f"kubectl scale deployment/rate -n {NS} --replicas=1"))
    out = json.loads(policy._nl2kubectl("run one replica of rate", NS, ALLOWED))
    assert model.calls == 2  # never a third try
    assert "out of scope" in out["refused"] and out["kubectl"].endswith("-n other-ns --replicas=1")
    assert "kubectl" not in out or not guard(out["kubectl"], allowed_namespaces=ALLOWED).allowed


def test_empty_reply_is_refused_not_crashed() -> None:
    policy, model = _policy(AIMessage(content=""), AIMessage(content="   "))
    out = json.loads(policy._nl2kubectl("do something", NS, ALLOWED))
    assert out["refused"] and model.calls == 2


def test_mitigation_agent_uses_the_nl2kubectl_tool(llm_helpers: Any) -> None:
    """The Mitigation agent calls the tool, gets a guarded command back and submits it."""
    f = llm_helpers.faulted("hotel-rate-scale-to-zero")
    translated: dict[str, str] = {}

    def script(messages: list[Any]) -> AIMessage:
        agent, n = llm_helpers.agent_of(messages), llm_helpers.turn_index(messages)
        if agent == "nl2kubectl":
            return AIMessage(content=f"kubectl scale deployment rate --replicas=1 -n {NS}")
        if n == 0:
            return tool_call("nl2kubectl", {"intent": "run one replica of deployment rate again"}, "nl")
        result = json.loads(str(llm_helpers.tool_messages(messages)[-1].content))
        translated.update(result)
        return tool_call("submit_plan", {"commands": [{"kubectl": result["kubectl"]}]}, "plan")

    model = ScriptedChatModel(script=[script])
    policy = LLMPolicy(Context(policy="llm", chat_model=model))
    hyp = Hypothesis(component="rate", fault_class="scaled_to_zero", confidence=0.9, summary="rate has 0 replicas")
    choice = policy.next_plan(f.cluster, f.namespace, [hyp], {})
    assert choice is not None
    assert translated == {"kubectl": f"kubectl scale deployment/rate -n {NS} --replicas=1"}
    assert [render(a) for a in choice.actions] == [translated["kubectl"]]
    assert policy.budget.calls == 3  # the translation is a model call of the same budget
