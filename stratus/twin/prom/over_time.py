"""PromQL functions over range vectors: the ``rate`` family, ``*_over_time``, ``deriv``, ``predict_linear``.

Registered into :data:`.functions.FUNCTIONS` with ``@function``. ``rate``/``increase``/``delta`` use
Prometheus' ``extrapolatedRate`` (threshold 1.1 x average spacing, counter zero-point clamp, counter-reset
correction); over a plain matrix selector they read the store's arrays directly instead of building a
:class:`~.value.Matrix`. ``stddev_over_time``/``stdvar_over_time`` use the compensated Welford variance of
:mod:`.stats`.
"""

# ruff: noqa: PLR0124  (x != x is the NaN test)
from __future__ import annotations

import math
from bisect import bisect_right

from ..tsdb import Labels
from .engine import Ctx, MatrixSel, ref_time
from .functions import function
from .stats import quantile, variance
from .value import Matrix, drop_name


def _extrapolate(ts, vs, lo: int, hi: int, rs: float, re_: float, rng: float, is_counter: bool, is_rate: bool,
                 check_resets: bool) -> float:
    """Prometheus' extrapolatedRate over samples ``ts[lo:hi]`` of a window (rs, re_]."""
    t0 = ts[lo]
    tl = ts[hi - 1]
    v0 = vs[lo]
    result = vs[hi - 1] - v0
    if is_counter and check_resets:
        prev = v0
        for i in range(lo + 1, hi):
            cur = vs[i]
            if cur < prev:
                result += prev
            prev = cur
    sampled = tl - t0
    avg = sampled / (hi - lo - 1)
    dstart = t0 - rs
    dend = re_ - tl
    thresh = avg * 1.1
    if dstart >= thresh:
        dstart = avg / 2
    if is_counter and result > 0 and v0 >= 0:
        dstart = min(dstart, sampled * (v0 / result))
    if dend >= thresh:
        dend = avg / 2
    factor = (sampled + dstart + dend) / sampled
    if is_rate:
        factor /= rng
    return result * factor


def _extrapolated(m: Matrix, is_counter: bool, is_rate: bool):
    out = []
    rs, re_, rng = m.start, m.end, m.range
    for lab, ts, vs, lo, hi, s in m:
        if hi - lo < 2:
            continue
        check = s is None or s.has_reset_in(ts[lo], ts[hi - 1])
        out.append((drop_name(lab), _extrapolate(ts, vs, lo, hi, rs, re_, rng, is_counter, is_rate, check)))
    return out


def _extrapolated_sel(msel: MatrixSel, ctx: Ctx, t: float, is_counter: bool, is_rate: bool):
    """``rate``/``increase``/``delta`` directly over a matrix selector (no intermediate matrix)."""
    vsel = msel.vs
    rng = msel.range
    re_ = ref_time(vsel.at, vsel.offset, ctx, t) if (vsel.at is not None or vsel.offset) else t
    rs = re_ - rng
    out: list[tuple[Labels, float]] = []
    app = out.append
    for s in vsel.select(ctx.db):
        ts = s.ts
        n = len(ts)
        if n < 2 or ts[-1] <= rs:
            continue
        hi = n if ts[-1] <= re_ else bisect_right(ts, re_)
        lo = bisect_right(ts, rs, 0, hi)
        if hi - lo < 2:
            continue
        check = bool(s.resets) and s.has_reset_in(ts[lo], ts[hi - 1])
        app((s.nn, _extrapolate(ts, s.vs, lo, hi, rs, re_, rng, is_counter, is_rate, check)))
    return out


def _instant_value(m: Matrix, is_rate: bool):
    out = []
    for lab, ts, vs, lo, hi, _s in m:
        if hi - lo < 2:
            continue
        last, prev = vs[hi - 1], vs[hi - 2]
        if is_rate and last < prev:
            d = last
        else:
            d = last - prev
        if is_rate:
            dt = ts[hi - 1] - ts[hi - 2]
            if dt == 0:
                continue
            d /= dt
        out.append((drop_name(lab), d))
    return out


def _over_time(fn, keep_name=False):
    """A function entry applying ``fn(vs, lo, hi, ts)`` to each series' window (skipped if it returns None)."""

    def run(args, ctx, t):
        out = []
        for lab, ts, vs, lo, hi, _s in args[0].ev(ctx, t):
            if hi <= lo:
                continue
            r = fn(vs, lo, hi, ts)
            if r is not None:
                out.append((lab if keep_name else drop_name(lab), r))
        return out

    return run


def _ot_sum(vs, lo, hi, ts):
    return math.fsum(vs[lo:hi])


def _ot_avg(vs, lo, hi, ts):
    return math.fsum(vs[lo:hi]) / (hi - lo)


def _ot_max(vs, lo, hi, ts):
    cur = vs[lo]
    for i in range(lo + 1, hi):
        x = vs[i]
        if x > cur or cur != cur:
            cur = x
    return cur


def _ot_min(vs, lo, hi, ts):
    cur = vs[lo]
    for i in range(lo + 1, hi):
        x = vs[i]
        if x < cur or cur != cur:
            cur = x
    return cur


def _ot_count(vs, lo, hi, ts):
    return float(hi - lo)


def _ot_last(vs, lo, hi, ts):
    return vs[hi - 1]


def _ot_first(vs, lo, hi, ts):
    return vs[lo]


def _ot_present(vs, lo, hi, ts):
    return 1.0


def _ot_stdvar(vs, lo, hi, ts):
    return variance(vs[lo:hi])


def _ot_stddev(vs, lo, hi, ts):
    return math.sqrt(variance(vs[lo:hi]))


def _ot_changes(vs, lo, hi, ts):
    c = 0
    prev = vs[lo]
    for i in range(lo + 1, hi):
        cur = vs[i]
        if cur != prev and not (cur != cur and prev != prev):
            c += 1
        prev = cur
    return float(c)


def _ot_resets(vs, lo, hi, ts):
    c = 0
    prev = vs[lo]
    for i in range(lo + 1, hi):
        cur = vs[i]
        if cur < prev:
            c += 1
        prev = cur
    return float(c)


def _linreg(ts, vs, lo, hi, intercept_time):
    n = hi - lo
    if n < 2:
        return None
    xs = [ts[i] - intercept_time for i in range(lo, hi)]
    ys = vs[lo:hi]
    mx = math.fsum(xs) / n
    my = math.fsum(ys) / n
    cov = math.fsum((x - mx) * (y - my) for x, y in zip(xs, ys))
    var = math.fsum((x - mx) ** 2 for x in xs)
    if var == 0:
        return None
    slope = cov / var
    return slope, my - slope * mx


def _extrapolating(is_counter: bool, is_rate: bool):
    def impl(args, ctx, t):
        if isinstance(args[0], MatrixSel):
            return _extrapolated_sel(args[0], ctx, t, is_counter, is_rate)
        return _extrapolated(args[0].ev(ctx, t), is_counter, is_rate)

    return impl


function("rate")(_extrapolating(is_counter=True, is_rate=True))
function("increase")(_extrapolating(is_counter=True, is_rate=False))
function("delta")(_extrapolating(is_counter=False, is_rate=False))


@function("irate")
def _irate(args, ctx, t):
    return _instant_value(args[0].ev(ctx, t), True)


@function("idelta")
def _idelta(args, ctx, t):
    return _instant_value(args[0].ev(ctx, t), False)


function("sum_over_time")(_over_time(_ot_sum))
function("avg_over_time")(_over_time(_ot_avg))
function("max_over_time")(_over_time(_ot_max))
function("min_over_time")(_over_time(_ot_min))
function("count_over_time")(_over_time(_ot_count))
function("last_over_time")(_over_time(_ot_last, keep_name=True))
function("first_over_time")(_over_time(_ot_first, keep_name=True))
function("present_over_time")(_over_time(_ot_present))
function("stddev_over_time")(_over_time(_ot_stddev))
function("stdvar_over_time")(_over_time(_ot_stdvar))
function("changes")(_over_time(_ot_changes))
function("resets")(_over_time(_ot_resets))


@function("quantile_over_time")
def _quantile_over_time(args, ctx, t):
    q = args[0].ev(ctx, t)
    return [(drop_name(lab), quantile(q, list(vs[lo:hi]))) for lab, ts, vs, lo, hi, _s in args[1].ev(ctx, t)
            if hi > lo]


@function("mad_over_time")
def _mad_over_time(args, ctx, t):
    out = []
    for lab, _ts, vs, lo, hi, _s in args[0].ev(ctx, t):
        if hi > lo:
            xs = list(vs[lo:hi])
            med = quantile(0.5, xs)
            out.append((drop_name(lab), quantile(0.5, [abs(x - med) for x in xs])))
    return out


@function("deriv")
def _deriv(args, ctx, t):
    out = []
    for lab, ts, vs, lo, hi, _s in args[0].ev(ctx, t):
        r = _linreg(ts, vs, lo, hi, ts[lo] if hi > lo else 0.0)
        if r is not None:
            out.append((drop_name(lab), r[0]))
    return out


@function("predict_linear")
def _predict_linear(args, ctx, t):
    m = args[0].ev(ctx, t)
    dur = args[1].ev(ctx, t)
    out = []
    for lab, ts, vs, lo, hi, _s in m:
        r = _linreg(ts, vs, lo, hi, m.end)
        if r is not None:
            out.append((drop_name(lab), r[1] + r[0] * dur))
    return out
