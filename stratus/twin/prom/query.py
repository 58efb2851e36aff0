"""Instant and range queries: the Prometheus HTTP API's query endpoints over the twin's TSDB.

:func:`evaluate` (``/api/v1/query``), :func:`evaluate_range` (``/api/v1/query_range``) and
:func:`select_series` (``/api/v1/series``) return the API's ``data`` objects, with Prometheus' result
ordering and error texts; :func:`eval_instant` returns plain Python values for callers inside the twin
(the rule evaluator). Expressions are compiled by :mod:`.parser` and evaluated by the nodes of
:mod:`.engine`.
"""

from __future__ import annotations

import math
from bisect import bisect_left

from ..tsdb import TSDB
from .aggregations import Agg
from .engine import LOOKBACK_DELTA, Ctx, MatrixSel, Node, VectorSel, unwrap
from .functions import Call
from .parser import compile_expr
from .value import Matrix, PromQLError, String, format_time, format_value, label_key

MAX_POINTS = 11000


def _top_keeps_order(node: Node) -> bool:
    node = unwrap(node)
    if isinstance(node, Call) and node.name in ("sort", "sort_desc", "sort_by_label", "sort_by_label_desc"):
        return True
    return isinstance(node, Agg) and node.op in ("topk", "bottomk")


def eval_instant(db: TSDB, expr: str, at: float, lookback: float = LOOKBACK_DELTA):
    """Evaluate at ``at`` and return python values.

    vector -> ``list[(labels: dict, value: float)]`` (label dicts are shared, do not mutate);
    scalar -> ``float``; string -> ``str``; matrix -> ``list[(labels, [(t, v), ...])]``.
    """
    node = compile_expr(expr)
    at = float(at)
    v = node.ev(Ctx(db, at, at, lookback), at)
    if isinstance(v, Matrix):
        return [(lab, list(zip(ts[lo:hi], vs[lo:hi]))) for lab, ts, vs, lo, hi, _s in v]
    if isinstance(v, String):
        return str(v)
    if isinstance(v, list):
        return list(v)
    return v


def evaluate(db: TSDB, expr: str, at: float, lookback: float = LOOKBACK_DELTA) -> dict:
    """Instant query; returns the Prometheus API ``data`` object."""
    node = compile_expr(expr)
    at = float(at)
    v = node.ev(Ctx(db, at, at, lookback), at)
    ft = format_time(at)
    if isinstance(v, String):
        return {"resultType": "string", "result": [ft, str(v)]}
    if isinstance(v, float):
        return {"resultType": "scalar", "result": [ft, format_value(v)]}
    if isinstance(v, Matrix):
        items = sorted(v, key=lambda x: label_key(x[0]))
        return {
            "resultType": "matrix",
            "result": [
                {"metric": dict(label_key(lab)), "values": [[format_time(ts[i]), format_value(vs[i])] for i in range(lo, hi)]}
                for lab, ts, vs, lo, hi, _s in items
            ],
        }
    if not _top_keeps_order(node):
        v = sorted(v, key=lambda x: label_key(x[0]))
    return {
        "resultType": "vector",
        "result": [{"metric": dict(label_key(lab)), "value": [ft, format_value(x)]} for lab, x in v],
    }


def evaluate_range(db: TSDB, expr: str, start: float, end: float, step: float,
                   lookback: float = LOOKBACK_DELTA) -> dict:
    """Range query; returns the Prometheus API ``data`` object (always a matrix, series sorted by labels)."""
    start, end, step = float(start), float(end), float(step)
    if end < start:
        raise PromQLError("end timestamp must not be before start time")
    if step <= 0:
        raise PromQLError("zero or negative query resolution step widths are not accepted. Try a positive integer")
    if (end - start) / step > MAX_POINTS:
        raise PromQLError(
            "exceeded maximum resolution of 11,000 points per timeseries. Try decreasing the query resolution (?step=XX)"
        )
    node = compile_expr(expr)
    if node.kind == "matrix":
        raise PromQLError('invalid parameter "query": invalid expression type "range vector" for range query, '
                          "must be Scalar or instant Vector")
    if node.kind == "string":
        raise PromQLError('invalid parameter "query": invalid expression type "string" for range query, '
                          "must be Scalar or instant Vector")
    ctx = Ctx(db, start, end, lookback)
    series: dict[tuple, tuple[dict, list]] = {}
    n = math.floor((end - start) / step + 1e-9) + 1
    for i in range(n):
        t = start + i * step
        v = node.ev(ctx, t)
        ft = format_time(t)
        if isinstance(v, float):
            v = [({}, v)]
        for lab, x in v:
            k = label_key(lab)
            e = series.get(k)
            if e is None:
                e = series[k] = (lab, [])
            e[1].append([ft, format_value(x)])
    return {
        "resultType": "matrix",
        "result": [{"metric": dict(k), "values": series[k][1]} for k in sorted(series)],
    }


def select_series(db: TSDB, selector: str, start: float | None = None, end: float | None = None) -> list[dict]:
    """Label sets of series matching a selector (``/api/v1/series``), optionally with a sample in [start, end]."""
    node = compile_expr(selector)
    node = unwrap(node)
    if isinstance(node, MatrixSel):
        node = node.vs
    if not isinstance(node, VectorSel):
        raise PromQLError('invalid parameter "match[]": expected a vector selector')
    out = []
    for s in node.select(db):
        if start is not None or end is not None:
            lo = -math.inf if start is None else start
            hi = math.inf if end is None else end
            ts = s.ts
            i = bisect_left(ts, lo)
            if i >= len(ts) or ts[i] > hi:
                continue
        out.append(dict(s.labels.key()))
    return out
