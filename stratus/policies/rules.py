"""The offline rules policy: findings -> ranked hypotheses -> runbook plans. No LLM, no network.

Ranking: every finding's signal votes for (component, fault class) with the weight the runbook data
gives it; votes combine by noisy-OR. Then the call graph decides between a component and the things
that fail because of it: a symptom-class hypothesis (unreachable, crash loop, unavailable) on a
component whose dependency carries a hypothesis of its own is demoted, so the root cause is the
deepest failing component that explains the failures above it.
"""

from __future__ import annotations

from collections import defaultdict
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml

from stratus.cluster.base import Cluster
from stratus.policies import generic, generic_capacity, runbooks  # noqa: F401 - generic* register runbooks
from stratus.state import Finding, Hypothesis, Plan, TriedPlans
from stratus.tools.analyzers import View, run_all
from stratus.tools.kubectl import render

SYMPTOM_DEMOTION = 0.35
MIN_CONFIDENCE = 0.05


@lru_cache(maxsize=1)
def runbook_data() -> dict[str, Any]:
    return yaml.safe_load((Path(__file__).parent / "runbooks.yaml").read_text())


def rank(findings: list[Finding], view: View) -> list[Hypothesis]:
    classes = runbook_data()["classes"]
    by_signal: dict[str, list[tuple[str, float]]] = defaultdict(list)
    for cls, spec in classes.items():
        for signal, weight in spec["signals"].items():
            by_signal[signal].append((cls, float(weight)))
    miss: dict[tuple[str, str], float] = defaultdict(lambda: 1.0)
    evidence: dict[tuple[str, str], list[Finding]] = defaultdict(list)
    for f in findings:
        if not f.component:
            continue
        for cls, weight in by_signal.get(f.signal, []):
            key = (f.component, cls)
            miss[key] *= 1.0 - weight
            evidence[key].append(f)
    scores = {key: 1.0 - m for key, m in miss.items()}
    deps = view.dependencies()
    implicated = {comp for (comp, cls), s in scores.items() if s >= 0.3 and not classes[cls].get("symptom")}
    implicated |= {comp for (comp, cls), s in scores.items() if s >= 0.3}
    hyps = []
    for (comp, cls), score in scores.items():
        why = ""
        if classes[cls].get("symptom"):
            deeper = sorted(d for d in deps.get(comp, set()) if d in implicated and d != comp)
            if deeper:
                score *= SYMPTOM_DEMOTION
                why = f" (explained by failing dependency {', '.join(deeper)})"
        if score < MIN_CONFIDENCE:
            continue
        evs = evidence[(comp, cls)]
        level, ftype = classes[cls]["labels"]
        hyps.append(Hypothesis(
            component=comp, fault_class=cls, confidence=round(min(score, 0.99), 4),
            summary=f"{cls.replace('_', ' ')} at {comp}{why}: " + "; ".join(e.summary for e in evs[:3])[:400],
            evidence=sorted({r for e in evs for r in e.evidence})[:12], system_level=level, fault_type=ftype,
            data={"signals": sorted({e.signal for e in evs}),
                  "facts": [e.data for e in evs if e.data][:6]}))
    hyps.sort(key=lambda h: (-h.confidence, h.component, h.fault_class))
    return hyps


class RulesPolicy:
    """The offline policy used by the graph's diagnose and plan_mitigation nodes."""

    name = "rules"
    plans_need_review = False
    journal: Any = None
    """The change journal (``ChangeJournal``) its analyzers and generic plans read, when there is one."""

    def __init__(self, journal: Any = None) -> None:
        self.journal = journal

    def confirm(self, cluster: Cluster, namespace: str, alerts: list[dict[str, Any]],
                health: dict[str, Any]) -> None:
        """No second opinion: the telemetry decides alone."""
        return None

    def diagnose(self, cluster: Cluster, namespace: str, reflections: list[str] | None = None) -> \
            tuple[list[Finding], list[Hypothesis], View]:
        view, findings = run_all(cluster, namespace, journal=self.journal)
        return findings, rank(findings, view), view

    def plans(self, cluster: Cluster, namespace: str, hypothesis: Hypothesis,
              view: View | None = None) -> list[Plan]:
        """Candidate plans for a hypothesis, best first."""
        view = view or View.read(cluster, namespace, journal=self.journal)
        fn = runbooks.REGISTRY.get(hypothesis.fault_class)
        if fn is None:
            return []
        out = []
        symptom = runbook_data()["classes"][hypothesis.fault_class].get("symptom")
        for i, (actions, expect) in enumerate(fn(view, hypothesis, runbook_data()["database"])):
            if not symptom:
                # clients that crashed on the broken dependency sit in restart back-off: restart them
                named = {(a.verb, a.name) for a in actions}
                actions = actions + [a for a in runbooks.restart_crashed_dependents(view, hypothesis.component)
                                     if (a.verb, a.name) not in named]
            for a in actions:
                a.namespace = a.namespace or namespace
                a.reason = a.reason or hypothesis.summary[:200]
            out.append(Plan(hypothesis=hypothesis, actions=actions, expect=expect, index=i,
                            commands=[render(a) for a in actions]))
        return out

    def next_plan(self, cluster: Cluster, namespace: str, hypotheses: list[Hypothesis], tried: TriedPlans,
                  view: View | None = None, reflections: list[str] | None = None) -> Plan | None:
        """The best untried plan of the best hypothesis that still has one.

        A plan whose commands were already tried under another hypothesis is skipped too: in a compound
        incident several components carry the same cause (one LimitRange, one cordon, one restart), and
        running the same commands again in the same world only spends an attempt another fault needs.
        ``tried`` already leaves out the plans a later commit re-opened, so those may run again."""
        view = view or View.read(cluster, namespace, journal=self.journal)
        done = {tuple(commands) for commands in tried.values() if commands}
        for h in hypotheses:
            for plan in self.plans(cluster, namespace, h, view):
                if plan.key in tried or tuple(plan.commands) in done:
                    continue
                return plan
        return None

    def usage(self) -> dict[str, Any]:
        return {}
