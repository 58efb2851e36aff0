"""The Python API: ``invoke_graph(alerts)`` runs one incident end to end and returns its result.

With no cluster it acts on an embedded digital twin (HotelReservation). Incidents are checkpointed
(SQLite by default, one thread per incident), so ``thread_id`` resumes an interrupted incident: a
transaction left open by a crash is undone before anything else happens.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import sqlite3
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.base import BaseCheckpointSaver
from pydantic import BaseModel, Field, TypeAdapter, ValidationError

from stratus.agents.common import open_transaction
from stratus.cluster import set_default_factory
from stratus.context import Context
from stratus.graph import build_graph, recursion_limit
from stratus.state import Alert, new_incident_id


class AlertValidationError(ValueError):
    """An alert that is not Alertmanager-shaped; the message names the offending field."""


class IncidentResult(BaseModel):
    incident_id: str
    namespace: str
    detected: bool
    outcome: str
    summary: str
    root_cause: dict[str, Any] | None = None
    hypotheses: list[dict[str, Any]] = Field(default_factory=list)
    transactions: list[dict[str, Any]] = Field(default_factory=list)
    rollbacks: int = 0
    health_initial: float | None = None
    health_final: float | None = None
    tnr_violation: bool = False
    reflections: list[str] = Field(default_factory=list)
    health_history: list[dict[str, Any]] = Field(default_factory=list)
    llm_calls: int = 0
    llm_tokens: int = 0
    llm_prompt_tokens: int = 0
    llm_stats: dict[str, Any] = Field(default_factory=dict)
    detection_summary: str = ""
    interrupted: bool = False
    interrupt: Any = None
    steps: int = 0

    @property
    def committed(self) -> list[dict[str, Any]]:
        return [t for t in self.transactions if t["status"] == "committed"]


def _twin_factory() -> Any:
    from stratus.twin.cluster import TwinCluster

    return TwinCluster(warm_up_s=300.0)


set_default_factory(_twin_factory)


def parse_alerts(alerts: Any) -> list[Alert]:
    """Accept a list of alerts, one alert, or a whole Alertmanager webhook payload."""
    if isinstance(alerts, (str, bytes)):
        try:
            alerts = json.loads(alerts)
        except ValueError:
            raise AlertValidationError("invalid alert: alerts: expected a list of alert objects or an Alertmanager "
                                       "webhook payload (JSON), got a string that is not JSON") from None
        if isinstance(alerts, str):
            raise AlertValidationError("invalid alert: alerts: expected a list of alert objects, got a string")
    if isinstance(alerts, dict) and "alerts" in alerts:
        alerts = alerts["alerts"]
    if isinstance(alerts, (dict, Alert)):
        alerts = [alerts]
    try:
        return TypeAdapter(list[Alert]).validate_python(list(alerts or []))
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            loc = "alerts" + "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in err["loc"])
            problems.append(f"{loc}: {err['msg']}")
        raise AlertValidationError("invalid alert: " + "; ".join(problems)) from None


def incident_id_for(alerts: list[Alert]) -> str:
    """Stable id from the alerts' fingerprints (dedup: the same alert group maps to one incident)."""
    keys = sorted(a.fingerprint or json.dumps(a.labels, sort_keys=True) for a in alerts)
    digest = hashlib.sha1("|".join(keys).encode()).hexdigest()[:10] if keys else None
    return f"inc-{digest}" if digest else new_incident_id()


@contextlib.contextmanager
def open_checkpointer(db: str) -> Iterator[BaseCheckpointSaver]:
    """SQLite file (default) or ``postgresql://`` DSN, or ``:memory:``."""
    if db.startswith(("postgres://", "postgresql://")):
        from langgraph.checkpoint.postgres import PostgresSaver

        with PostgresSaver.from_conn_string(db) as pg_saver:
            pg_saver.setup()
            yield pg_saver
        return
    from langgraph.checkpoint.sqlite import SqliteSaver

    if db != ":memory:":
        Path(db).expanduser().parent.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(str(Path(db).expanduser()) if db != ":memory:" else db, check_same_thread=False)
    try:
        saver = SqliteSaver(conn)
        saver.setup()
        yield saver
    finally:
        conn.close()


def _steps_used(saver: BaseCheckpointSaver, config: RunnableConfig, step: int) -> int:
    """Nodes a thread has run: its last checkpoint's step less the checkpoints ``update_state`` wrote."""
    return step - sum(1 for _ in saver.list(config, filter={"source": "update"}))


def _result(incident_id: str, state: dict[str, Any], interrupt: Any = None, steps: int = 0) -> IncidentResult:
    report = state.get("report") or {}
    return IncidentResult(
        incident_id=incident_id, namespace=state.get("namespace", ""), detected=bool(state.get("detected")),
        outcome=report.get("outcome", "interrupted" if interrupt is not None else "unknown"),
        summary=report.get("summary", ""), root_cause=report.get("root_cause"),
        hypotheses=state.get("hypotheses") or [], transactions=state.get("transactions") or [],
        rollbacks=report.get("rollbacks", 0), health_initial=report.get("health_initial"),
        health_final=report.get("health_final"), tnr_violation=bool(report.get("tnr_violation")),
        reflections=state.get("reflections") or [], health_history=state.get("health_history") or [],
        llm_calls=int(state.get("llm_calls", 0)), llm_tokens=int(state.get("llm_tokens", 0)),
        llm_prompt_tokens=int(state.get("llm_prompt_tokens", 0)), llm_stats=dict(state.get("llm_stats") or {}),
        detection_summary=str(state.get("detection_summary", "")),
        interrupted=interrupt is not None, interrupt=interrupt, steps=steps)


def invoke_graph(alerts: Any, *, cluster: Any = None, context: Context | None = None,
                 thread_id: str | None = None, checkpointer: BaseCheckpointSaver | None = None,
                 resume: Any = None,
                 on_update: Callable[[str, dict[str, Any]], None] | None = None,
                 build: Callable[..., Any] = build_graph, journal: Any = None) -> IncidentResult:
    """Run (or resume) one incident from Alertmanager-shaped alerts and return its result.

    Args:
        alerts: a list of alert dicts or ``Alert`` models, or a webhook payload with ``alerts``.
        cluster: the world to act on; a warmed-up HotelReservation twin when omitted.
        context: configuration (policy, budgets, approval, checkpoint DB ...).
        thread_id: incident id; reuse one to resume an interrupted or crashed incident.
        checkpointer: a LangGraph checkpointer; by default the SQLite/Postgres store of ``context.db``.
        resume: the answer to a pending human-approval interrupt.
        on_update: called with (node name, state update) after every node, for live timelines.
        build: compiles the graph to run, given ``checkpointer=``; the benchmark passes its baselines'.
        journal: a ``stratus.tools.journal.ChangeJournal`` that has been watching the namespace: what
            changed before the symptoms becomes evidence, and generic plans revert to its healthy manifests.
    """
    from langgraph.types import Command

    parsed = parse_alerts(alerts)
    ctx = context or Context()
    if cluster is not None:
        ctx.cluster = cluster
    if journal is not None:
        ctx.journal = journal
    if ctx.cluster is None:
        ctx.cluster = _twin_factory()
    namespace = next((a.namespace for a in parsed if a.namespace), None) \
        or (ctx.namespaces[0] if ctx.namespaces else getattr(ctx.cluster, "namespace", "default"))
    incident_id = thread_id or incident_id_for(parsed)
    config: RunnableConfig = {"configurable": {"thread_id": incident_id}}
    with contextlib.ExitStack() as stack:
        saver = checkpointer or stack.enter_context(open_checkpointer(ctx.db))
        graph = build(checkpointer=saver)
        existing = graph.get_state(config)
        if resume is not None:
            payload: Any = Command(resume=resume)
        elif existing.values and existing.next:
            tx = open_transaction(existing.values)
            if tx is not None and not existing.interrupts:
                # crash recovery: the open transaction is undone before anything else (DESIGN §6.8)
                graph.update_state(config, {"transactions": [{**tx, "status": "crashed"}]}, as_node="execute")
            payload = None
        elif existing.values and not existing.next:
            return _result(incident_id, existing.values, steps=_steps_used(saver, config, existing.metadata["step"]))
        else:
            payload = {"incident_id": incident_id, "namespace": namespace,
                       "alerts": [a.model_dump() for a in parsed]}
        if existing.values:
            # LangGraph counts remaining steps per run, from the checkpoint's step (a new run counts from
            # two steps before it): give a resumed run what is left of the incident's budget
            step = graph.get_state(config).metadata["step"]
            config["recursion_limit"] = recursion_limit(ctx, _steps_used(saver, config, step)) - 2
        else:
            config["recursion_limit"] = recursion_limit(ctx)
        for chunk in graph.stream(payload, config, context=ctx, durability="sync", stream_mode="updates"):
            if on_update is not None:
                for node, update in chunk.items():
                    if node != "__interrupt__" and isinstance(update, dict):
                        on_update(node, update)
        final = graph.get_state(config)
        pending = [i.value for i in final.interrupts] if final.interrupts else None
        return _result(incident_id, final.values, pending[0] if pending else None,
                       steps=_steps_used(saver, config, final.metadata["step"]))
