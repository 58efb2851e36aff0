"""The LLM policy: Detection, Diagnosis and Mitigation as bounded tool-calling loops on a chat model.

A ``Policy`` (``stratus.policies.base``) like ``RulesPolicy``, so the graph (TNR, undo, retries) is unchanged. The model starts from
the analyzers' findings (evidence first), investigates with read-only, bounded, redacted tools, and
answers through a final-answer tool validated by pydantic. Plans are kubectl commands that must pass
``kubectl.parse`` and the guard. Every loop is capped (steps, calls, tokens, seconds) and ends with
a forced final answer; spent budgets raise ``BudgetExceeded`` so the graph escalates cleanly.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from functools import cache
from pathlib import Path
from typing import Any

import yaml
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, SystemMessage, ToolMessage
from langchain_core.tools import StructuredTool
from pydantic import BaseModel, ValidationError
from tenacity import retry, retry_if_exception, stop_after_attempt, wait_random_exponential

from stratus.cluster.base import Cluster
from stratus.context import Context
from stratus.policies import prompts
from stratus.policies.llm_answers import (
    effect,
    normalized,
    submit_detection,
    submit_diagnosis,
    submit_plan,
)
from stratus.policies.llm_client import (
    Budget,
    BudgetExceeded,
    LLMCallFailed,
    LLMStop,
    LLMUnavailable,
    failure,
    is_api_error,
    is_transient,
    make_chat_model,
    recover_tool_calls,
    rejects_tool_choice,
    tool_schema,
)
from stratus.policies.rules import RulesPolicy, runbook_data
from stratus.state import Finding, Hypothesis, Plan, TriedPlans
from stratus.tools import telemetry as tt
from stratus.tools.analyzers import View
from stratus.tools.kubectl import guard, parse, render

__all__ = ["Budget", "BudgetExceeded", "LLMCallFailed", "LLMPolicy", "LLMStop", "LLMUnavailable",
           "effect", "make_chat_model", "normalized", "submit_detection", "submit_diagnosis", "submit_plan"]

MAX_TOOL_RESULT_CHARS = 4000
"""A tool result longer than this is cut (with a marker): one manifest or log page, not a dump."""
MITIGATION_READ_TOOLS = ("list_objects", "get_object", "describe", "events")
FIRST_READ = {"submit_detection": "list_objects", "submit_diagnosis": "describe", "submit_plan": "describe"}
"""With ``Context.llm_min_tool_calls``, the evidence tool each agent turn's first steps ask for by name
(the model chooses its arguments): the object list for Detection, one object and its events otherwise."""
FINAL_CHOICES = ("named", "required", "auto")
"""How the forced final step asks for the answer tool, strongest first; a server that rejects one as
invalid gets the next (``Context.llm_final_choice`` says where to start)."""


@cache
def _nl2kubectl_examples() -> list[dict[str, str]]:
    return yaml.safe_load((Path(__file__).parent / "nl2kubectl.yaml").read_text())["examples"]


# --- the policy ------------------------------------------------------------------------------
def known_components(view: View, hypotheses: list[Hypothesis]) -> set[str]:
    """Names a diagnosis may give as the root cause: the namespace's workloads and Services, the nodes,
    the call graph's members, and whatever the analyzers themselves blamed (a deleted workload, say)."""
    names = {o["metadata"]["name"] for o in view.deployments + view.services + view.nodes}
    names |= {n for caller, deps in view.dependencies().items() for n in (caller, *deps)}
    return names | {h.component for h in hypotheses}


class LLMPolicy:
    name = "llm"
    plans_need_review = True

    def __init__(self, ctx: Context, usage: dict[str, Any] | None = None) -> None:
        self.ctx = ctx
        self.model = ctx.chat_model if ctx.chat_model is not None else make_chat_model(ctx)
        self.budget = Budget(ctx, usage)
        self.rules = RulesPolicy(journal=ctx.journal)
        self.results: dict[str, str] = {}  # tool-call id (or evidence id) -> result text
        self.dropped_claims = 0
        self.final_choice = FINAL_CHOICES.index(ctx.llm_final_choice) if ctx.llm_final_choice in FINAL_CHOICES \
            else 0

    def usage(self) -> dict[str, Any]:
        return self.budget.usage()

    # --- the model call ---------------------------------------------------------------------
    def _invoke(self, bound: Any, messages: list[BaseMessage], schemas: list[dict[str, Any]] | None = None) \
            -> AIMessage:
        """One model request, retried only when the error is transient; every request is counted."""
        self.budget.check()
        tries = 0

        @retry(retry=retry_if_exception(is_transient), stop=stop_after_attempt(self.ctx.llm_retries + 1),
               wait=wait_random_exponential(multiplier=self.ctx.llm_backoff_s, max=20), reraise=True)
        def call() -> tuple[AIMessage, float]:
            nonlocal tries
            if tries:
                self.budget.check()  # a retry is a request too: it may not overrun the budget
            tries += 1
            self.budget.sent()
            t0 = time.monotonic()
            try:
                return bound.invoke(messages), time.monotonic() - t0
            except Exception:
                self.budget.failed(time.monotonic() - t0)
                raise

        try:
            reply, latency = call()
        except Exception as exc:
            if is_api_error(exc):
                raise failure(exc, tries) from exc
            raise
        self.budget.record(messages, schemas or [], reply, latency)
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
              max_steps: int, validate: Callable[[BaseModel], str | None] | None = None,
              final_schema: dict[str, Any] | None = None) -> BaseModel | None:
        """A bounded tool-calling loop that always ends: a final answer, or None at the cap.

        With ``Context.llm_min_tool_calls`` set, the turn's first steps ask for an evidence read by name
        (``FIRST_READ``; a server that forces named tools makes it happen), and an answer is refused (never
        at the forced final step) until the model has been sent that many evidence results. The turn's figures
        (requests, evidence calls, results the model read, calls recovered from text, how it ended) go
        to the budget's ``turns``."""
        fname = final.__name__
        turn = {"agent": fname.removeprefix("submit_"), "requests": 0, "tool_calls": 0, "results_read": 0,
                "recovered": 0, "answer": "none"}
        try:
            return self._steps(system, human, tools, final, max_steps, validate, final_schema, turn)
        finally:
            self.budget.turn(turn)

    def _steps(self, system: str, human: str, tools: list[StructuredTool], final: type[BaseModel],
               max_steps: int, validate: Callable[[BaseModel], str | None] | None,
               final_schema: dict[str, Any] | None, turn: dict[str, Any]) -> BaseModel | None:
        by_name = {tool.name: tool for tool in tools}
        messages: list[BaseMessage] = [SystemMessage(system), HumanMessage(human)]
        fname = final.__name__
        fschema = final_schema or tool_schema(final)
        schemas = [tool_schema(t) for t in tools] + [fschema]
        choice = self.ctx.llm_tool_choice
        bound = self.model.bind_tools(schemas, **({} if choice == "omit" else {"tool_choice": choice}))
        repairs = unread = 0
        seen: dict[str, str] = {}  # an evidence call (name and arguments) -> the id of its result
        first = by_name.get(FIRST_READ.get(fname, "")) if self.ctx.llm_min_tool_calls else None
        for step in range(max_steps + 1):
            last = step == max_steps
            investigate = first is not None and turn["tool_calls"] < self.ctx.llm_min_tool_calls and \
                step < max_steps - 1
            turn["results_read"] += unread  # the results appended since the last request go out with this one
            unread = 0
            turn["requests"] += 1
            if last:
                messages.append(HumanMessage(prompts.FORCE_FINAL.format(tool=fname)))
                reply = self._invoke_forced(fschema, messages)
            elif investigate and first is not None:
                reply = self._invoke_forced(tool_schema(first), messages, schemas)
            else:
                reply = self._invoke(bound, messages, schemas)
            reply = recover_tool_calls(reply, {fname} if last else {*by_name, fname})
            turn["recovered"] += reply.response_metadata.get("recovered_tool_calls", 0)
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
                cid = call["id"] or f"call-{len(self.results) + 1}"
                self.budget.tool_call(call["name"])
                if call["name"] == fname:
                    if turn["results_read"] < self.ctx.llm_min_tool_calls and step < max_steps - 1:
                        messages.append(ToolMessage(prompts.READ_FIRST.format(tools=", ".join(by_name), tool=fname),
                                                    tool_call_id=cid))
                        continue
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
                    turn["answer"] = "forced" if last else "answered"
                    messages.append(ToolMessage("accepted", tool_call_id=cid))
                    continue
                key = json.dumps([call["name"], call.get("args") or {}], sort_keys=True, default=str)
                tool = by_name.get(call["name"])
                if key in seen:  # a small model repeats itself; the result is already in its context
                    result = f"same call as {seen[key]}: its result is above"
                elif tool is None:
                    result = f"error: no tool named {call['name']!r}; available: {', '.join(by_name)}, {fname}"
                else:
                    turn["tool_calls"] += 1
                    seen[key] = cid
                    try:
                        result = str(tool.invoke(call.get("args") or {}))
                    except Exception as exc:  # a bad argument is the model's to fix, not a crash
                        result = f"error: {type(exc).__name__}: {str(exc)[:300]}"
                if len(result) > MAX_TOOL_RESULT_CHARS:
                    result = (result[:MAX_TOOL_RESULT_CHARS] + f"\n... {len(result) - MAX_TOOL_RESULT_CHARS} more "
                              "characters omitted (narrow the query)")
                self.results[cid] = result
                messages.append(ToolMessage(result, tool_call_id=cid))
                unread += 1
            if answer is not None:
                return answer
            if repairs > self.ctx.llm_max_repairs:
                return None
        return None

    def _invoke_forced(self, fschema: dict[str, Any], messages: list[BaseMessage],
                       offered: list[dict[str, Any]] | None = None) -> AIMessage:
        """One tool asked for as strongly as the server allows: the answer tool at the final step (offered
        alone: a server that ignores ``tool_choice`` can call nothing else), or an evidence read among all
        the turn's tools (the same tool list keeps the server's cached prompt prefix).

        A server that rejects a ``tool_choice`` form as invalid gets the next weaker one, and the
        policy remembers it for the rest of its turns."""
        name = fschema["function"]["name"]
        tools = offered or [fschema]
        while True:
            mode = FINAL_CHOICES[self.final_choice]
            tool_choice = {"named": name, "required": "required", "auto": "auto"}[mode]
            try:
                bound = self.model.bind_tools(tools, tool_choice=tool_choice)
            except (TypeError, ValueError, NotImplementedError):
                bound = self.model.bind_tools(tools)
            try:
                return self._invoke(bound, messages, tools)
            except LLMCallFailed as exc:
                if self.final_choice + 1 >= len(FINAL_CHOICES) or exc.__cause__ is None or \
                        not rejects_tool_choice(exc.__cause__):
                    raise
                self.final_choice += 1

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
        catalogue = runbook_data()["classes"]
        schema = tool_schema(submit_diagnosis)
        # the catalogue as an enum: in the schema the model already reads (not repeated in the prompt), and
        # a server that constrains forced answers to the schema can only produce a valid class
        schema["function"]["parameters"]["properties"]["fault_class"]["enum"] = list(catalogue)
        deps = {k: sorted(v) for k, v in view.dependencies().items()}
        human = (f"Namespace {namespace}.\nCall graph (caller -> dependencies): {json.dumps(deps)}\n"
                 f"Evidence from the analyzers:\n{evidence or 'none'}\n")
        if reflections:
            human += "Earlier attempts (do not repeat them):\n" + "\n".join(reflections[-3:]) + "\n"
        components = known_components(view, rule_hyps)

        def validate(answer: BaseModel) -> str | None:
            assert isinstance(answer, submit_diagnosis)
            if answer.fault_class not in catalogue:
                return (f"fault_class {answer.fault_class!r} is not in the catalogue; use one of: "
                        f"{', '.join(catalogue)}")
            if answer.root_cause_component not in components:
                # a small model puts the fault class, or a pod name, where the component belongs
                return (f"root_cause_component {answer.root_cause_component!r} is not a component of namespace "
                        f"{namespace}; use one of: {', '.join(sorted(components))}")
            return None

        ans = self._loop(prompts.DIAGNOSIS_SYSTEM, human, self._read_tools(cluster, namespace), submit_diagnosis,
                         self.ctx.llm_max_steps, validate=validate, final_schema=schema)
        if ans is None:
            return findings, rule_hyps, view  # the loop ended without an answer: fall back to the analyzers
        assert isinstance(ans, submit_diagnosis)
        claims = []
        for c in ans.evidence:
            if c.evidence and all(e in self.results for e in c.evidence):
                claims.append(c)
            else:
                self.dropped_claims += 1  # a claim that cites no tool result is not reported
        level, ftype = catalogue[ans.fault_class].get("labels", [None, None])
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
            if alt.fault_class not in catalogue:
                continue  # an alternative is a hint, not worth a repair: one outside the catalogue is dropped
            labels = catalogue[alt.fault_class].get("labels", [None, None])
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
        # a plan is what it does: the same commands are the same change, whatever hypothesis they came with
        done = {effect(commands, namespace) for commands in tried.values() if commands}
        tried_cmds = sorted(" && ".join(e) for e in done)
        for h in hypotheses[:3]:
            for plan in self.rules.plans(cluster, namespace, h, view):
                if plan.key not in tried and effect(plan.commands, namespace) not in done:
                    suggestions.append(f"- for {h.fault_class} at {h.component}: "
                                       f"{' && '.join(render(a) for a in plan.actions)}  (expect: {plan.expect})")
        human = (f"Namespace {namespace}.\nRoot-cause hypothesis: {hyp.fault_class} at {hyp.component} "
                 f"(confidence {hyp.confidence}): {tt.redact_text(hyp.summary)}\n"
                 f"Alternatives: {[(h.component, h.fault_class, h.confidence) for h in hypotheses[1:4]]}\n"
                 f"Runbook suggestions (verified to parse; not yet tried):\n" + ("\n".join(suggestions[:6]) or "none")
                 + "\n")
        if tried_cmds:
            human += "Already tried (applied, undone or refused; never repeat them):\n" + "\n".join(tried_cmds[-5:]) + "\n"
        if reflections:
            human += "Reflections:\n" + "\n".join(reflections[-3:]) + "\n"
        allowed = {namespace, *self.ctx.namespaces}

        def check_kubectl(command: str) -> str:
            v = guard(command, allowed_namespaces=allowed)
            return json.dumps({"allowed": v.allowed, "reason": v.reason, "kubectl": v.kubectl})

        def nl2kubectl(intent: str) -> str:
            return self._nl2kubectl(intent, namespace, allowed)

        # the diagnosis is done: manifests and events are what a fix is written from, not metrics or logs
        tools = [t for t in self._read_tools(cluster, namespace) if t.name in MITIGATION_READ_TOOLS] + [
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
            if effect([c.kubectl for c in plan.commands], namespace) in done:
                return ("this change (the same commands) was already applied or refused in this incident; "
                        "propose a different one")
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
        expect = "; ".join(c.expected_effect for c in ans.commands if c.expected_effect) or ans.rationale
        return Plan(hypothesis=hyp, actions=actions, expect=expect,
                    commands=[normalized(c.kubectl, namespace) for c in ans.commands])

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
