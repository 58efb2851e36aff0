"""Remote-write encoding of the twin's TSDB: protobuf and snappy round trip, staleness markers, batching."""

from __future__ import annotations

import math
import struct

from stratus.twin.prom.remote_write import STALE_NAN, decode, encode, series_since, write_requests
from stratus.twin.tsdb import TSDB


def _db() -> TSDB:
    db = TSDB()
    db.add_many([("up", {"job": "a"}, 1.0), ("up", {"job": "b"}, 1.0)], 10.0)
    db.add_many([("up", {"job": "a"}, 0.0)], 25.0)  # job b vanished: the TSDB marks it stale at 25 s
    db.add_many([("ALERTS", {"alertname": "X", "alertstate": "firing"}, 1.0)], 25.0, target="rules")
    return db


def test_round_trip_keeps_labels_times_and_the_stale_nan_bits():
    req, = write_requests(series_since(_db(), None, 30.0))
    got = {tuple((lab.name, lab.value) for lab in ts.labels): [(s.timestamp, s.value) for s in ts.samples]
           for ts in decode(encode(req)).timeseries}
    assert set(got) == {(("__name__", "up"), ("job", "a")), (("__name__", "up"), ("job", "b"))}
    assert got[(("__name__", "up"), ("job", "a"))] == [(10000, 1.0), (25000, 0.0)]
    (t1, v1), (t2, v2) = got[(("__name__", "up"), ("job", "b"))]
    assert (t1, v1, t2) == (10000, 1.0, 25000)
    assert math.isnan(v2) and struct.pack("<d", v2) == struct.pack("<Q", 0x7FF0000000000002)
    assert struct.pack("<d", STALE_NAN) == struct.pack("<d", v2)


def test_window_is_left_open_and_skips_rule_series():
    later = series_since(_db(), 10.0, 30.0)
    assert {lab["job"]: pts for lab, pts in later}.keys() == {"a", "b"}
    assert all(t > 10.0 for _, pts in later for t, _ in pts)
    assert series_since(_db(), 25.0, 30.0) == []


def test_batches_hold_at_most_max_samples():
    db = TSDB(retention_s=10_000)
    for k in range(25):
        db.add_many([("g", {"i": str(i)}, float(k)) for i in range(4)], float(k))
    reqs = write_requests(series_since(db, None, 100.0), max_samples=30)
    sizes = [sum(len(ts.samples) for ts in r.timeseries) for r in reqs]
    assert sum(sizes) == 100 and max(sizes) <= 30
