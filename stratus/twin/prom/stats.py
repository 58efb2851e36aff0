"""Order statistics and moments shared by functions and aggregations.

The counterpart of Prometheus' ``promql/quantile.go`` (``quantile``, ``bucketQuantile``) and
``util/kahansum``: :func:`quantile` for ``quantile``/``quantile_over_time``/``mad_over_time``,
:func:`bucket_quantile` for ``histogram_quantile`` over classic buckets, and :func:`variance` (Welford's
online algorithm with Kahan-Neumaier compensated sums) for ``stddev``/``stdvar`` and their ``_over_time``
forms, which makes the variance of a constant series exactly 0.
"""

# ruff: noqa: PLR0124  (x != x is the NaN test)
from __future__ import annotations

import math
from collections.abc import Iterable

_INF = math.inf
_NAN = math.nan


def quantile(q: float, values: list[float]) -> float:
    """Prometheus ``quantile`` (linear interpolation between closest ranks)."""
    if not values:
        return _NAN
    if q != q:
        return _NAN
    if q < 0:
        return -_INF
    if q > 1:
        return _INF
    xs = sorted(values)
    n = len(xs)
    rank = q * (n - 1)
    lower = max(0, math.floor(rank))
    upper = min(n - 1, lower + 1)
    w = rank - math.floor(rank)
    return xs[lower] * (1 - w) + xs[upper] * w


def bucket_quantile(q: float, buckets: list[tuple[float, float]]) -> float:
    """Classic-histogram quantile exactly as Prometheus' ``bucketQuantile``."""
    if q != q:
        return _NAN
    if q < 0:
        return -_INF
    if q > 1:
        return _INF
    buckets.sort(key=lambda b: b[0])
    if not buckets or buckets[-1][0] != _INF:
        return _NAN
    # coalesce equal upper bounds
    merged: list[list[float]] = []
    for ub, c in buckets:
        if merged and merged[-1][0] == ub:
            merged[-1][1] += c
        else:
            merged.append([ub, c])
    # enforce monotonic counts
    mx = -_INF
    for bucket in merged:
        if bucket[1] < mx:
            bucket[1] = mx
        else:
            mx = bucket[1]
    if len(merged) < 2:
        return _NAN
    observations = merged[-1][1]
    if observations == 0 or observations != observations:
        return _NAN
    rank = q * observations
    b = 0
    while b < len(merged) - 1 and merged[b][1] < rank:
        b += 1
    if b == len(merged) - 1:
        return merged[-2][0]
    if b == 0 and merged[0][0] <= 0:
        return merged[0][0]
    start = 0.0
    end = merged[b][0]
    count = merged[b][1]
    if b > 0:
        start = merged[b - 1][0]
        count -= merged[b - 1][1]
        rank -= merged[b - 1][1]
    if count == 0:
        return start
    return start + (end - start) * (rank / count)


def parse_le(s: str) -> float | None:
    """A bucket's ``le`` label as a float (``None`` if it is not a number)."""
    s = s.strip()
    try:
        if s in ("+Inf", "Inf", "+inf", "inf"):
            return _INF
        return float(s)
    except ValueError:
        return None


def kahan_inc(inc: float, total: float, c: float) -> tuple[float, float]:
    """Add ``inc`` to a compensated sum ``(total, c)`` (Kahan with Neumaier's improvement)."""
    t = total + inc
    if t == _INF or t == -_INF:
        c = 0.0
    elif abs(total) >= abs(inc):
        c += (total - t) + inc
    else:
        c += (inc - t) + total
    return t, c


def variance(values: Iterable[float]) -> float:
    """Population variance by Welford's online algorithm over compensated sums (exactly 0 if constant)."""
    count = 0.0
    mean = c_mean = 0.0
    aux = c_aux = 0.0
    for x in values:
        count += 1
        delta = x - (mean + c_mean)
        mean, c_mean = kahan_inc(delta / count, mean, c_mean)
        aux, c_aux = kahan_inc(delta * (x - (mean + c_mean)), aux, c_aux)
    return (aux + c_aux) / count
