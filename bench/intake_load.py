"""Intake load of ``stratus serve``: N alerts/s for S seconds on loopback, then count what was stored.

    uv run python bench/intake_load.py [--rate 200] [--seconds 30] [--restart-at S] [--db PATH|DSN] [--json]

Starts its own ``stratus serve --workers 0`` (intake only, so graph runs do not compete for the CPU) on
a free loopback port with a fresh SQLite store (or ``--db``), or uses ``--url`` of a running one. Sends
an open-loop schedule: request i leaves at ``i / rate`` s, each a webhook payload of one new alert
group, except every fifth, which re-sends an earlier group (Alertmanager's repeat notifications).
Reports the time to 202 (p50, p99, max) as the client sees it and as the server's own histogram
(``stratus_intake_seconds``) sees it, the share of requests the client sent late (its own loop starved),
the server's CPU seconds, the load average before and after, and, from the store afterwards, groups lost
(answered 202 but not stored) and duplicated (one group stored as more than one incident). Bodies are
serialised before the clock starts, so the generator's per-request cost is a socket write and a read.

``--restart-at S`` kills the server with SIGKILL S seconds into the run and starts it again on the
same port and store; requests that fail meanwhile are retried (bounded), as Alertmanager retries.
Every group answered 202 before or after the restart must be in the store, exactly once.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
import uvloop  # uvicorn[standard]'s loop: the generator's own per-request cost stays small

from stratus.serve.store import IntakeStore

ROOT = Path(__file__).resolve().parent.parent
RETRY_FOR_S = 60.0  # how long one request keeps retrying while the server is down
REPEAT_EVERY = 5


def payload(group: int) -> dict[str, Any]:
    ns = f"load-{group % 50}"
    return {"version": "4", "groupKey": f'{{}}:{{group="{group}"}}', "status": "firing", "receiver": "stratus",
            "groupLabels": {"group": str(group)}, "commonLabels": {"namespace": ns}, "truncatedAlerts": 0,
            "alerts": [{"status": "firing", "startsAt": "2026-01-01T00:00:00Z",
                        "labels": {"alertname": "KubePodCrashLooping", "namespace": ns, "pod": f"p-{group}-{i}",
                                   "group": str(group)}} for i in range(2)]}


class Server:
    """A ``stratus serve --workers 0`` subprocess on loopback (stopped by its PID)."""

    def __init__(self, db: str, port: int, log: Path) -> None:
        self.db, self.port, self.log = db, port, log
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        cmd = [sys.executable, "-m", "stratus.cli", "serve", "--db", self.db, "--port", str(self.port),
               "--workers", "0", "--twin-poll-s", "0", "--log-level", "warning"]
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(cmd, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise SystemExit(f"stratus serve exited {self.proc.returncode}; see {self.log}")
            try:
                if httpx.get(f"http://127.0.0.1:{self.port}/healthz", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        raise SystemExit(f"stratus serve did not answer within 120 s; see {self.log}")

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(30)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.kill()


class Connection:
    """One keep-alive HTTP/1.1 connection written by hand: httpx's per-request cost would make the client,
    not the server, the bottleneck of a 2-core machine."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def post(self, body: bytes) -> int:
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection("127.0.0.1", self.port)
        assert self.reader is not None
        head = (f"POST /api/v1/alerts HTTP/1.1\r\nHost: 127.0.0.1:{self.port}\r\nContent-Type: application/json\r\n"
                f"Content-Length: {len(body)}\r\n\r\n").encode()
        self.writer.write(head + body)
        await self.writer.drain()
        status = int((await self.reader.readline()).split()[1])
        length = 0
        while (line := await self.reader.readline()) not in (b"\r\n", b""):
            name, _, value = line.decode().partition(":")
            if name.lower() == "content-length":
                length = int(value)
        await self.reader.readexactly(length)
        return status

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
        self.reader = self.writer = None


async def send(conn: Connection, group: int, body: bytes, out: dict[str, Any]) -> None:
    """POST one group until a 202 (bounded by ``RETRY_FOR_S``); record the latency of the answered try."""
    deadline = time.monotonic() + RETRY_FOR_S
    while time.monotonic() < deadline:
        t0 = time.perf_counter()
        try:
            status = await asyncio.wait_for(conn.post(body), timeout=10)
        except (TimeoutError, OSError, asyncio.IncompleteReadError, IndexError, ValueError):
            conn.close()  # the server went away mid-request: reconnect and send again (a group is idempotent)
            out["retries"] += 1
            await asyncio.sleep(0.2)
            continue
        if status == 202:
            out["latency"].append(time.perf_counter() - t0)
            out["accepted"].add(group)
            return
        out["errors"][status] += 1
        return
    out["gave_up"] += 1


async def run_load(port: int, rate: float, seconds: float, restart: Any = None, restart_at: float | None = None,
                   connections: int = 64) -> dict[str, Any]:
    """Open loop: request i is due at ``i / rate`` s and goes out on the next free connection."""
    out: dict[str, Any] = {"latency": [], "accepted": set(), "errors": Counter(), "retries": 0, "gave_up": 0,
                           "late": []}
    total = int(rate * seconds)
    groups = [i - REPEAT_EVERY * 10 if i % REPEAT_EVERY == 4 and i >= REPEAT_EVERY * 10 else i for i in range(total)]
    bodies = {g: json.dumps(payload(g)).encode() for g in set(groups)}
    queue: asyncio.Queue[int | None] = asyncio.Queue()

    async def worker() -> None:
        conn = Connection(port)
        while (group := await queue.get()) is not None:
            await send(conn, group, bodies[group], out)
        conn.close()

    workers = [asyncio.create_task(worker()) for _ in range(connections)]
    side: list[asyncio.Task[None]] = []
    t0 = time.monotonic()
    restarted = restart_at is None
    for i in range(total):
        due = t0 + i / rate
        await asyncio.sleep(max(0.0, due - time.monotonic()))
        out["late"].append(max(0.0, time.monotonic() - due))
        if restart_at is not None and not restarted and time.monotonic() - t0 >= restart_at:
            restarted = True
            side.append(asyncio.create_task(asyncio.to_thread(restart)))
        queue.put_nowait(groups[i])
    for _ in workers:
        queue.put_nowait(None)
    await asyncio.gather(*workers, *side)
    out["send_s"] = time.monotonic() - t0
    out["requests"] = total
    return out


def audit(db: str, accepted: set[int]) -> dict[str, int]:
    """Groups answered 202 but missing from the store, and groups stored as more than one incident."""
    store = IntakeStore(db)
    try:
        rows = store.incidents(limit=10_000_000)
    finally:
        store.close()
    per_group = Counter(r["group_key"] for r in rows)
    keys = {payload(g)["groupKey"] for g in accepted}
    return {"incidents": len(rows), "lost": sum(1 for k in keys if per_group[k] == 0),
            "duplicated": sum(1 for n in per_group.values() if n > 1)}


def server_figures(port: int, pid: int) -> dict[str, Any]:
    """The server's own view: its time-to-202 histogram (upper bucket bound of p50 and p99) and CPU seconds."""
    text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=30).text
    buckets = []
    for line in text.splitlines():
        if line.startswith("stratus_intake_seconds_bucket"):
            bound = line.split('le="')[1].split('"')[0]
            buckets.append((float(bound), float(line.rsplit(" ", 1)[1])))
    total = buckets[-1][1] if buckets else 0.0

    def at_most(share: float) -> float | None:
        return next((b * 1000 for b, n in buckets if total and n >= share * total), None)

    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    cpu_s = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime + stime
    return {"server_p50_ms_at_most": at_most(0.5), "server_p99_ms_at_most": at_most(0.99),
            "server_cpu_s": round(cpu_s, 2)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rate", type=float, default=200.0, help="requests per second")
    ap.add_argument("--seconds", type=float, default=30.0)
    ap.add_argument("--db", help="store of the server this script starts (default: a fresh SQLite file)")
    ap.add_argument("--restart-at", type=float, help="SIGKILL and restart the server this many seconds in")
    ap.add_argument("--json", action="store_true", help="print the figures as one JSON object")
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="stratus-load-"))
    db = args.db or str(tmp / "load.db")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = int(s.getsockname()[1])
    server = Server(db, port, tmp / "serve.log")
    server.start()

    def restart() -> None:
        server.kill()
        server.start()

    load_before = os.getloadavg()
    try:
        coro = run_load(port, args.rate, args.seconds, restart, args.restart_at)
        res = uvloop.run(coro)
        assert server.proc is not None
        seen_by_server = server_figures(port, server.proc.pid)
    finally:
        server.stop()
    load_after = os.getloadavg()
    lat = sorted(res["latency"])
    q = statistics.quantiles(lat, n=100, method="inclusive") if len(lat) >= 2 else [0.0] * 99
    figures = {"rate": args.rate, "seconds": args.seconds, "requests": res["requests"], "answered_202": len(lat),
               "distinct_groups_accepted": len(res["accepted"]), **audit(db, res["accepted"]),
               "p50_ms": round(q[49] * 1000, 2), "p99_ms": round(q[98] * 1000, 2),
               "max_ms": round(lat[-1] * 1000, 2) if lat else None, "send_s": round(res["send_s"], 2),
               "client_late_p99_ms": round(sorted(res["late"])[int(0.99 * (len(res["late"]) - 1))] * 1000, 2),
               "retries": res["retries"], "gave_up": res["gave_up"], "errors": dict(res["errors"]),
               "restart_at": args.restart_at, "db": "postgresql" if db.startswith("postgres") else "sqlite",
               **seen_by_server, "load_before": [round(x, 2) for x in load_before],
               "load_after": [round(x, 2) for x in load_after], "cpus": os.cpu_count()}
    print(json.dumps(figures) if args.json else "\n".join(f"{k:26s} {v}" for k, v in figures.items()))
    if figures["lost"] or figures["duplicated"] or res["gave_up"]:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
