"""``stratus log``: an incident's transaction log, read back through LangGraph's checkpointer API.

The incidents in a store are the threads ``BaseCheckpointSaver.list`` yields; an incident's state is
the compiled graph's ``get_state`` of its thread. Nothing here knows the checkpointer's tables, so a
SQLite file and a PostgreSQL DSN read the same way (``stratus.api.open_checkpointer``).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer

from stratus.cli.common import default_db, fail
from stratus.cli.panels import print_log
from stratus.cli.tables import print_incidents


def incident_ids(saver: Any) -> list[str]:
    """The thread ids in the store, the one with the latest checkpoint first.

    ``list`` yields checkpoints newest first across all threads, so a thread's first appearance is its
    latest checkpoint. Subgraph checkpoints (a non-empty ``checkpoint_ns``) are not incidents.
    """
    seen: dict[str, None] = {}
    for item in saver.list(None):
        configurable = item.config["configurable"]
        if not configurable.get("checkpoint_ns"):
            seen.setdefault(configurable["thread_id"], None)
    return list(seen)


def incident_row(incident: str, snap: Any) -> dict[str, Any]:
    """One line of ``stratus log --list`` from the incident's state snapshot."""
    v = snap.values
    rep = v.get("report") or {}
    txs = v.get("transactions") or []
    return {"incident_id": incident, "created_at": snap.created_at, "namespace": v.get("namespace"),
            "outcome": rep.get("outcome") or ("waiting: " + ",".join(snap.next) if snap.next else v.get("phase")),
            "transactions": len(txs), "rollbacks": sum(t["status"] == "undone" for t in txs)}


def incident_log(incident: str, snap: Any) -> dict[str, Any]:
    """``stratus log INCIDENT --json`` from the incident's state snapshot."""
    v = snap.values
    return {"incident_id": incident, "namespace": v.get("namespace"), "phase": v.get("phase"),
            "next": list(snap.next), "alerts": v.get("alerts"), "health_detect": v.get("health_detect"),
            "eps": v.get("eps"), "transactions": v.get("transactions") or [], "report": v.get("report")}


def log(
    incident: Annotated[str | None, typer.Argument(help="Incident id (thread id), e.g. from `stratus demo`.")]
    = None,
    db: Annotated[str | None, typer.Option(
        help="Checkpoint store. Default: $STRATUS_DB or ~/.stratus/stratus.db.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the transaction log as JSON.")] = False,
    list_: Annotated[bool, typer.Option("--list", help="List the incident ids in the store.")] = False,
) -> None:
    """Print an incident's transaction log from its checkpoints.

    Per transaction: the actions in kubectl form, health before and after (H, A, E, L, unhealthy count),
    the TNR verdict and its reason, and for undone ones whether the restore was verified. Then the final
    report. Exit code 1 when the incident is not in the store.
    """
    db = db or default_db()
    if not list_ and not incident:
        raise fail("give an INCIDENT id, or --list to see the ids in the store", 2)
    if db != ":memory:" and "://" not in db and not Path(db).expanduser().exists():
        raise fail(f"no checkpoint store at {db} (set --db or STRATUS_DB)")
    from stratus.api import open_checkpointer
    from stratus.graph import build_graph

    with open_checkpointer(db) as saver:
        graph = build_graph(checkpointer=saver)
        if list_:
            rows = [incident_row(tid, graph.get_state({"configurable": {"thread_id": tid}}))
                    for tid in incident_ids(saver)]
            if as_json:
                print(json.dumps(rows, default=str))
            else:
                print_incidents(rows, db)
            return
        assert incident is not None
        snap = graph.get_state({"configurable": {"thread_id": incident}})
        if not snap.values:
            raise fail(f"no incident {incident!r} in {db} (see `stratus log --list`)")
        if as_json:
            print(json.dumps(incident_log(incident, snap), default=str))
        else:
            print_log(incident, snap)
