"""Prometheus remote-write from the twin's TSDB: its series at their simulated timestamps, staleness included.

A scrape stamps samples with the scraper's wall clock, so a simulated-time twin can only hand its
history to a real Prometheus by pushing it. :class:`RemoteWriter` sends every sample the TSDB gained
since its last push as remote-write 1.0 ``WriteRequest`` messages (protobuf, snappy block compression,
``X-Prometheus-Remote-Write-Version: 0.1.0``), to a Prometheus started with
``--web.enable-remote-write-receiver`` (``/api/v1/write``) or any other receiver. A series the twin saw
vanish (the TSDB's staleness marker) is sent Prometheus' staleness marker, the NaN with bits
``0x7ff0000000000002``, so the receiver drops it from instant queries right then, as after a scrape.

The receiver must get each series' samples in time order and, for a Prometheus TSDB, no more than about
an hour behind its newest sample: push as the simulation advances (every few simulated minutes), not
all at the end. The rule evaluator's series (``ALERTS``...) stay home: the receiver evaluates its own.

``WriteRequest`` and its parts are built from a descriptor of ``prompb/types.proto`` and
``prompb/remote.proto`` (the fields remote-write 1.0 uses), so no generated code is needed.
"""

from __future__ import annotations

import struct
from typing import Any

import cramjam
import httpx
from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

from ..tsdb import TSDB
from .exposition import RULE_SERIES

STALE_NAN = struct.unpack("<d", struct.pack("<Q", 0x7FF0000000000002))[0]
HEADERS = {
    "Content-Encoding": "snappy",
    "Content-Type": "application/x-protobuf",
    "X-Prometheus-Remote-Write-Version": "0.1.0",
    "User-Agent": "stratus-twin-remote-write",
}
MAX_SAMPLES_PER_REQUEST = 5000
TIMEOUT_S = 30.0

_F = descriptor_pb2.FieldDescriptorProto


def _message_classes() -> dict[str, Any]:
    fdp = descriptor_pb2.FileDescriptorProto(name="stratus_prompb.proto", package="prometheus", syntax="proto3")
    layout: dict[str, list[tuple[str, int, int, str | None, bool]]] = {
        "Label": [("name", 1, _F.TYPE_STRING, None, False), ("value", 2, _F.TYPE_STRING, None, False)],
        "Sample": [("value", 1, _F.TYPE_DOUBLE, None, False), ("timestamp", 2, _F.TYPE_INT64, None, False)],
        "TimeSeries": [("labels", 1, _F.TYPE_MESSAGE, ".prometheus.Label", True),
                       ("samples", 2, _F.TYPE_MESSAGE, ".prometheus.Sample", True)],
        "WriteRequest": [("timeseries", 1, _F.TYPE_MESSAGE, ".prometheus.TimeSeries", True)],
    }
    for msg_name, fields in layout.items():
        msg = fdp.message_type.add(name=msg_name)
        for name, number, typ, type_name, repeated in fields:
            f = msg.field.add(name=name, number=number, type=typ,
                              label=_F.LABEL_REPEATED if repeated else _F.LABEL_OPTIONAL)
            if type_name:
                f.type_name = type_name
    pool = descriptor_pool.DescriptorPool()
    pool.Add(fdp)
    return {name: message_factory.GetMessageClass(pool.FindMessageTypeByName(f"prometheus.{name}"))
            for name in layout}


_CLASSES = _message_classes()
WriteRequest = _CLASSES["WriteRequest"]


class RemoteWriteError(RuntimeError):
    """The receiver refused a push (its answer is in the message)."""


def encode(request: Any) -> bytes:
    """A ``WriteRequest`` as a remote-write body: protobuf, then snappy block format."""
    return bytes(cramjam.snappy.compress_raw(request.SerializeToString()))


def decode(body: bytes) -> Any:
    """A remote-write body back to a ``WriteRequest`` (what a receiver does)."""
    req = WriteRequest()
    req.ParseFromString(bytes(cramjam.snappy.decompress_raw(body)))
    return req


def series_since(db: TSDB, since: float | None, until: float) -> list[tuple[dict[str, str], list[tuple[float, float]]]]:
    """Each series' samples and staleness markers in ``(since, until]``, time-ordered, rule series left out.

    Returns ``(labels with __name__, [(time, value), ...])``; a marker is a ``(time, STALE_NAN)`` point.
    """
    out = []
    lo = float("-inf") if since is None else since
    for s in db.all_series():
        if s.name in RULE_SERIES:
            continue
        i, j = s.window(lo, until)
        points = [(s.ts[k], s.vs[k]) for k in range(i, j)]
        points += [(t, STALE_NAN) for t in s.stale if lo < t <= until]
        if points:
            points.sort(key=lambda p: p[0])
            out.append((dict(s.labels), points))
    return out


def write_requests(series: list[tuple[dict[str, str], list[tuple[float, float]]]],
                   max_samples: int = MAX_SAMPLES_PER_REQUEST) -> list[Any]:
    """Pack series into ``WriteRequest`` messages of at most ``max_samples`` samples each."""
    requests: list[Any] = []
    req, n = WriteRequest(), 0
    for labels, points in series:
        for start in range(0, len(points), max_samples):
            chunk = points[start:start + max_samples]
            if n and n + len(chunk) > max_samples:
                requests.append(req)
                req, n = WriteRequest(), 0
            ts = req.timeseries.add()
            for name in sorted(labels):
                ts.labels.add(name=name, value=labels[name])
            for t, v in chunk:
                ts.samples.add(value=v, timestamp=round(t * 1000))
            n += len(chunk)
    if n:
        requests.append(req)
    return requests


class RemoteWriter:
    """Pushes a TSDB's new samples to one remote-write URL, remembering how far it got."""

    def __init__(self, url: str, headers: dict[str, str] | None = None,
                 max_samples: int = MAX_SAMPLES_PER_REQUEST) -> None:
        self.url = url
        self.max_samples = max_samples
        self.http = httpx.Client(timeout=TIMEOUT_S, headers={**HEADERS, **(headers or {})})
        self.sent_until: float | None = None
        self.samples_sent = 0

    def push(self, db: TSDB, until: float) -> int:
        """Send everything in ``(last push, until]``; returns the number of samples (markers included)."""
        sent = 0
        for req in write_requests(series_since(db, self.sent_until, until), self.max_samples):
            r = self.http.post(self.url, content=encode(req))
            if r.status_code >= 300:
                raise RemoteWriteError(f"remote write to {self.url} refused (HTTP {r.status_code}): "
                                       f"{r.text.strip()[:300]}")
            sent += sum(len(ts.samples) for ts in req.timeseries)
        self.sent_until = until
        self.samples_sent += sent
        return sent

    def close(self) -> None:
        """Close the HTTP client."""
        self.http.close()
