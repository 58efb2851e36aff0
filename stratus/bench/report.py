"""Benchmark aggregation: ``results.jsonl`` rows -> ``summary.json``, ``report.md`` and a PNG chart.

Pure functions over the run-scenario objects of DESIGN §8 (one per scenario x agent), so a report can be
rebuilt from a saved ``results.jsonl`` without re-running anything. Metrics follow AIOpsLab's task
split: detection is graded on every run; localisation, analysis and mitigation on fault scenarios only
(the no-fault controls are reported separately in the per-fault table, where "mitigated" means the
agent left a healthy system healthy). Every run is graded at the same simulated horizon after detection;
harm left behind (the oracle's ``collateral:`` notes at the grade) and false resolutions (the agent
reported the incident resolved, the oracle disagrees) are counted per agent.
"""

from __future__ import annotations

import json
import statistics
import warnings
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from stratus.bench.report_splits import splits, splits_md

CONTROL = "(no fault)"
AGENT_ORDER = ("stratus", "oneshot", "retry", "restart")


def load_results(path: str | Path) -> list[dict[str, Any]]:
    """Read a ``results.jsonl`` file (blank lines ignored)."""
    return [json.loads(line) for line in Path(path).read_text().splitlines() if line.strip()]


def fault_type(row: dict[str, Any]) -> str:
    """The row's fault type (``type@target`` -> ``type``); several faults are joined with ``+``."""
    types = sorted({f.split("@", 1)[0] for f in row.get("faults") or []} - {"noop"})
    return "+".join(types) if types else CONTROL


def _rate(values: Iterable[Any]) -> float | None:
    vals = [bool(v) for v in values]
    return round(sum(vals) / len(vals), 4) if vals else None


def _median(values: Iterable[Any]) -> float | None:
    vals = [float(v) for v in values if v is not None]
    return round(statistics.median(vals), 3) if vals else None


def _agents(rows: list[dict[str, Any]]) -> list[str]:
    seen = {r["agent"] for r in rows}
    return [a for a in AGENT_ORDER if a in seen] + sorted(seen - set(AGENT_ORDER))


def agent_summary(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Metrics for one agent's rows. A run that errored stays in every denominator as a failure."""
    ok = [r for r in rows if not r.get("error")]
    faulty = [r for r in rows if fault_type(r) != CONTROL]
    controls = [r for r in rows if fault_type(r) == CONTROL]
    mitigated = [r for r in faulty if r.get("mitigated")]
    return {
        "n": len(rows),
        "n_fault": len(faulty),
        "n_control": len(controls),
        "errors": len(rows) - len(ok),
        "detection_accuracy": _rate(r.get("detection_correct") for r in rows),
        "localization_accuracy": _rate(r.get("localization_correct") for r in faulty),
        "analysis_accuracy": _rate(r.get("analysis_correct") is True for r in faulty),
        "mitigation_rate": _rate(r.get("mitigated") for r in faulty),
        "control_correct": _rate(r.get("mitigated") for r in controls),
        "tnr_violations": sum(int(r.get("tnr_violations") or 0) for r in ok),
        "harm_left": sum(bool(r.get("harm")) for r in rows),
        "false_resolutions": sum(bool(r.get("false_resolution")) for r in rows),
        "escalations": sum(r.get("outcome") == "escalated" for r in rows),
        "lucky_fixes": sum(bool(r.get("lucky_fix")) for r in rows),
        # the bar for what is not fixed: handed to a human, naming a component that is at fault
        "unfixed": len(faulty) - len(mitigated),
        "unfixed_escalated_correctly": sum(r.get("outcome") == "escalated" and bool(r.get("localization_correct"))
                                           for r in faulty if not r.get("mitigated")),
        "unfinished_at_horizon": sum(r.get("finished_by_horizon") is False for r in rows),
        "rollbacks": sum(int(r.get("rollbacks") or 0) for r in ok),
        "transactions": sum(int(r.get("transactions") or 0) for r in ok),
        "median_wall_s": _median(r.get("wall_s") for r in ok),
        "median_sim_time_to_mitigate_s": _median(r.get("sim_time_to_mitigate_s") for r in mitigated),
        "llm_calls": sum(int(r.get("llm_calls") or 0) for r in ok),
        "llm_tokens": sum(int(r.get("llm_tokens") or 0) for r in ok),
    }


def summarize(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """``summary.json``: per-agent metrics and a fault type x agent mitigation table."""
    agents = _agents(rows)
    types = sorted({fault_type(r) for r in rows}, key=lambda t: (t == CONTROL, t))
    by_fault: dict[str, dict[str, Any]] = {}
    for t in types:
        by_fault[t] = {}
        for a in agents:
            sel = [r for r in rows if r["agent"] == a and fault_type(r) == t]
            if sel:
                by_fault[t][a] = {"n": len(sel), "mitigated": sum(bool(r.get("mitigated")) for r in sel),
                                  "rate": _rate(r.get("mitigated") for r in sel),
                                  "rollbacks": sum(int(r.get("rollbacks") or 0) for r in sel)}
    out = {
        "runs": len(rows),
        "scenarios": len({r["scenario"] for r in rows}),
        "horizon_s": sorted({r["horizon_s"] for r in rows if r.get("horizon_s") is not None}),
        "policies": sorted({r.get("policy", "") for r in rows}),
        "agents": {a: agent_summary([r for r in rows if r["agent"] == a]) for a in agents},
        "by_fault_type": by_fault,
        **splits(rows, agents),
    }
    llm = [r for r in rows if r.get("policy") == "llm" and not r.get("error")]
    if llm:
        out["llm"] = llm_summary(llm)
    return out


def llm_summary(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """The llm policy's spending over its runs; per incident = per run that detected an incident."""
    incidents = [r for r in rows if r.get("detected")]
    return {
        "incidents": len(incidents),
        "median_prompt_tokens_per_incident": _median(r.get("llm_prompt_tokens") for r in incidents),
        "max_prompt_tokens_per_incident": max((int(r.get("llm_prompt_tokens") or 0) for r in incidents), default=None),
        "median_tokens_per_incident": _median(r.get("llm_tokens") for r in incidents),
        "median_calls_per_incident": _median(r.get("llm_calls") for r in incidents),
        "failed_calls": sum(int(r.get("llm_failed_calls") or 0) for r in rows),
        "tool_calls": sum(int(r.get("llm_tool_calls") or 0) for r in rows),
        "runs_without_tool_calls": sum(not r.get("llm_tool_calls") for r in incidents),
        "median_llm_latency_s_per_incident": _median(r.get("llm_latency_s") for r in incidents),
        "max_request_latency_s": max((float(r.get("llm_max_latency_s") or 0) for r in rows), default=None),
    }


LLM_COLUMNS = ("mitigated", "localization_correct", "outcome", "llm_tool_calls", "llm_calls", "llm_failed_calls",
               "llm_prompt_tokens", "llm_tokens", "llm_latency_s", "llm_max_latency_s")


def llm_table_md(rows: list[dict[str, Any]]) -> str:
    """Per run of the llm policy: what the model did and what it cost."""
    lines = ["| scenario | agent | " + " | ".join(c.removeprefix("llm_") for c in LLM_COLUMNS) + " |",
             "|---|---|" + "---:|" * len(LLM_COLUMNS)]
    for r in rows:
        if r.get("policy") == "llm":
            lines.append(f"| {r['scenario']} | {r['agent']} | " + " | ".join(_num(r.get(c)) for c in LLM_COLUMNS) + " |")
    return "\n".join(lines)


def _pct(v: float | None) -> str:
    return "n/a" if v is None else f"{100 * v:.1f}%"


def _num(v: Any) -> str:
    return "n/a" if v is None else str(v)


AGENT_COLUMNS = [
    ("n", "runs", _num), ("detection_accuracy", "detection", _pct),
    ("localization_accuracy", "localization", _pct), ("analysis_accuracy", "analysis", _pct),
    ("mitigation_rate", "mitigation", _pct), ("control_correct", "controls ok", _pct),
    ("tnr_violations", "TNR violations", _num), ("harm_left", "harm left", _num),
    ("false_resolutions", "false resolutions", _num), ("escalations", "escalations", _num),
    ("lucky_fixes", "lucky fixes", _num), ("unfixed", "unfixed", _num),
    ("unfixed_escalated_correctly", "unfixed, escalated naming a faulty component", _num),
    ("rollbacks", "rollbacks", _num),
    ("median_wall_s", "median wall s", _num), ("median_sim_time_to_mitigate_s", "median sim s to mitigate", _num),
]


def _ratio_lines(summary: dict[str, Any]) -> list[str]:
    """How many more fault scenarios each agent mitigates than ``oneshot`` (one transaction, same policy)."""
    agents = summary["agents"]
    base = (agents.get("oneshot") or {}).get("mitigation_rate")
    if not base:
        return []
    ratios = [f"{a} {(s.get('mitigation_rate') or 0) / base:.2f}x" for a, s in agents.items() if a != "oneshot"]
    return [f"Mitigated relative to oneshot: {', '.join(ratios)}.", ""]


def agent_table_md(summary: dict[str, Any]) -> str:
    head = "| agent | " + " | ".join(c[1] for c in AGENT_COLUMNS) + " |"
    sep = "|---|" + "---:|" * len(AGENT_COLUMNS)
    lines = [head, sep]
    for agent, s in summary["agents"].items():
        lines.append(f"| {agent} | " + " | ".join(fmt(s.get(key)) for key, _, fmt in AGENT_COLUMNS) + " |")
    return "\n".join(lines)


def fault_table_md(summary: dict[str, Any]) -> str:
    agents = list(summary["agents"])
    lines = ["| fault type | " + " | ".join(agents) + " |", "|---|" + "---:|" * len(agents)]
    for t, cells in summary["by_fault_type"].items():
        row = []
        for a in agents:
            c = cells.get(a)
            row.append("" if c is None else f"{c['mitigated']}/{c['n']}")
        lines.append(f"| {t} | " + " | ".join(row) + " |")
    return "\n".join(lines)


def render_markdown(summary: dict[str, Any], chart: str | None = None, command: str | None = None,
                    rows: list[dict[str, Any]] | None = None) -> str:
    """``report.md``: the two tables (and, for the llm policy, its per-run figures), how they were
    produced, and what the columns mean."""
    parts = ["# STRATUS benchmark report", ""]
    if command:
        parts += [f"Produced by `{command}`.", ""]
    horizon = " / ".join(f"{h:g}" for h in summary.get("horizon_s") or []) or "n/a"
    parts += [f"{summary['runs']} runs: {summary['scenarios']} scenarios x {len(summary['agents'])} agents, "
              f"policy {', '.join(summary['policies'])}. Every run is graded {horizon} simulated seconds "
              "after detection, however long its agent took (one still working then is graded as the world "
              "stands).", "", "## Per agent", "", agent_table_md(summary), "",
              "Detection is graded on every run; localisation, analysis and mitigation on fault scenarios; "
              "\"controls ok\" is the share of no-fault controls left healthy with no committed change. "
              "Mitigation is decided by the benchmark's oracle (the injected cause is gone, the "
              "application is healthy and nothing the fix did not need was changed), not by the agent's own "
              "report. \"harm left\" counts runs with collateral damage at the grade (a change nobody needed, "
              "on any workload, Service, NetworkPolicy, node, database account, ConfigMap or Secret); "
              "\"false resolutions\" counts runs the agent reported resolved that the oracle did not grade "
              "mitigated. \"unfixed, escalated naming a faulty component\" counts the fault runs not "
              "mitigated that the agent handed to a human with a root cause at an injected fault's component "
              "(the issue's bar: what is not fixed is escalated with a correct account). A run that errored "
              "counts as a failure.", "", *_ratio_lines(summary),
              "## Mitigated per fault type (mitigated/runs)", "", fault_table_md(summary), "",
              splits_md(summary)]
    if chart:
        parts += [f"![mitigation rate per fault type]({chart})", ""]
    if summary.get("llm"):
        parts += ["## LLM policy per run", "", llm_table_md(rows or []), "",
                  "tool_calls: evidence tools the model called (the answer tools excluded); calls: requests sent, "
                  "failed and retried ones included; tokens from the server's `usage`; latency: seconds "
                  "waiting for the model (total, and the slowest request).", "",
                  "```json", json.dumps(summary["llm"], indent=2), "```", ""]
    return "\n".join(parts)


def write_chart(summary: dict[str, Any], path: str | Path) -> Path | None:
    """Grouped bars: mitigation rate per fault type per agent. None (with a warning) without matplotlib."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        warnings.warn("matplotlib is not installed: skipping the PNG chart (uv sync --group dev)", stacklevel=2)
        return None
    agents = list(summary["agents"])
    types = list(summary["by_fault_type"])
    width = 0.8 / max(1, len(agents))
    fig, ax = plt.subplots(figsize=(max(8.0, 0.75 * len(types) + 2), 4.8))
    for i, agent in enumerate(agents):
        xs = [j + (i - (len(agents) - 1) / 2) * width for j in range(len(types))]
        ys = [(summary["by_fault_type"][t].get(agent) or {}).get("rate") or 0.0 for t in types]
        ax.bar(xs, ys, width=width, label=agent)
    ax.set_xticks(range(len(types)))
    ax.set_xticklabels(types, rotation=40, ha="right", fontsize=8)
    ax.set_ylim(0, 1.2)
    ax.set_yticks([0, 0.2, 0.4, 0.6, 0.8, 1.0])
    ax.set_ylabel("mitigation rate")
    ax.set_title("Mitigation rate per fault type")
    ax.legend(loc="upper center", ncol=max(1, len(agents)), frameon=False)
    fig.tight_layout()
    out = Path(path)
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return out


def write_report(rows: list[dict[str, Any]], out_dir: str | Path, command: str | None = None) -> dict[str, Any]:
    """Write ``summary.json``, ``report.md`` and ``mitigation.png`` into ``out_dir``; return the summary."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    summary = summarize(rows)
    chart = write_chart(summary, out / "mitigation.png")
    (out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    (out / "report.md").write_text(render_markdown(summary, chart.name if chart else None, command, rows))
    return summary
