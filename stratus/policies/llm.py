"""The LLM policy: Detection, Diagnosis and Mitigation as bounded tool-calling loops on a chat model.

A ``Policy`` (``stratus.policies.base``) like ``RulesPolicy``, so the graph (TNR, undo, retries) is unchanged. The model starts from
the analyzers' findings (evidence first), investigates with read-only, bounded, redacted tools, and
answers through a final-answer tool validated by pydantic. Plans are kubectl commands that must pass
``kubectl.parse`` and the guard. Every loop is capped (steps, calls, tokens, seconds) and ends with
a forced final answer; spent budgets raise ``BudgetExceeded`` so the graph escalates cleanly.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from functools import cache
from pathlib import Path
from typing import Any, Literal

import yaml
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, SystemMessage, ToolMessage
from langchain_core.messages.utils import count_tokens_approximately
from langchain_core.tools import StructuredTool
from pydantic import BaseModel, Field, ValidationError
from tenacity import retry, retry_if_exception, stop_after_attempt, wait_random_exponential

from stratus.cluster.actions import Action
from stratus.cluster.base import Cluster
from stratus.context import Context
from stratus.policies import prompts
from stratus.policies.base import PolicyStop
from stratus.policies.rules import RulesPolicy, runbook_data
from stratus.state import Finding, Hypothesis, Plan, TriedPlans
from stratus.tools import telemetry as tt
from stratus.tools.analyzers import View
from stratus.tools.kubectl import GuardError, guard, parse, render

LEVELS = ("Hardware", "Operating System", "Virtualization", "Application")
TYPES = ("Misconfiguration", "Code Defect", "Authentication Issue", "Network/Storage Issue", "Operation Error",
         "Dependency Problem")


class LLMStop(PolicyStop):
    """The LLM cannot go on for this incident; the graph escalates with this message."""


class BudgetExceeded(LLMStop):
    """The incident's LLM budget (calls, tokens or seconds) is spent."""


class LLMCallFailed(LLMStop):
    """The model endpoint failed (after retries for transient errors, at once for others)."""


class LLMUnavailable(RuntimeError):
    """The chat model could not be configured or reached (the message says what to set)."""


# --- structured outputs ----------------------------------------------------------------------
class Claim(BaseModel):
    claim: str
    evidence: list[str] = Field(default_factory=list, description="ids of tool calls or evidence items (E1..)")


class Candidate(BaseModel):
    component: str
    fault_class: str
    confidence: float = Field(ge=0, le=1)


class submit_detection(BaseModel):  # noqa: N801 - the tool name the model sees
    """Final answer of the Detection agent."""

    incident: bool
    summary: str
    evidence: list[str] = Field(default_factory=list)


class submit_diagnosis(BaseModel):  # noqa: N801
    """Final answer of the Diagnosis agent."""

    root_cause_component: str
    fault_class: str
    system_level: Literal["Hardware", "Operating System", "Virtualization", "Application"]
    fault_type: Literal["Misconfiguration", "Code Defect", "Authentication Issue", "Network/Storage Issue",
                        "Operation Error", "Dependency Problem"]
    confidence: float = Field(ge=0, le=1)
    summary: str
    evidence: list[Claim] = Field(default_factory=list)
    alternatives: list[Candidate] = Field(default_factory=list, max_length=3)


class PlannedCommand(BaseModel):
    kubectl: str
    expected_effect: str = ""


class submit_plan(BaseModel):  # noqa: N801
    """Final answer of the Mitigation agent: one to three kubectl commands, run as one transaction."""

    commands: list[PlannedCommand] = Field(min_length=1, max_length=3)
    rationale: str = ""


# --- model, budget, retries ------------------------------------------------------------------
def make_chat_model(ctx: Context) -> Any:
    """ChatOpenAI / AzureChatOpenAI from the context and env; imported lazily (it is slow to import)."""
    key = os.environ.get(ctx.api_key_env)
    if os.environ.get("AZURE_OPENAI_ENDPOINT") and not ctx.base_url:
        from langchain_openai import AzureChatOpenAI

        return AzureChatOpenAI(azure_deployment=ctx.model, api_key=key,
                               api_version=os.environ.get("OPENAI_API_VERSION", "2024-10-21"),
                               temperature=ctx.temperature, timeout=ctx.llm_timeout_s, max_retries=0)
    if not key and not ctx.base_url:
        raise LLMUnavailable(f"the llm policy needs an API key in ${ctx.api_key_env}, or STRATUS_BASE_URL "
                             "pointing at an OpenAI-compatible server (vLLM, Ollama, llama.cpp)")
    from langchain_openai import ChatOpenAI

    return ChatOpenAI(model=ctx.model, base_url=ctx.base_url, api_key=key or "not-needed",
                      temperature=ctx.temperature, timeout=ctx.llm_timeout_s, max_retries=0)


def _transient(exc: BaseException) -> bool:
    """Rate limits, 5xx, timeouts and dropped connections are retried; other errors are not."""
    try:
        import openai
    except ImportError:  # pragma: no cover - langchain-openai depends on openai
        return False
    if isinstance(exc, (openai.RateLimitError, openai.APITimeoutError, openai.APIConnectionError,
                        openai.InternalServerError)):
        return True
    return isinstance(exc, openai.APIStatusError) and exc.status_code >= 500


def _api_error(exc: BaseException) -> bool:
    try:
        import openai
    except ImportError:  # pragma: no cover
        return False
    return isinstance(exc, openai.APIError)


class Budget:
    def __init__(self, ctx: Context, calls: int = 0, tokens: int = 0, prompt_tokens: int = 0,
                 started: float | None = None) -> None:
        self.ctx = ctx
        self.calls, self.tokens, self.prompt_tokens = calls, tokens, prompt_tokens
        self.started = started if started is not None else time.time()

    def check(self) -> None:
        if self.calls >= self.ctx.max_llm_calls:
            raise BudgetExceeded(f"LLM call budget spent ({self.calls}/{self.ctx.max_llm_calls} calls)")
        if self.tokens >= self.ctx.max_tokens:
            raise BudgetExceeded(f"LLM token budget spent ({self.tokens}/{self.ctx.max_tokens} tokens)")
        if time.time() - self.started >= self.ctx.max_seconds:
            raise BudgetExceeded(f"time budget spent ({self.ctx.max_seconds:.0f} s)")

    def record(self, sent: list[BaseMessage], reply: AIMessage) -> None:
        usage = getattr(reply, "usage_metadata", None) or {}
        prompt = usage.get("input_tokens")
        completion = usage.get("output_tokens")
        if prompt is None:
            prompt = count_tokens_approximately(sent)
        if completion is None:
            completion = count_tokens_approximately([reply])
        self.calls += 1
        self.prompt_tokens += int(prompt)
        self.tokens += int(prompt) + int(completion)


@cache
def _nl2kubectl_examples() -> list[dict[str, str]]:
    return yaml.safe_load((Path(__file__).parent / "nl2kubectl.yaml").read_text())["examples"]


# --- the policy ------------------------------------------------------------------------------
class LLMPolicy:
    name = "llm"
    plans_need_review = True

    def __init__(self, ctx: Context, usage: dict[str, Any] | None = None) -> None:
        usage = usage or {}
        self.ctx = ctx
        self.model = ctx.chat_model if ctx.chat_model is not None else make_chat_model(ctx)
        self.budget = Budget(ctx, int(usage.get("llm_calls", 0)), int(usage.get("llm_tokens", 0)),
                             int(usage.get("llm_prompt_tokens", 0)), usage.get("llm_started"))
        self.rules = RulesPolicy()
        self.results: dict[str, str] = {}  # tool-call id (or evidence id) -> result text
        self.dropped_claims = 0

    def usage(self) -> dict[str, Any]:
        return {"llm_calls": self.budget.calls, "llm_tokens": self.budget.tokens,
                "llm_prompt_tokens": self.budget.prompt_tokens, "llm_started": self.budget.started}

    # --- the model call ---------------------------------------------------------------------
    def _invoke(self, bound: Any, messages: list[BaseMessage]) -> AIMessage:
        self.budget.check()

        @retry(retry=retry_if_exception(_transient), stop=stop_after_attempt(self.ctx.llm_retries + 1),
               wait=wait_random_exponential(multiplier=self.ctx.llm_backoff_s, max=20), reraise=True)
        def call() -> AIMessage:
            return bound.invoke(messages)

        try:
            reply = call()
        except Exception as exc:
            if _api_error(exc):
                tries = self.ctx.llm_retries + 1 if _transient(exc) else 1
                raise LLMCallFailed(f"the model endpoint failed after {tries} attempt(s): "
                                    f"{type(exc).__name__}: {str(exc)[:200]}") from exc
            raise
        self.budget.record(messages, reply)
        return reply

    # --- tools ------------------------------------------------------------------------------
    def _read_tools(self, cluster: Cluster, ns: str) -> list[StructuredTool]:
        def t(fn: Callable[..., str], name: str, doc: str) -> StructuredTool:
            return StructuredTool.from_function(fn, name=name, description=doc)

        def list_objects(kind: str, selector: dict[str, str] | None = None) -> str:
            return tt.list_objects(cluster, kind, ns, selector)

        def get_object(kind: str, name: str) -> str:
            return tt.get_object(cluster, kind, name, ns)

        def describe(kind: str, name: str) -> str:
            return tt.describe(cluster, kind, name, ns)

        def events(name: str | None = None, warnings_only: bool = True, since_minutes: float = 15) -> str:
            return tt.events(cluster, ns, since_minutes * 60, name, warnings_only)

        def pod_logs(pod: str, grep: str | None = None, tail: int = 50, previous: bool = False) -> str:
            return tt.pod_logs(cluster, pod, ns, grep, min(tail, 200), previous)

        def promql(query: str) -> str:
            return tt.promql(cluster, query)

        def promql_range(query: str, minutes: float = 15, step_seconds: float = 60) -> str:
            return tt.promql_range(cluster, query, minutes, step_seconds)

        def traces(service: str | None = None, minutes: float = 5) -> str:
            return tt.trace_summary(cluster, service, minutes)

        def alerts() -> str:
            return tt.firing_alerts(cluster, ns)

        return [
            t(list_objects, "list_objects", "List objects of a kind (Pod, Deployment, Service, NetworkPolicy, "
                                            "PodChaos, NetworkChaos, ReplicaSet, Endpoints ...) with status."),
            t(get_object, "get_object", "One object's manifest as YAML (secrets redacted)."),
            t(describe, "describe", "An object's manifest and its recent events."),
            t(events, "events", "Recent events in the namespace, optionally for one object name."),
            t(pod_logs, "pod_logs", "A pod's recent log lines; `grep` is a case-insensitive regex filter; "
                                    "`previous` reads the last crashed container."),
            t(promql, "promql", "Instant PromQL query (kube-state-metrics, cAdvisor, traces_span_metrics_*)."),
            t(promql_range, "promql_range", "Range PromQL query summarised per series (first/min/max/last)."),
            t(traces, "traces", "Recent traces summarised as an error call graph (caller -> callee)."),
            t(alerts, "alerts", "Alerts firing in the namespace."),
        ]

    def _loop(self, system: str, human: str, tools: list[StructuredTool], final: type[BaseModel],
              max_steps: int, validate: Callable[[BaseModel], str | None] | None = None) -> BaseModel | None:
        """A bounded tool-calling loop that always ends: a final answer, or None at the cap."""
        by_name = {tool.name: tool for tool in tools}
        messages: list[BaseMessage] = [SystemMessage(system), HumanMessage(human)]
        fname = final.__name__
        bound = self.model.bind_tools([*tools, final])
        forced = self._bind_forced(final)
        repairs = 0
        for step in range(max_steps + 1):
            last = step == max_steps
            if last:
                messages.append(HumanMessage(prompts.FORCE_FINAL.format(tool=fname)))
            reply = self._invoke(forced if last else bound, messages)
            messages.append(reply)
            calls = list(reply.tool_calls or [])
            for bad in getattr(reply, "invalid_tool_calls", None) or []:
                messages.append(ToolMessage(f"error: the arguments of {bad.get('name')} are not valid JSON "
                                            f"({bad.get('error') or 'unparseable'}); call it again with valid "
                                            f"JSON arguments", tool_call_id=bad.get("id") or "invalid"))
                repairs += 1
            if not calls and not getattr(reply, "invalid_tool_calls", None):
                messages.append(HumanMessage(prompts.NUDGE_FINAL.format(tool=fname)))
                continue
            answer = None
            for call in calls:
                cid = call.get("id") or f"call-{len(self.results) + 1}"
                if call["name"] == fname:
                    try:
                        parsed = final.model_validate(call.get("args") or {})
                    except ValidationError as exc:
                        repairs += 1
                        messages.append(ToolMessage(f"error: invalid {fname}: {exc.errors()[:3]}", tool_call_id=cid))
                        continue
                    problem = validate(parsed) if validate else None
                    if problem:
                        repairs += 1
                        messages.append(ToolMessage(f"refused: {problem}", tool_call_id=cid))
                        continue
                    answer = parsed
                    messages.append(ToolMessage("accepted", tool_call_id=cid))
                    continue
                tool = by_name.get(call["name"])
                if tool is None:
                    result = f"error: no tool named {call['name']!r}; available: {', '.join(by_name)}, {fname}"
                else:
                    try:
                        result = str(tool.invoke(call.get("args") or {}))
                    except Exception as exc:  # a bad argument is the model's to fix, not a crash
                        result = f"error: {type(exc).__name__}: {str(exc)[:300]}"
                self.results[cid] = result
                messages.append(ToolMessage(result, tool_call_id=cid))
            if answer is not None:
                return answer
            if repairs > self.ctx.llm_max_repairs:
                return None
        return None

    def _bind_forced(self, final: type[BaseModel]) -> Any:
        try:
            return self.model.bind_tools([final], tool_choice=final.__name__)
        except (TypeError, ValueError, NotImplementedError):
            return self.model.bind_tools([final])

    # --- evidence ---------------------------------------------------------------------------
    def _evidence(self, cluster: Cluster, ns: str) -> tuple[str, list[Finding], list[Hypothesis], View]:
        findings, hyps, view = self.rules.diagnose(cluster, ns)
        order = {"critical": 0, "warning": 1, "info": 2}
        rank: dict[str, int] = {}
        for i, h in enumerate(hyps):
            rank.setdefault(h.component, i)
        findings.sort(key=lambda f: (rank.get(f.component or "", len(hyps)), order.get(f.severity, 3)))
        lines: list[str] = []
        ids_of: dict[str | None, list[str]] = {}
        for i, f in enumerate(findings[: self.ctx.llm_max_evidence], 1):
            eid = f"E{i}"
            text = f"[{f.severity}] {f.signal} @ {f.component}: {tt.redact_text(f.summary)[:200]}"
            self.results[eid] = text
            ids_of.setdefault(f.component, []).append(eid)
            lines.append(f"{eid} {text}")
        if len(findings) > self.ctx.llm_max_evidence:
            lines.append(f"... {len(findings) - self.ctx.llm_max_evidence} more findings omitted")
        ranked = [f"H{i} {h.fault_class} @ {h.component} (score {h.confidence:.2f}; evidence "
                  f"{', '.join(ids_of.get(h.component, [])[:4]) or 'none'})" for i, h in enumerate(hyps[:5], 1)]
        text = "Analyzer ranking (a starting point, not the answer):\n" + ("\n".join(ranked) or "none") + \
            "\nFindings:\n" + "\n".join(lines)
        return text, findings, hyps, view

    # --- Detection --------------------------------------------------------------------------
    def confirm(self, cluster: Cluster, ns: str, alerts: list[dict[str, Any]], health: dict[str, Any]) -> \
            tuple[bool | None, str]:
        evidence = tt.firing_alerts(cluster, ns)
        human = (f"Namespace {ns}. Health: H={health.get('H')} availability={health.get('availability')} "
                 f"error_ratio={health.get('error_ratio')} p99_ms={health.get('p99_ms')} "
                 f"unhealthy={health.get('unhealthy')}\nReceived alerts: {len(alerts)}\nFiring now:\n{evidence}")
        tools = [x for x in self._read_tools(cluster, ns) if x.name in ("alerts", "promql", "list_objects")]
        ans = self._loop(prompts.DETECTION_SYSTEM, human, tools, submit_detection, self.ctx.llm_max_steps_detect)
        if ans is None:
            return None, "the Detection agent gave no answer"
        assert isinstance(ans, submit_detection)
        return ans.incident, ans.summary

    # --- Diagnosis --------------------------------------------------------------------------
    def diagnose(self, cluster: Cluster, namespace: str, reflections: list[str] | None = None) -> \
            tuple[list[Finding], list[Hypothesis], View]:
        evidence, findings, rule_hyps, view = self._evidence(cluster, namespace)
        classes = ", ".join(runbook_data()["classes"])
        system = prompts.DIAGNOSIS_SYSTEM.format(classes=classes, levels=", ".join(LEVELS), types=", ".join(TYPES))
        deps = {k: sorted(v) for k, v in view.dependencies().items()}
        human = (f"Namespace {namespace}.\nCall graph (caller -> dependencies): {json.dumps(deps)}\n"
                 f"Evidence from the analyzers:\n{evidence or 'none'}\n")
        if reflections:
            human += "Earlier attempts (do not repeat them):\n" + "\n".join(reflections[-3:]) + "\n"
        ans = self._loop(system, human, self._read_tools(cluster, namespace), submit_diagnosis,
                         self.ctx.llm_max_steps)
        if ans is None:
            return findings, rule_hyps, view  # the loop ended without an answer: fall back to the analyzers
        assert isinstance(ans, submit_diagnosis)
        claims = []
        for c in ans.evidence:
            if c.evidence and all(e in self.results for e in c.evidence):
                claims.append(c)
            else:
                self.dropped_claims += 1  # a claim that cites no tool result is not reported
        level, ftype = ans.system_level, ans.fault_type
        # the analyzers' facts about the same (component, class) let the runbooks build concrete plans
        facts = {h.key: h.data for h in rule_hyps}
        main = Hypothesis(component=ans.root_cause_component, fault_class=ans.fault_class,
                          confidence=ans.confidence, summary=ans.summary[:400],
                          evidence=[e for c in claims for e in c.evidence][:12], system_level=level,
                          fault_type=ftype)
        main.data = {**facts.get(main.key, {}), "claims": [c.model_dump() for c in claims],
                     "dropped_claims": self.dropped_claims, "source": "llm"}
        hyps = [main]
        for alt in ans.alternatives:
            labels = runbook_data()["classes"].get(alt.fault_class, {}).get("labels", [None, None])
            h = Hypothesis(component=alt.component, fault_class=alt.fault_class, confidence=alt.confidence,
                           summary="alternative from the Diagnosis agent", system_level=labels[0],
                           fault_type=labels[1])
            h.data = {**facts.get(h.key, {}), "source": "llm"}
            hyps.append(h)
        seen = {h.key for h in hyps}
        hyps += [h for h in rule_hyps if h.key not in seen][:3]
        return findings, hyps, view

    # --- Mitigation -------------------------------------------------------------------------
    def next_plan(self, cluster: Cluster, namespace: str, hypotheses: list[Hypothesis], tried: TriedPlans,
                  view: View | None = None, reflections: list[str] | None = None) -> Plan | None:
        if not hypotheses:
            return None
        view = view or View.read(cluster, namespace)
        hyp = hypotheses[0]
        suggestions = []
        tried_cmds = sorted({"|".join(commands) for commands in tried.values() if commands})
        for h in hypotheses[:3]:
            for plan in self.rules.plans(cluster, namespace, h, view):
                if plan.key not in tried and "|".join(plan.commands) not in tried_cmds:
                    suggestions.append(f"- for {h.fault_class} at {h.component}: "
                                       f"{' && '.join(render(a) for a in plan.actions)}  (expect: {plan.expect})")
        human = (f"Namespace {namespace}.\nRoot-cause hypothesis: {hyp.fault_class} at {hyp.component} "
                 f"(confidence {hyp.confidence}): {tt.redact_text(hyp.summary)}\n"
                 f"Alternatives: {[(h.component, h.fault_class, h.confidence) for h in hypotheses[1:4]]}\n"
                 f"Runbook suggestions (verified to parse; not yet tried):\n" + ("\n".join(suggestions[:6]) or "none")
                 + "\n")
        if tried_cmds:
            human += "Already tried (undone or refused; do not repeat):\n" + "\n".join(tried_cmds[-5:]) + "\n"
        if reflections:
            human += "Reflections:\n" + "\n".join(reflections[-3:]) + "\n"
        allowed = {namespace, *self.ctx.namespaces}

        def check_kubectl(command: str) -> str:
            v = guard(command, allowed_namespaces=allowed)
            return json.dumps({"allowed": v.allowed, "reason": v.reason, "kubectl": v.kubectl})

        def nl2kubectl(intent: str) -> str:
            return self._nl2kubectl(intent, namespace, allowed)

        tools = self._read_tools(cluster, namespace) + [
            StructuredTool.from_function(check_kubectl, name="check_kubectl",
                                         description="Parse and guard one kubectl command; says why if refused."),
            StructuredTool.from_function(nl2kubectl, name="nl2kubectl",
                                         description="Turn one intent (plain English) into one kubectl command."),
        ]

        def validate(plan: BaseModel) -> str | None:
            assert isinstance(plan, submit_plan)
            for cmd in plan.commands:
                v = guard(cmd.kubectl, allowed_namespaces=allowed)
                if not v.allowed:
                    return f"{cmd.kubectl!r}: {v.reason}"
            if self._plan(hyp, plan, []).key in tried:
                return "this exact plan was already tried and undone; propose a different one"
            return None

        ans = self._loop(prompts.MITIGATION_SYSTEM, human, tools, submit_plan, self.ctx.llm_max_steps,
                         validate=validate)
        if ans is None:
            return None
        assert isinstance(ans, submit_plan)
        actions = []
        for cmd in ans.commands:
            a = parse(cmd.kubectl)
            a.namespace = a.namespace or namespace
            a.reason = cmd.expected_effect[:200]
            actions.append(a)
        return self._plan(hyp, ans, actions)

    @staticmethod
    def _plan(hyp: Hypothesis, plan: submit_plan, actions: list[Action]) -> Plan:
        """The model's plan, identified by its commands as the parser renders them (as typed if refused)."""
        cmds = []
        for c in plan.commands:
            try:
                cmds.append(render(parse(c.kubectl)))
            except GuardError:
                cmds.append(c.kubectl)
        expect = "; ".join(c.expected_effect for c in plan.commands if c.expected_effect) or plan.rationale
        return Plan(hypothesis=hyp, actions=actions, expect=expect, commands=cmds)

    def _nl2kubectl(self, intent: str, namespace: str, allowed: set[str]) -> str:
        examples = "\n".join(f"intent: {e['intent']}\nkubectl: {e['kubectl'].replace('NS', namespace)}"
                             for e in _nl2kubectl_examples())
        messages: list[BaseMessage] = [SystemMessage(prompts.NL2KUBECTL_SYSTEM.format(namespace=namespace,
                                                                                     examples=examples)),
                                       HumanMessage(f"intent: {intent}\nkubectl:")]
        for attempt in range(2):  # one repair, then refuse
            reply = self._invoke(self.model, messages)
            text = str(reply.content).strip().strip("`").strip()
            text = text.removeprefix("bash").strip().splitlines()[0] if text else ""
            v = guard(text, allowed_namespaces=allowed)
            if v.allowed:
                return json.dumps({"kubectl": v.kubectl})
            if attempt == 0:
                messages += [reply, HumanMessage(f"That command was refused: {v.reason}. Reply with one valid "
                                                 "kubectl command only.")]
        return json.dumps({"refused": v.reason, "kubectl": text})
