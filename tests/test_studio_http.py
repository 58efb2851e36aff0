"""The human-approval interrupt driven over HTTP against a real ``langgraph dev`` server.

The test starts ``langgraph dev`` (from the dev group's ``langgraph-cli[inmem]``) on a free loopback
port with ``STRATUS_STUDIO_SCENARIO`` naming a scenario, so the served graph acts on a twin with the
fault injected and alerts firing. The server runs in a temporary directory with a copy of
``langgraph.json`` whose paths point back into the repository: the dev server writes ``.langgraph_api/``
into its working directory, and the repository tree stays untouched. It is stopped (its whole process
group) in the fixture's teardown, whatever happens.

The twin is one per server process, shared by every thread, so the order matters: both threads reach the
interrupt first (read-only), the rejected one goes on to its next plan (read-only again), and only then
does the approved one commit the fix.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from testkit import free_port

httpx = pytest.importorskip("httpx")

REPO = Path(__file__).resolve().parent.parent
SCENARIO = "scenarios/hotel-geo-service-target-port.yaml"
FIX = "kubectl patch service/geo"
START_TIMEOUT_S = 60.0
POLL_S = 0.5
RUN_TIMEOUT_S = 60.0
CONTEXT = {"approval": "always"}
API_URL = re.compile(r"API: (?:\x1b\[[0-9;]*m)?(http://127\.0\.0\.1:\d+)")


def _langgraph_cli() -> str:
    local = Path(sys.executable).with_name("langgraph")
    found = str(local) if local.exists() else shutil.which("langgraph")
    if not found:
        pytest.fail("langgraph CLI not installed: run `uv sync` (the dev group has langgraph-cli[inmem])")
    return found


def _config_in(workdir: Path) -> Path:
    """``langgraph.json`` with its paths made absolute, so the server can run outside the repository."""
    cfg = json.loads((REPO / "langgraph.json").read_text())
    graphs = {}
    for name, spec in cfg["graphs"].items():
        path, _, attr = spec.partition(":")
        graphs[name] = f"{(REPO / path).resolve()}:{attr}"
    cfg["graphs"] = graphs
    cfg["dependencies"] = [str((REPO / d).resolve()) if d.startswith(".") else d
                           for d in cfg.get("dependencies", [])]
    cfg.pop("env", None)  # a developer's .env must not change the test: the settings come from env below
    out = workdir / "langgraph.json"
    out.write_text(json.dumps(cfg, indent=2))
    return out


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is not None:
        return
    for sig, wait_s in ((signal.SIGTERM, 10.0), (signal.SIGKILL, 5.0)):
        try:
            os.killpg(proc.pid, sig)  # the server's own process group (start_new_session)
        except ProcessLookupError:
            return
        try:
            proc.wait(timeout=wait_s)
            return
        except subprocess.TimeoutExpired:
            continue


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    workdir = tmp_path_factory.mktemp("langgraph-dev")
    had_api_dir = (REPO / ".langgraph_api").exists()
    config = _config_in(workdir)
    port = free_port()
    # a developer's STRATUS_* settings (policy, approval ...) must not change what the server does
    env = {k: v for k, v in os.environ.items() if not k.startswith("STRATUS_")}
    env.update({"LANGGRAPH_CLI_NO_ANALYTICS": "1", "LANGGRAPH_NO_VERSION_CHECK": "1", "LANGSMITH_TRACING": "false",
                "STRATUS_STUDIO_SCENARIO": str(REPO / SCENARIO), "STRATUS_DB": str(workdir / "stratus.db")})
    log_path = workdir / "server.log"
    cmd = [_langgraph_cli(), "dev", "--config", str(config), "--port", str(port), "--host", "127.0.0.1",
           "--no-browser", "--no-reload"]
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(cmd, cwd=workdir, env=env, stdout=log, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, start_new_session=True)
    base: str | None = None
    try:
        deadline = time.monotonic() + START_TIMEOUT_S
        while True:
            if proc.poll() is not None:
                pytest.fail(f"langgraph dev exited with {proc.returncode}:\n{log_path.read_text()[-4000:]}")
            if base is None:
                # the server silently moves to another port when ours was taken in the meantime:
                # talk to the one it announces, never to whatever else listens on ours
                m = API_URL.search(log_path.read_text(errors="replace"))
                base = m.group(1) if m else None
            if base is not None:
                try:
                    if httpx.get(f"{base}/ok", timeout=2.0).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
            if time.monotonic() > deadline:
                pytest.fail(f"langgraph dev not up after {START_TIMEOUT_S:.0f} s:\n{log_path.read_text()[-4000:]}")
            time.sleep(POLL_S)
        yield base
    finally:
        _stop(proc)
    assert had_api_dir or not (REPO / ".langgraph_api").exists(), "the dev server wrote into the repository"


def _post(base: str, path: str, body: dict[str, Any]) -> Any:
    r = httpx.post(f"{base}{path}", json=body, timeout=RUN_TIMEOUT_S)
    assert r.status_code == 200, f"POST {path}: {r.status_code} {r.text[:2000]}"
    return r.json()


def _get(base: str, path: str) -> Any:
    r = httpx.get(f"{base}{path}", timeout=RUN_TIMEOUT_S)
    assert r.status_code == 200, f"GET {path}: {r.status_code} {r.text[:2000]}"
    return r.json()


def _start(base: str) -> tuple[str, dict[str, Any]]:
    """A new thread run up to its first interrupt; returns the thread id and the interrupt's value."""
    thread = _post(base, "/threads", {})["thread_id"]
    out = _post(base, f"/threads/{thread}/runs/wait",
                {"assistant_id": "stratus", "input": {"alerts": []}, "context": CONTEXT})
    assert out.get("__interrupt__"), f"no approval interrupt: {json.dumps(out)[:2000]}"
    return thread, out["__interrupt__"][0]["value"]


def _resume(base: str, thread: str, answer: Any) -> dict[str, Any]:
    return _post(base, f"/threads/{thread}/runs/wait",
                 {"assistant_id": "stratus", "command": {"resume": answer}, "context": CONTEXT})


def test_graph_has_the_approval_and_undo_nodes(server: str) -> None:
    graph = _get(server, "/assistants/stratus/graph")
    nodes = {n["id"] for n in graph["nodes"]}
    assert {"approve", "undo", "validate"} <= nodes
    edges = {(e["source"], e["target"]) for e in graph["edges"]}
    assert ("snapshot", "approve") in edges and ("approve", "execute") in edges


def test_approval_interrupt_over_http(server: str) -> None:
    approved, ask = _start(server)
    rejected, ask_b = _start(server)
    for value in (ask, ask_b):
        assert value["actions"], value
        kubectl = [a["kubectl"] for a in value["actions"]]
        assert kubectl[0].startswith(FIX), kubectl
        assert all(a["dry_run_ok"] and "dry run" in a["dry_run"] for a in value["actions"]), value
        assert value["hypothesis"]["component"] == "geo"
        assert value["incident"].startswith("inc-")

    # reject: that plan is never run; the graph asks about its next plan instead
    out = _resume(server, rejected, "reject")
    assert out.get("__interrupt__"), f"expected the next plan to be asked about: {json.dumps(out)[:2000]}"
    nxt = [a["kubectl"] for a in out["__interrupt__"][0]["value"]["actions"]]
    assert not any(k.startswith(FIX) for k in nxt), nxt
    state = _get(server, f"/threads/{rejected}/state")
    assert state["next"] == ["approve"]
    fix_txs = [t for t in state["values"].get("transactions") or [] if any(FIX in k for k in t["kubectl"])]
    assert [(t["status"], t["results"]) for t in fix_txs] == [("refused", [])], fix_txs  # never applied
    assert any(FIX in r for r in state["values"]["reflections"]), state["values"]["reflections"]  # recorded

    # approve: the fix runs as a transaction and is committed
    out = _resume(server, approved, "approve")
    assert not out.get("__interrupt__"), json.dumps(out)[:2000]
    assert out["report"]["outcome"] == "resolved", out["report"]
    committed = [t for t in out["transactions"] if t["status"] == "committed"]
    assert committed and committed[-1]["kubectl"][0].startswith(FIX), out["transactions"]
    state = _get(server, f"/threads/{approved}/state")
    assert state["next"] == []
    history = _post(server, f"/threads/{approved}/history", {"limit": 100})
    ran = {task["name"] for snap in history for task in snap.get("tasks") or []}
    assert {"approve", "begin", "execute", "validate", "report"} <= ran
