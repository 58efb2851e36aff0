"""PromQL evaluator over the twin's :class:`~stratus.twin.tsdb.TSDB`.

Parsing is done by ``promql_parser`` (Rust port of the Prometheus parser). The parser's AST is converted
once per expression string into small Python node objects (cached with ``lru_cache``), which are then
evaluated against the store. Semantics follow Prometheus 3.x:

* instant selectors return the newest sample in ``(t - 5m, t]`` unless a staleness marker hides it;
  range selectors select ``(t - range, t]`` (left-open); ``offset`` and ``@`` are honoured;
* ``rate``/``increase``/``delta`` use Prometheus' extrapolation (threshold 1.1 x average spacing, counter
  zero-point clamp, counter-reset correction);
* the metric name is dropped by arithmetic, ``bool`` comparisons, aggregations and most functions (kept by
  filtering comparisons, ``and/or/unless``, ``topk/bottomk``, ``last_over_time``, ``first_over_time``,
  ``sort*``, ``label_replace``, ``label_join``);
* vector matching with ``on``/``ignoring``/``group_left``/``group_right`` and Prometheus' error texts.

Public API: :func:`evaluate`, :func:`evaluate_range`, :func:`eval_instant`, :func:`compile_expr`,
:func:`select_series`, :func:`format_value`, :class:`PromQLError`.
"""

# ruff: noqa: PLR0124, PLR1730  (x != x is the NaN test; explicit ifs instead of min/max in hot loops)
from __future__ import annotations

import calendar
import math
import re
import time as _time
from bisect import bisect_left, bisect_right
from decimal import Decimal
from functools import lru_cache
from typing import ClassVar

import promql_parser as _pp

from .tsdb import TSDB, Labels, Series

__all__ = [
    "LOOKBACK_DELTA",
    "PromQLError",
    "compile_expr",
    "eval_instant",
    "evaluate",
    "evaluate_range",
    "format_time",
    "format_value",
    "select_series",
]

LOOKBACK_DELTA = 300.0
DEFAULT_SUBQUERY_STEP = 60.0  # Prometheus' default global evaluation_interval
MAX_POINTS = 11000

_INF = math.inf
_NAN = math.nan


class PromQLError(Exception):
    """Query error. ``error_type`` is the Prometheus API errorType (``bad_data`` | ``execution``)."""

    _HTTP: ClassVar[dict[str, int]] = {"bad_data": 400, "execution": 422, "timeout": 503, "canceled": 499, "internal": 500}

    def __init__(self, message: str, error_type: str = "bad_data"):
        super().__init__(message)
        self.message = message
        self.error_type = error_type

    @property
    def http_status(self) -> int:
        return self._HTTP.get(self.error_type, 500)

    def to_api(self) -> dict:
        """Prometheus API error envelope."""
        return {"status": "error", "errorType": self.error_type, "error": self.message}


def _exec_error(msg: str) -> PromQLError:
    return PromQLError(msg, "execution")


# ---------------------------------------------------------------------------------------------- values


class _String(str):
    """A PromQL string value."""


class _Matrix(list):
    """Range vector: list of (labels, ts, vs, lo, hi, series|None); window is (start, end]."""

    __slots__ = ("end", "range", "start")

    def __init__(self, start: float, end: float, rng: float):
        super().__init__()
        self.start = start
        self.end = end
        self.range = rng


def _nn(lab: dict) -> dict:
    """Labels without ``__name__`` (cached for store-owned Labels)."""
    if type(lab) is Labels:
        return lab.without_name()
    if "__name__" not in lab:
        return lab
    return {k: v for k, v in lab.items() if k != "__name__"}


def _lkey(lab: dict) -> tuple:
    if type(lab) is Labels:
        return lab.key()
    return tuple(sorted(lab.items()))


def _labels_str(lab: dict) -> str:
    return "{" + ", ".join(f'{k}="{v}"' for k, v in sorted(lab.items())) + "}"


# ---------------------------------------------------------------------------------------------- formatting


def format_value(v: float) -> str:
    """Sample value as Prometheus' JSON encodes it (Go ``strconv.FormatFloat(v, 'f', -1, 64)``)."""
    if v != v:
        return "NaN"
    if v == _INF:
        return "+Inf"
    if v == -_INF:
        return "-Inf"
    r = repr(float(v))
    if "e" in r:
        return format(Decimal(r), "f")
    if r.endswith(".0"):
        return r[:-2]
    return r


def format_time(t: float):
    """Timestamp as Prometheus' JSON encodes it (seconds, millisecond precision)."""
    ms = round(t * 1000)
    if ms % 1000 == 0:
        return ms // 1000
    return ms / 1000


# ---------------------------------------------------------------------------------------------- context


class _Ctx:
    __slots__ = ("cache", "db", "end", "lookback", "start")

    def __init__(self, db: TSDB, start: float, end: float, lookback: float = LOOKBACK_DELTA):
        self.db = db
        self.start = start
        self.end = end
        self.lookback = lookback
        self.cache = None
        if start == end:
            # Instant evaluation: share results of identical function/aggregation sub-expressions between
            # queries at the same time while the store is unchanged (alert rules repeat sub-expressions).
            if db._query_cache_version != db.version:
                db.query_cache = {}
                db._query_cache_version = db.version
            self.cache = db.query_cache


class _Cached:
    """Mixin: memoise ``_ev`` per (canonical expression, t, lookback) in the context's cache."""

    __slots__ = ()

    def ev(self, ctx, t):
        c = ctx.cache
        if c is None:
            return self._ev(ctx, t)
        k = (self.ckey, t, ctx.lookback, ctx.start)  # start: "@ start()" inside subqueries
        r = c.get(k)
        if r is None:
            r = c[k] = self._ev(ctx, t)
        return r


# ---------------------------------------------------------------------------------------------- matchers

_EQ, _NE, _RE, _NRE = 0, 1, 2, 3
# promql_parser enums are not hashable: key by their str()
_MATCH_OPS = {
    str(_pp.MatchOp.Equal): _EQ,
    str(_pp.MatchOp.NotEqual): _NE,
    str(_pp.MatchOp.Re): _RE,
    str(_pp.MatchOp.NotRe): _NRE,
}


def _compile_regex(pattern: str) -> re.Pattern:
    try:
        return re.compile(f"(?s:{pattern})")
    except re.error as e:
        raise PromQLError(f'invalid parameter "query": parse error: invalid regular expression {pattern!r}: {e}') from None


def _match_all(matchers, lab: dict) -> bool:
    for name, op, val, rx in matchers:
        v = lab.get(name, "")
        if op == _EQ:
            if v != val:
                return False
        elif op == _NE:
            if v == val:
                return False
        elif op == _RE:
            if rx.fullmatch(v) is None:
                return False
        elif rx.fullmatch(v) is not None:
            return False
    return True


# ---------------------------------------------------------------------------------------------- nodes


class _Node:
    __slots__ = ()
    kind = "vector"  # vector | scalar | matrix | string

    def ev(self, ctx: _Ctx, t: float):  # pragma: no cover - abstract
        raise NotImplementedError


class _Num(_Node):
    __slots__ = ("v",)
    kind = "scalar"

    def __init__(self, v: float):
        self.v = v

    def ev(self, ctx, t):
        return self.v


class _Str(_Node):
    __slots__ = ("v",)
    kind = "string"

    def __init__(self, v: str):
        self.v = _String(v)

    def ev(self, ctx, t):
        return self.v


def _at_offset(node_at, node_offset):
    offset = node_offset.total_seconds() if node_offset is not None else 0.0
    at = None
    if node_at is not None:
        if node_at.type == _pp.AtModifierType.Start:
            at = "start"
        elif node_at.type == _pp.AtModifierType.End:
            at = "end"
        else:
            at = node_at.at.timestamp()
    return at, offset


def _ref_time(at, offset, ctx, t):
    if at is not None:
        if at == "start":
            t = ctx.start
        elif at == "end":
            t = ctx.end
        else:
            t = at
    return t - offset


class _VectorSel(_Node):
    __slots__ = ("_cache", "at", "eq_labels", "matchers", "name", "offset")
    kind = "vector"

    def __init__(self, vs):
        self.name = vs.name
        ms = []
        for m in vs.matchers.matchers:
            op = _MATCH_OPS[str(m.op)]
            rx = _compile_regex(m.value) if op in (_RE, _NRE) else None
            ms.append((m.name, op, m.value, rx))
        if vs.matchers.or_matchers:
            raise PromQLError('invalid parameter "query": parse error: "or" inside selector braces is not supported')
        self.matchers = tuple(ms)
        self.at, self.offset = _at_offset(vs.at, vs.offset)
        self._cache = None
        # labels for absent(): equality matchers (excluding __name__), dropped if a label repeats
        eq: dict[str, str] = {}
        seen: set[str] = set()
        for name, op, val, _ in ms:
            if name == "__name__":
                continue
            if name in seen:
                eq.pop(name, None)
                continue
            seen.add(name)
            if op == _EQ:
                eq[name] = val
        self.eq_labels = eq

    def select(self, db: TSDB) -> list[Series]:
        name = self.name
        gen = db.name_generation(name) if name else db.generation
        c = self._cache
        if c is not None and c[0] == db.uid and c[1] == gen:
            return c[2]
        if name:
            cands = db.series(name)
        else:
            name_ms = [m for m in self.matchers if m[0] == "__name__"]
            cands = []
            for n in db.names():
                if _match_all(name_ms, {"__name__": n}):
                    cands.extend(db.series(n))
        ms = self.matchers
        out = [s for s in cands if _match_all(ms, s.labels)] if ms else cands
        out.sort(key=lambda s: s.labels.key())
        self._cache = (db.uid, gen, out)
        return out

    def ev(self, ctx, t):
        t = _ref_time(self.at, self.offset, ctx, t) if (self.at is not None or self.offset) else t
        lb = ctx.lookback
        out = []
        app = out.append
        for s in self.select(ctx.db):
            v = s.value_at(t, lb)
            if v is not None:
                app((s.labels, v))
        return out

    def timestamps(self, ctx, t):
        t = _ref_time(self.at, self.offset, ctx, t)
        out = []
        for s in self.select(ctx.db):
            ts = s.time_at(t, ctx.lookback)
            if ts is not None:
                out.append((s.labels.without_name(), ts))
        return out


class _MatrixSel(_Node):
    __slots__ = ("range", "vs")
    kind = "matrix"

    def __init__(self, vs: _VectorSel, rng: float):
        self.vs = vs
        self.range = rng

    def ev(self, ctx, t):
        vs = self.vs
        end = _ref_time(vs.at, vs.offset, ctx, t)
        start = end - self.range
        m = _Matrix(start, end, self.range)
        app = m.append
        for s in vs.select(ctx.db):
            ts = s.ts
            n = len(ts)
            if not n or ts[-1] <= start:
                continue
            lo, hi = s.window(start, end)
            if hi > lo:
                app((s.labels, ts, s.vs, lo, hi, s))
        return m


class _Subquery(_Node):
    __slots__ = ("at", "expr", "offset", "range", "step")
    kind = "matrix"

    def __init__(self, expr: _Node, rng: float, step: float | None, at, offset):
        self.expr = expr
        self.range = rng
        self.step = step
        self.at = at
        self.offset = offset

    def ev(self, ctx, t):
        end = _ref_time(self.at, self.offset, ctx, t)
        start = end - self.range
        step = self.step or DEFAULT_SUBQUERY_STEP
        # first step: the first multiple of step strictly after start (Prometheus aligns to absolute time)
        first = (math.floor(start / step) + 1) * step
        series: dict[tuple, list] = {}
        tt = first
        while tt <= end + 1e-9:
            v = self.expr.ev(ctx, tt)
            if isinstance(v, float):
                v = [({}, v)]
            for lab, val in v:
                k = _lkey(lab)
                e = series.get(k)
                if e is None:
                    e = series[k] = (lab, [], [])
                e[1].append(tt)
                e[2].append(val)
            tt += step
        m = _Matrix(start, end, self.range)
        for lab, ts, vs in series.values():
            m.append((lab, ts, vs, 0, len(ts), None))
        return m


class _Neg(_Node):
    __slots__ = ("expr", "kind")

    def __init__(self, expr: _Node):
        self.expr = expr
        self.kind = expr.kind

    def ev(self, ctx, t):
        v = self.expr.ev(ctx, t)
        if isinstance(v, float):
            return -v
        return [(_nn(lab), -x) for lab, x in v]


# ---------------------------------------------------------------------------------------------- functions


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


def _extrapolated(m: _Matrix, is_counter: bool, is_rate: bool):
    out = []
    rs, re_, rng = m.start, m.end, m.range
    for lab, ts, vs, lo, hi, s in m:
        if hi - lo < 2:
            continue
        check = s is None or s.has_reset_in(ts[lo], ts[hi - 1])
        out.append((_nn(lab), _extrapolate(ts, vs, lo, hi, rs, re_, rng, is_counter, is_rate, check)))
    return out


def _extrapolated_sel(msel: _MatrixSel, ctx: _Ctx, t: float, is_counter: bool, is_rate: bool):
    """``rate``/``increase``/``delta`` directly over a matrix selector (no intermediate matrix)."""
    vsel = msel.vs
    rng = msel.range
    re_ = _ref_time(vsel.at, vsel.offset, ctx, t) if (vsel.at is not None or vsel.offset) else t
    rs = re_ - rng
    out = []
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


def _instant_value(m: _Matrix, is_rate: bool):
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
        out.append((_nn(lab), d))
    return out


def _over_time(fn, keep_name=False):
    def run(m: _Matrix):
        out = []
        for lab, ts, vs, lo, hi, _s in m:
            if hi <= lo:
                continue
            r = fn(vs, lo, hi, ts)
            if r is not None:
                out.append((lab if keep_name else _nn(lab), r))
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
    xs = vs[lo:hi]
    mean = math.fsum(xs) / len(xs)
    return math.fsum((x - mean) ** 2 for x in xs) / len(xs)


def _ot_stddev(vs, lo, hi, ts):
    return math.sqrt(_ot_stdvar(vs, lo, hi, ts))


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


def _quantile(q: float, values: list[float]) -> float:
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


def _bucket_quantile(q: float, buckets: list[tuple[float, float]]) -> float:
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
    for b in merged:
        if b[1] < mx:
            b[1] = mx
        else:
            mx = b[1]
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


def _parse_le(s: str) -> float | None:
    s = s.strip()
    try:
        if s in ("+Inf", "Inf", "+inf", "inf"):
            return _INF
        return float(s)
    except ValueError:
        return None


def _go_expand(template: str, m: re.Match) -> str:
    """Go ``regexp.Expand``: ``$1``, ``${1}``, ``$name``, ``${name}``, ``$$``."""
    out = []
    i = 0
    n = len(template)
    while i < n:
        c = template[i]
        if c != "$" or i + 1 >= n:
            out.append(c)
            i += 1
            continue
        nxt = template[i + 1]
        if nxt == "$":
            out.append("$")
            i += 2
            continue
        if nxt == "{":
            j = template.find("}", i + 2)
            if j < 0:
                out.append(c)
                i += 1
                continue
            name = template[i + 2 : j]
            i = j + 1
        else:
            j = i + 1
            while j < n and (template[j].isalnum() or template[j] == "_"):
                j += 1
            if j == i + 1:
                out.append(c)
                i += 1
                continue
            name = template[i + 1 : j]
            i = j
        try:
            g = m.group(int(name)) if name.isdigit() else m.group(name)
        except IndexError:
            g = None
        out.append(g or "")
    return "".join(out)


_LABEL_NAME_RE = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]*$")


def _with_label(lab: dict, name: str, value: str) -> dict:
    d = dict(lab)
    if value:
        d[name] = value
    else:
        d.pop(name, None)
    return d


def _dt(v: float):
    return _time.gmtime(v)


_TIME_FUNCS = {
    "minute": lambda v: float(_dt(v).tm_min),
    "hour": lambda v: float(_dt(v).tm_hour),
    "day_of_week": lambda v: float((_dt(v).tm_wday + 1) % 7),
    "day_of_month": lambda v: float(_dt(v).tm_mday),
    "day_of_year": lambda v: float(_dt(v).tm_yday),
    "days_in_month": lambda v: float(calendar.monthrange(_dt(v).tm_year, _dt(v).tm_mon)[1]),
    "month": lambda v: float(_dt(v).tm_mon),
    "year": lambda v: float(_dt(v).tm_year),
}


def _sgn(x):
    if x > 0:
        return 1.0
    if x < 0:
        return -1.0
    return x


def _safe(f):
    def g(x):
        try:
            return f(x)
        except (ValueError, OverflowError):
            if x != x:
                return _NAN
            if f is math.exp:
                return _INF
            if f in (math.log, math.log2, math.log10):
                return -_INF if x == 0 else _NAN
            return _NAN

    return g


_MATH_FUNCS = {
    "abs": abs,
    "ceil": lambda x: float(math.ceil(x)) if math.isfinite(x) else x,
    "floor": lambda x: float(math.floor(x)) if math.isfinite(x) else x,
    "exp": _safe(math.exp),
    "ln": _safe(math.log),
    "log2": _safe(math.log2),
    "log10": _safe(math.log10),
    "sqrt": _safe(math.sqrt),
    "sgn": _sgn,
    "deg": math.degrees,
    "rad": math.radians,
    "sin": _safe(math.sin),
    "cos": _safe(math.cos),
    "tan": _safe(math.tan),
    "asin": _safe(math.asin),
    "acos": _safe(math.acos),
    "atan": _safe(math.atan),
    "sinh": _safe(math.sinh),
    "cosh": _safe(math.cosh),
    "tanh": _safe(math.tanh),
    "asinh": _safe(math.asinh),
    "acosh": _safe(math.acosh),
    "atanh": _safe(math.atanh),
}

_RANGE_FUNCS = {
    "sum_over_time": _over_time(_ot_sum),
    "avg_over_time": _over_time(_ot_avg),
    "max_over_time": _over_time(_ot_max),
    "min_over_time": _over_time(_ot_min),
    "count_over_time": _over_time(_ot_count),
    "last_over_time": _over_time(_ot_last, keep_name=True),
    "first_over_time": _over_time(_ot_first, keep_name=True),
    "present_over_time": _over_time(_ot_present),
    "stddev_over_time": _over_time(_ot_stddev),
    "stdvar_over_time": _over_time(_ot_stdvar),
    "changes": _over_time(_ot_changes),
    "resets": _over_time(_ot_resets),
}

SUPPORTED_FUNCTIONS = frozenset(
    list(_MATH_FUNCS)
    + list(_RANGE_FUNCS)
    + list(_TIME_FUNCS)
    + [
        "rate", "irate", "increase", "delta", "idelta", "deriv", "predict_linear", "quantile_over_time",
        "mad_over_time", "absent_over_time", "histogram_quantile", "clamp", "clamp_min", "clamp_max",
        "round", "vector", "scalar", "time", "timestamp", "absent", "sort", "sort_desc", "sort_by_label",
        "sort_by_label_desc", "label_replace", "label_join", "pi",
    ]
)


class _Call(_Cached, _Node):
    __slots__ = ("args", "ckey", "kind", "name")

    def __init__(self, name: str, args: list[_Node], kind: str, ckey: str = ""):
        if name not in SUPPORTED_FUNCTIONS:
            raise PromQLError(f'invalid parameter "query": function "{name}" is not supported by the twin')
        self.name = name
        self.args = args
        self.kind = kind
        self.ckey = ckey or f"{name}#{id(self)}"

    def _ev(self, ctx, t):
        name = self.name
        args = self.args
        if name in ("rate", "increase", "delta"):
            is_counter = name != "delta"
            is_rate = name == "rate"
            if isinstance(args[0], _MatrixSel):
                return _extrapolated_sel(args[0], ctx, t, is_counter, is_rate)
            return _extrapolated(args[0].ev(ctx, t), is_counter, is_rate)
        if name == "irate":
            return _instant_value(args[0].ev(ctx, t), True)
        if name == "idelta":
            return _instant_value(args[0].ev(ctx, t), False)
        f = _RANGE_FUNCS.get(name)
        if f is not None:
            return f(args[0].ev(ctx, t))
        f = _MATH_FUNCS.get(name)
        if f is not None:
            return [(_nn(lab), f(v)) for lab, v in args[0].ev(ctx, t)]
        if name == "histogram_quantile":
            return self._histogram_quantile(args[0].ev(ctx, t), args[1].ev(ctx, t))
        if name in ("clamp", "clamp_min", "clamp_max"):
            vec = args[0].ev(ctx, t)
            if name == "clamp":
                lo, hi = args[1].ev(ctx, t), args[2].ev(ctx, t)
                if lo > hi:
                    return []
            elif name == "clamp_min":
                lo, hi = args[1].ev(ctx, t), _INF
            else:
                lo, hi = -_INF, args[1].ev(ctx, t)
            out = []
            for lab, v in vec:
                if v == v:
                    v = max(lo, min(hi, v))
                    if lo != lo or hi != hi:
                        v = _NAN
                out.append((_nn(lab), v))
            return out
        if name == "round":
            vec = args[0].ev(ctx, t)
            to = args[1].ev(ctx, t) if len(args) > 1 else 1.0
            inv = 1.0 / to
            return [(_nn(lab), math.floor(v * inv + 0.5) / inv if math.isfinite(v) else v) for lab, v in vec]
        if name == "vector":
            return [({}, args[0].ev(ctx, t))]
        if name == "scalar":
            vec = args[0].ev(ctx, t)
            return vec[0][1] if len(vec) == 1 else _NAN
        if name == "time":
            return float(t)
        if name == "pi":
            return math.pi
        if name == "timestamp":
            a = args[0]
            while isinstance(a, _Paren):
                a = a.expr
            if isinstance(a, _VectorSel):
                return a.timestamps(ctx, t)
            return [(_nn(lab), float(t)) for lab, _v in a.ev(ctx, t)]
        if name in _TIME_FUNCS:
            f = _TIME_FUNCS[name]
            if not args:
                return [({}, f(t))]
            return [(_nn(lab), f(v) if math.isfinite(v) else _NAN) for lab, v in args[0].ev(ctx, t)]
        if name in ("absent", "absent_over_time"):
            v = args[0].ev(ctx, t)
            if name == "absent_over_time":
                v = [x for x in v if x[4] > x[3]]
            if v:
                return []
            a = args[0]
            while isinstance(a, _Paren):
                a = a.expr
            if isinstance(a, _MatrixSel):
                a = a.vs
            return [(dict(a.eq_labels) if isinstance(a, _VectorSel) else {}, 1.0)]
        if name in ("sort", "sort_desc"):
            vec = list(args[0].ev(ctx, t))
            rev = name == "sort_desc"
            # NaN last in both directions
            vec.sort(key=lambda s: (s[1] != s[1], -s[1] if rev else s[1]))
            return vec
        if name in ("sort_by_label", "sort_by_label_desc"):
            vec = list(args[0].ev(ctx, t))
            names = [a.ev(ctx, t) for a in args[1:]]
            vec.sort(key=lambda s: [s[0].get(n, "") for n in names] + [_lkey(s[0])],
                     reverse=name.endswith("_desc"))
            return vec
        if name == "label_replace":
            vec = args[0].ev(ctx, t)
            dst, repl, src, regex = (a.ev(ctx, t) for a in args[1:5])
            rx = _compile_regex(regex)
            if not _LABEL_NAME_RE.match(dst):
                raise _exec_error(f'invalid destination label name in label_replace(): {dst}')
            out = []
            for lab, v in vec:
                m = rx.fullmatch(lab.get(src, ""))
                if m is None:
                    out.append((lab, v))
                else:
                    out.append((_with_label(lab, dst, _go_expand(repl, m)), v))
            return out
        if name == "label_join":
            vec = args[0].ev(ctx, t)
            dst, sep = args[1].ev(ctx, t), args[2].ev(ctx, t)
            srcs = [a.ev(ctx, t) for a in args[3:]]
            if not _LABEL_NAME_RE.match(dst):
                raise _exec_error(f'invalid destination label name in label_join(): {dst}')
            return [(_with_label(lab, dst, sep.join(lab.get(s, "") for s in srcs)), v) for lab, v in vec]
        if name == "quantile_over_time":
            q = args[0].ev(ctx, t)
            return [(_nn(lab), _quantile(q, list(vs[lo:hi]))) for lab, ts, vs, lo, hi, _s in args[1].ev(ctx, t)
                    if hi > lo]
        if name == "mad_over_time":
            out = []
            for lab, _ts, vs, lo, hi, _s in args[0].ev(ctx, t):
                if hi > lo:
                    xs = list(vs[lo:hi])
                    med = _quantile(0.5, xs)
                    out.append((_nn(lab), _quantile(0.5, [abs(x - med) for x in xs])))
            return out
        if name in ("deriv", "predict_linear"):
            m = args[0].ev(ctx, t)
            out = []
            if name == "deriv":
                for lab, ts, vs, lo, hi, _s in m:
                    r = _linreg(ts, vs, lo, hi, ts[lo] if hi > lo else 0.0)
                    if r is not None:
                        out.append((_nn(lab), r[0]))
            else:
                dur = args[1].ev(ctx, t)
                for lab, ts, vs, lo, hi, _s in m:
                    r = _linreg(ts, vs, lo, hi, m.end)
                    if r is not None:
                        out.append((_nn(lab), r[1] + r[0] * dur))
            return out
        raise PromQLError(f'invalid parameter "query": function "{name}" is not supported by the twin')

    @staticmethod
    def _histogram_quantile(q, vec):
        groups: dict[tuple, tuple[dict, list]] = {}
        for lab, v in vec:
            le = lab.get("le")
            if le is None:
                continue
            ub = _parse_le(le)
            if ub is None:
                continue
            base = {k: x for k, x in lab.items() if k != "le" and k != "__name__"}
            k = tuple(sorted(base.items()))
            g = groups.get(k)
            if g is None:
                g = groups[k] = (base, [])
            g[1].append((ub, v))
        return [(base, _bucket_quantile(q, buckets)) for base, buckets in groups.values()]


class _Paren(_Node):
    __slots__ = ("expr", "kind")

    def __init__(self, expr):
        self.expr = expr
        self.kind = expr.kind

    def ev(self, ctx, t):
        return self.expr.ev(ctx, t)


# ---------------------------------------------------------------------------------------------- aggregation


class _Agg(_Cached, _Node):
    __slots__ = ("by", "ckey", "expr", "labels", "op", "param", "spec", "wset")
    kind = "vector"

    def __init__(self, op: str, expr: _Node, param: _Node | None, modifier, ckey: str = ""):
        self.ckey = ckey or f"{op}#{id(self)}"
        self.op = op
        self.expr = expr
        self.param = param
        if modifier is None:
            self.by = True
            self.labels = ()
        else:
            self.by = modifier.type == _pp.AggModifierType.By
            self.labels = tuple(modifier.labels)
        self.wset = frozenset(self.labels) | {"__name__"}
        self.spec = (self.by, self.labels)

    def _cached_keyf(self, compute):
        """Group key function memoised on store-owned :class:`Labels` (stable across evaluations)."""
        spec = self.spec

        def keyf(lab):
            if type(lab) is Labels:
                d = lab._gk
                if d is None:
                    d = lab._gk = {}
                k = d.get(spec)
                if k is None:
                    k = d[spec] = compute(lab)
                return k
            return compute(lab)

        return keyf

    def _ev(self, ctx, t):
        op = self.op
        vec = self.expr.ev(ctx, t)
        param = self.param.ev(ctx, t) if self.param is not None else None
        by = self.by
        names = self.labels
        wset = self.wset
        groups: dict = {}

        if by and not names:
            def keyf(lab):
                return ()
        elif by:
            if len(names) == 1:
                n0 = names[0]

                def keyf(lab):
                    return lab.get(n0, "")
            else:
                def compute(lab):
                    return tuple([lab.get(n, "") for n in names])
                keyf = self._cached_keyf(compute)
        else:
            def compute(lab):
                return tuple(sorted([(k, v) for k, v in lab.items() if k not in wset]))
            keyf = self._cached_keyf(compute)

        def outl(key):
            if by:
                if not names:
                    return {}
                if len(names) == 1:
                    return {names[0]: key} if key != "" else {}
                return {n: v for n, v in zip(names, key) if v != ""}
            return dict(key)

        if op == "sum":
            for lab, v in vec:
                k = keyf(lab)
                groups[k] = groups.get(k, 0.0) + v
            return [(outl(k), v) for k, v in groups.items()]
        if op in ("count", "group"):
            for lab, _v in vec:
                k = keyf(lab)
                groups[k] = groups.get(k, 0.0) + 1.0
            if op == "group":
                return [(outl(k), 1.0) for k in groups]
            return [(outl(k), v) for k, v in groups.items()]
        if op == "avg":
            for lab, v in vec:
                k = keyf(lab)
                g = groups.get(k)
                if g is None:
                    groups[k] = [v, 1]
                else:
                    g[0] += v
                    g[1] += 1
            return [(outl(k), s / n) for k, (s, n) in groups.items()]
        if op in ("max", "min"):
            is_max = op == "max"
            for lab, v in vec:
                k = keyf(lab)
                cur = groups.get(k)
                if cur is None or cur != cur or (v > cur if is_max else v < cur):
                    groups[k] = v
            return [(outl(k), v) for k, v in groups.items()]
        if op in ("stddev", "stdvar", "quantile"):
            for lab, v in vec:
                groups.setdefault(keyf(lab), []).append(v)
            out = []
            for k, xs in groups.items():
                if op == "quantile":
                    r = _quantile(param, xs)
                else:
                    mean = math.fsum(xs) / len(xs)
                    r = math.fsum((x - mean) ** 2 for x in xs) / len(xs)
                    if op == "stddev":
                        r = math.sqrt(r)
                out.append((outl(k), r))
            return out
        if op in ("topk", "bottomk", "limitk"):
            if param != param:
                raise _exec_error(f"Parameter value is NaN for {op}")
            kk = int(param)
            if kk < 1:
                return []
            for s in vec:
                groups.setdefault(keyf(s[0]), []).append(s)
            out = []
            for ss in groups.values():
                if op == "limitk":
                    out.extend(ss[:kk])
                    continue
                if op == "topk":
                    ss.sort(key=lambda s: (s[1] != s[1], -s[1] if s[1] == s[1] else 0.0))
                else:
                    ss.sort(key=lambda s: (s[1] != s[1], s[1] if s[1] == s[1] else 0.0))
                out.extend(ss[:kk])
            return out
        if op == "count_values":
            lname = str(param)
            if not _LABEL_NAME_RE.match(lname):
                raise _exec_error(f"invalid label name {lname!r}")
            for lab, v in vec:
                base = outl(keyf(lab))
                base[lname] = format_value(v)
                k = tuple(sorted(base.items()))
                g = groups.get(k)
                if g is None:
                    groups[k] = [base, 1.0]
                else:
                    g[1] += 1.0
            return [(b, c) for b, c in groups.values()]
        raise PromQLError(f'invalid parameter "query": aggregation "{op}" is not supported by the twin')


# ---------------------------------------------------------------------------------------------- binary


_ARITH = {"+", "-", "*", "/", "%", "^", "atan2"}
_CMP = {"==", "!=", ">", "<", ">=", "<="}
_SET = {"and", "or", "unless"}


def _div(a, b):
    try:
        return a / b
    except ZeroDivisionError:
        if a != a or a == 0:
            return _NAN
        return math.copysign(_INF, a) * math.copysign(1.0, b)


def _mod(a, b):
    try:
        return math.fmod(a, b)
    except (ValueError, ZeroDivisionError):
        return _NAN


def _pow(a, b):
    try:
        return math.pow(a, b)
    except OverflowError:
        if a < 0 and float(b).is_integer() and int(b) % 2 == 1:
            return -_INF
        return _INF
    except (ValueError, ZeroDivisionError):
        if a == 0 and b < 0:
            return _INF
        return _NAN


_ARITH_FN = {
    "+": lambda a, b: a + b,
    "-": lambda a, b: a - b,
    "*": lambda a, b: a * b,
    "/": _div,
    "%": _mod,
    "^": _pow,
    "atan2": math.atan2,
}
_CMP_FN = {
    "==": lambda a, b: a == b,
    "!=": lambda a, b: a != b,
    ">": lambda a, b: a > b,
    "<": lambda a, b: a < b,
    ">=": lambda a, b: a >= b,
    "<=": lambda a, b: a <= b,
}

_ONE_TO_ONE, _MANY_TO_ONE, _ONE_TO_MANY, _MANY_TO_MANY = 0, 1, 2, 3
_CARD = {
    str(_pp.VectorMatchCardinality.OneToOne): _ONE_TO_ONE,
    str(_pp.VectorMatchCardinality.ManyToOne): _MANY_TO_ONE,
    str(_pp.VectorMatchCardinality.OneToMany): _ONE_TO_MANY,
    str(_pp.VectorMatchCardinality.ManyToMany): _MANY_TO_MANY,
}


class _Binary(_Node):
    __slots__ = (
        "bool",
        "card",
        "fn",
        "include",
        "is_cmp",
        "kind",
        "lhs",
        "mlabels",
        "mset",
        "on",
        "op",
        "rhs",
    )

    def __init__(self, op: str, lhs: _Node, rhs: _Node, modifier):
        self.op = op
        self.lhs = lhs
        self.rhs = rhs
        self.bool = bool(modifier.return_bool) if modifier is not None else False
        self.card = _CARD[str(modifier.card)] if modifier is not None else _ONE_TO_ONE
        if op in _SET:
            self.card = _MANY_TO_MANY
        matching = modifier.matching if modifier is not None else None
        if matching is not None:
            self.on = matching.type == _pp.LabelModifierType.Include
            self.mlabels = tuple(matching.labels)
        else:
            self.on = False
            self.mlabels = ()
        self.mset = frozenset(self.mlabels) | {"__name__"}
        self.include = tuple(modifier.group_labels or ()) if modifier is not None else ()
        fv = getattr(modifier, "fill_values", None) if modifier is not None else None
        if fv is not None and (fv.lhs is not None or fv.rhs is not None):
            raise PromQLError('invalid parameter "query": fill modifiers are not supported by the twin')
        self.is_cmp = op in _CMP
        if op in _ARITH:
            self.fn = _ARITH_FN[op]
        elif op in _CMP:
            self.fn = _CMP_FN[op]
        elif op in _SET:
            self.fn = None
        else:
            raise PromQLError(f'invalid parameter "query": binary operator "{op}" is not supported by the twin')
        self.kind = "scalar" if (lhs.kind == "scalar" and rhs.kind == "scalar") else "vector"

    # signature of a sample for matching
    def _sigf(self):
        if self.on:
            names = self.mlabels
            if len(names) == 1:
                n0 = names[0]
                return lambda lab: lab.get(n0, "")
            return lambda lab: tuple([lab.get(n, "") for n in names])
        if not self.mlabels:
            return lambda lab: _lkey(_nn(lab))
        mset = self.mset
        return lambda lab: tuple(sorted([(k, v) for k, v in lab.items() if k not in mset]))

    def ev(self, ctx, t):
        lv = self.lhs.ev(ctx, t)
        rv = self.rhs.ev(ctx, t)
        l_scalar = isinstance(lv, float)
        r_scalar = isinstance(rv, float)
        fn = self.fn
        if l_scalar and r_scalar:
            r = fn(lv, rv)
            if self.is_cmp:
                return 1.0 if r else 0.0
            return r
        if l_scalar or r_scalar:
            return self._vs(lv, rv, r_scalar)
        if self.op in _SET:
            return self._set(lv, rv)
        return self._vv(lv, rv)

    def _vs(self, lv, rv, r_scalar):
        fn = self.fn
        out = []
        app = out.append
        if r_scalar:
            vec, s = lv, rv
        else:
            vec, s = rv, lv
        if self.is_cmp:
            ret_bool = self.bool
            for lab, v in vec:
                keep = fn(v, s) if r_scalar else fn(s, v)
                if ret_bool:
                    app((_nn(lab), 1.0 if keep else 0.0))
                elif keep:
                    app((lab, v))
            return out
        if r_scalar:
            for lab, v in vec:
                app((_nn(lab), fn(v, s)))
        else:
            for lab, v in vec:
                app((_nn(lab), fn(s, v)))
        return out

    def _set(self, lv, rv):
        sigf = self._sigf()
        op = self.op
        if op == "and":
            rs = {sigf(lab) for lab, _ in rv}
            return [x for x in lv if sigf(x[0]) in rs]
        if op == "unless":
            rs = {sigf(lab) for lab, _ in rv}
            return [x for x in lv if sigf(x[0]) not in rs]
        # or
        ls = {sigf(lab) for lab, _ in lv}
        return list(lv) + [x for x in rv if sigf(x[0]) not in ls]

    def _result_labels(self, many: dict, one: dict) -> dict:
        card = self.card
        drop_name = (not self.is_cmp) or self.bool
        lab = dict(_nn(many)) if drop_name else dict(many)
        if card == _ONE_TO_ONE:
            if self.on:
                keep = set(self.mlabels)
                lab = {k: v for k, v in lab.items() if k in keep}
            elif self.mlabels:
                for n in self.mlabels:
                    lab.pop(n, None)
        for n in self.include:
            v = one.get(n, "")
            if v:
                lab[n] = v
            else:
                lab.pop(n, None)
        return lab

    def _vv(self, lv, rv):
        sigf = self._sigf()
        card = self.card
        swapped = card == _ONE_TO_MANY
        many, one = (rv, lv) if swapped else (lv, rv)
        one_map: dict = {}
        for lab, v in one:
            sig = sigf(lab)
            prev = one_map.get(sig)
            if prev is not None:
                side = "left" if swapped else "right"
                raise _exec_error(
                    f"found duplicate series for the match group {_sig_str(self, lab)} on the {side} hand-side "
                    f"of the operation: [{_labels_str(prev[0])}, {_labels_str(lab)}];many-to-many matching not "
                    f"allowed: matching labels must be unique on one side"
                )
            one_map[sig] = (lab, v)
        fn = self.fn
        is_cmp = self.is_cmp
        ret_bool = self.bool
        simple = card == _ONE_TO_ONE and not self.mlabels and not self.include
        out = []
        matched: dict = {}
        for lab, v in many:
            sig = sigf(lab)
            m = one_map.get(sig)
            if m is None:
                continue
            olab, ov = m
            fl, fr = (ov, v) if swapped else (v, ov)
            if is_cmp:
                keep = fn(fl, fr)
                if ret_bool:
                    val = 1.0 if keep else 0.0
                elif not keep:
                    continue
                else:
                    val = fl
            else:
                val = fn(fl, fr)
            if simple:
                if is_cmp and not ret_bool:
                    rlab = lab
                else:
                    rlab = _nn(lab)
            else:
                rlab = self._result_labels(lab, olab)
            if card == _ONE_TO_ONE:
                if sig in matched:
                    raise _exec_error(
                        "multiple matches for labels: many-to-one matching must be explicit (group_left/group_right)"
                    )
                matched[sig] = True
            else:
                ins = matched.get(sig)
                rk = _lkey(rlab)
                if ins is None:
                    matched[sig] = {rk}
                elif rk in ins:
                    raise _exec_error("multiple matches for labels: grouping labels must ensure unique matches")
                else:
                    ins.add(rk)
            out.append((rlab, val))
        return out


def _sig_str(b: _Binary, lab: dict) -> str:
    if b.on:
        return _labels_str({n: lab.get(n, "") for n in b.mlabels if lab.get(n, "")})
    return _labels_str({k: v for k, v in lab.items() if k not in b.mset})


# ---------------------------------------------------------------------------------------------- compile


_KIND = {
    str(_pp.ValueType.Vector): "vector",
    str(_pp.ValueType.Scalar): "scalar",
    str(_pp.ValueType.Matrix): "matrix",
    str(_pp.ValueType.String): "string",
}


def _conv(e) -> _Node:
    if isinstance(e, _pp.VectorSelector):
        return _VectorSel(e)
    if isinstance(e, _pp.MatrixSelector):
        return _MatrixSel(_VectorSel(e.vector_selector), e.range.total_seconds())
    if isinstance(e, _pp.NumberLiteral):
        return _Num(float(e.val))
    if isinstance(e, _pp.StringLiteral):
        return _Str(e.val)
    if isinstance(e, _pp.ParenExpr):
        return _Paren(_conv(e.expr))
    if isinstance(e, _pp.UnaryExpr):
        inner = _conv(e.expr)
        if isinstance(inner, _Num):
            return _Num(-inner.v)
        return _Neg(inner)
    if isinstance(e, _pp.Call):
        fn = e.func
        return _Call(fn.name, [_conv(a) for a in e.args], _KIND.get(str(fn.return_type), "vector"), str(e))
    if isinstance(e, _pp.AggregateExpr):
        param = _conv(e.param) if e.param is not None else None
        return _Agg(str(e.op), _conv(e.expr), param, e.modifier, str(e))
    if isinstance(e, _pp.BinaryExpr):
        return _Binary(str(e.op), _conv(e.lhs), _conv(e.rhs), e.modifier)
    if isinstance(e, _pp.SubqueryExpr):
        at, offset = _at_offset(e.at, e.offset)
        step = e.step.total_seconds() if e.step is not None else None
        return _Subquery(_conv(e.expr), e.range.total_seconds(), step, at, offset)
    raise PromQLError(f'invalid parameter "query": unsupported expression node {type(e).__name__}')


@lru_cache(maxsize=4096)
def compile_expr(expr: str) -> _Node:
    """Parse and convert an expression (cached). Raises :class:`PromQLError` (``bad_data``)."""
    if not isinstance(expr, str) or not expr.strip():
        raise PromQLError('invalid parameter "query": parse error: no expression found in input')
    try:
        return _conv(_pp.parse(expr))
    except (ValueError, TypeError, OverflowError) as e:
        raise PromQLError(f'invalid parameter "query": parse error: {e}') from None


def _top_keeps_order(node: _Node) -> bool:
    while isinstance(node, _Paren):
        node = node.expr
    if isinstance(node, _Call) and node.name in ("sort", "sort_desc", "sort_by_label", "sort_by_label_desc"):
        return True
    return isinstance(node, _Agg) and node.op in ("topk", "bottomk")


# ---------------------------------------------------------------------------------------------- API


def eval_instant(db: TSDB, expr: str, at: float, lookback: float = LOOKBACK_DELTA):
    """Evaluate at ``at`` and return python values.

    vector -> ``list[(labels: dict, value: float)]`` (label dicts are shared, do not mutate);
    scalar -> ``float``; string -> ``str``; matrix -> ``list[(labels, [(t, v), ...])]``.
    """
    node = compile_expr(expr)
    at = float(at)
    v = node.ev(_Ctx(db, at, at, lookback), at)
    if isinstance(v, _Matrix):
        return [(lab, list(zip(ts[lo:hi], vs[lo:hi]))) for lab, ts, vs, lo, hi, _s in v]
    if isinstance(v, _String):
        return str(v)
    if isinstance(v, list):
        return list(v)
    return v


def evaluate(db: TSDB, expr: str, at: float, lookback: float = LOOKBACK_DELTA) -> dict:
    """Instant query; returns the Prometheus API ``data`` object."""
    node = compile_expr(expr)
    at = float(at)
    v = node.ev(_Ctx(db, at, at, lookback), at)
    ft = format_time(at)
    if isinstance(v, _String):
        return {"resultType": "string", "result": [ft, str(v)]}
    if isinstance(v, float):
        return {"resultType": "scalar", "result": [ft, format_value(v)]}
    if isinstance(v, _Matrix):
        items = sorted(v, key=lambda x: _lkey(x[0]))
        return {
            "resultType": "matrix",
            "result": [
                {"metric": dict(_lkey(lab)), "values": [[format_time(ts[i]), format_value(vs[i])] for i in range(lo, hi)]}
                for lab, ts, vs, lo, hi, _s in items
            ],
        }
    if not _top_keeps_order(node):
        v = sorted(v, key=lambda x: _lkey(x[0]))
    return {
        "resultType": "vector",
        "result": [{"metric": dict(_lkey(lab)), "value": [ft, format_value(x)]} for lab, x in v],
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
    ctx = _Ctx(db, start, end, lookback)
    series: dict[tuple, tuple[dict, list]] = {}
    n = math.floor((end - start) / step + 1e-9) + 1
    for i in range(n):
        t = start + i * step
        v = node.ev(ctx, t)
        ft = format_time(t)
        if isinstance(v, float):
            v = [({}, v)]
        for lab, x in v:
            k = _lkey(lab)
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
    while isinstance(node, _Paren):
        node = node.expr
    if isinstance(node, _MatrixSel):
        node = node.vs
    if not isinstance(node, _VectorSel):
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
