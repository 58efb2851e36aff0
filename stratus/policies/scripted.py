"""Scripted chat models for tests and offline measurements (no network, no weights).

``ScriptedChatModel`` replays a list of AIMessages (or callables of the conversation) and supports
``bind_tools`` / ``with_structured_output`` so it can stand in for ChatOpenAI in the agents' loops.
``EvidenceFollowingModel`` follows the cheapest correct path a capable model would take from the
evidence STRATUS puts in the prompt: it answers Detection from the firing alerts, Diagnosis from the
first critical finding, and Mitigation with the first runbook suggestion. It is used to measure the
prompt size of the evidence-first prompts, not to score diagnosis quality.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Callable, Sequence
from typing import Any

from langchain_core.callbacks import CallbackManagerForLLMRun
from langchain_core.language_models.chat_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, SystemMessage
from langchain_core.outputs import ChatGeneration, ChatResult

Step = AIMessage | Callable[[list[BaseMessage]], AIMessage]


def tool_call(name: str, args: dict[str, Any], call_id: str | None = None) -> AIMessage:
    """An AIMessage that calls one tool."""
    return AIMessage(content="", tool_calls=[{"name": name, "args": args, "id": call_id or f"call_{name}",
                                              "type": "tool_call"}])


class ScriptedChatModel(BaseChatModel):
    """Replays scripted replies in order; the last one repeats when the script runs out."""

    script: list[Any]
    calls: int = 0
    seen: list[list[BaseMessage]] = []

    @property
    def _llm_type(self) -> str:
        return "scripted"

    def bind_tools(self, tools: Sequence[Any], **kwargs: Any) -> "ScriptedChatModel":
        return self

    def _generate(self, messages: list[BaseMessage], stop: list[str] | None = None,
                  run_manager: CallbackManagerForLLMRun | None = None, **kwargs: Any) -> ChatResult:
        self.seen.append(list(messages))
        step = self.script[min(self.calls, len(self.script) - 1)]
        self.calls += 1
        msg = step(messages) if callable(step) else step
        return ChatResult(generations=[ChatGeneration(message=msg)])


_CALLER = re.compile(r'^Call graph \(caller -> dependencies\): \{"([\w.-]+)"', re.M)
_RANKED = re.compile(r"^H1 (?P<cls>\w+) @ (?P<comp>[\w.-]+) \(score [\d.]+; evidence (?P<ids>[^)]*)\)", re.M)
_SUGGESTION = re.compile(r"^- for (?P<cls>\w+) at (?P<comp>[\w.-]+): (?P<cmds>.+?)  \(expect: ", re.M)


def _system(messages: list[BaseMessage]) -> str:
    return next((str(m.content) for m in messages if isinstance(m, SystemMessage)), "")


def _first_human(messages: list[BaseMessage]) -> str:
    return next((str(m.content) for m in messages if isinstance(m, HumanMessage)), "")


def _split_commands(cmds: str) -> list[str]:
    out: list[str] = []
    cur: list[str] = []
    for tok in shlex.split(cmds, posix=False):
        if tok == "&&":
            out.append(" ".join(cur))
            cur = []
        else:
            cur.append(tok)
    if cur:
        out.append(" ".join(cur))
    return out


def follow_evidence(messages: list[BaseMessage], classes: dict[str, Any]) -> AIMessage:
    system, human = _system(messages), _first_human(messages)
    n = sum(1 for m in messages if isinstance(m, AIMessage))
    if "Detection agent" in system:
        firing = "no alerts firing" not in human
        return tool_call("submit_detection", {"incident": firing or "unhealthy=[]" not in human,
                                              "summary": "alerts and health show an open incident" if firing
                                              else "nothing abnormal", "evidence": []}, f"det{n}")
    if "Diagnosis agent" in system:
        m = _RANKED.search(human)
        # with nothing ranked, it names the call graph's first caller: a diagnosis must name a component
        first = _CALLER.search(human)
        comp, cls = (m.group("comp"), m.group("cls")) if m else (first.group(1) if first else "unknown",
                                                                  "unavailable")
        ids = [i.strip() for i in (m.group("ids") if m else "").split(",") if i.strip().startswith("E")]
        level, ftype = classes.get(cls, {}).get("labels", ["Application", "Misconfiguration"])
        return tool_call("submit_diagnosis", {
            "root_cause_component": comp, "fault_class": cls, "system_level": level, "fault_type": ftype,
            "confidence": 0.8, "summary": f"{cls} at {comp}",
            "evidence": [{"claim": f"the analyzers' top finding points at {comp}", "evidence": ids[:2]}]},
            f"diag{n}")
    if "Mitigation agent" in system:
        m = _SUGGESTION.search(human)
        if not m:
            return tool_call("submit_plan", {"commands": [{"kubectl": "kubectl get pods"}]}, f"plan{n}")
        cmds = [{"kubectl": c, "expected_effect": "removes the root cause"} for c in _split_commands(m.group("cmds"))]
        return tool_call("submit_plan", {"commands": cmds[:3], "rationale": "runbook"}, f"plan{n}")
    return AIMessage(content="kubectl get pods")


class EvidenceFollowingModel(ScriptedChatModel):
    """Follows the evidence in STRATUS's prompts (see the module docstring)."""

    script: list[Any] = []

    def _generate(self, messages: list[BaseMessage], stop: list[str] | None = None,
                  run_manager: CallbackManagerForLLMRun | None = None, **kwargs: Any) -> ChatResult:
        from stratus.policies.rules import runbook_data

        self.seen.append(list(messages))
        self.calls += 1
        return ChatResult(generations=[ChatGeneration(message=follow_evidence(messages, runbook_data()["classes"]))])
