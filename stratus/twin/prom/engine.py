"""The evaluation core: context and cache, label matchers, selectors, subqueries and the simple nodes.

The counterpart of the evaluator half of Prometheus' ``promql/engine.go``. An expression is a tree of
small node objects (built once per expression string by :mod:`.parser`); ``node.ev(ctx, t)`` returns the
node's value at time ``t``. Semantics follow Prometheus 3.x:

* instant selectors return the newest sample in ``(t - 5m, t]`` unless a staleness marker hides it;
  range selectors select ``(t - range, t]`` (left-open); ``offset`` and ``@`` are honoured;
* subqueries step on absolute multiples of their step, like Prometheus;
* function and aggregation results are memoised per instant evaluation while the store is unchanged
  (alert rules repeat sub-expressions), see :class:`Cached`.

Functions, aggregations and binary operators live in :mod:`.functions`, :mod:`.aggregations` and
:mod:`.binary`.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from typing import Any

from ..tsdb import TSDB, Labels, Series
from .value import Matrix, PromQLError, String, distinct, drop_name, label_key

LOOKBACK_DELTA = 300.0
DEFAULT_SUBQUERY_STEP = 60.0  # Prometheus' default global evaluation_interval


class Ctx:
    """One query's evaluation context: the store, the query's start and end, the lookback window."""

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


class Node:
    """An expression node; ``kind`` is the PromQL type of its value."""

    __slots__ = ()
    kind = "vector"  # vector | scalar | matrix | string

    def ev(self, ctx: Ctx, t: float):  # pragma: no cover - abstract
        """Value of the node at time ``t``."""
        raise NotImplementedError


class Cached:
    """Mixin: memoise ``_ev`` per (canonical expression, t, lookback) in the context's cache."""

    __slots__ = ()
    # supplied by the node class the mixin is combined with
    ckey: str
    _ev: Callable[[Ctx, float], Any]

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

EQ, NE, RE, NRE = 0, 1, 2, 3


def compile_regex(pattern: str) -> re.Pattern:
    """A PromQL regex: fully anchored, ``.`` matching newlines, errors as Prometheus words them."""
    try:
        return re.compile(f"(?s:{pattern})")
    except re.error as e:
        raise PromQLError(f'invalid parameter "query": parse error: invalid regular expression {pattern!r}: {e}') from None


def match_all(matchers, lab: dict) -> bool:
    """Whether a label set satisfies every ``(name, op, value, regex)`` matcher."""
    for name, op, val, rx in matchers:
        v = lab.get(name, "")
        if op == EQ:
            if v != val:
                return False
        elif op == NE:
            if v == val:
                return False
        elif op == RE:
            if rx.fullmatch(v) is None:
                return False
        elif rx.fullmatch(v) is not None:
            return False
    return True


# ---------------------------------------------------------------------------------------------- nodes


class Num(Node):
    """A number literal."""

    __slots__ = ("v",)
    kind = "scalar"

    def __init__(self, v: float):
        self.v = v

    def ev(self, ctx, t):
        return self.v


class Str(Node):
    """A string literal."""

    __slots__ = ("v",)
    kind = "string"

    def __init__(self, v: str):
        self.v = String(v)

    def ev(self, ctx, t):
        return self.v


class Paren(Node):
    """A parenthesised expression (kept so that ``sort(...)`` detection can see through it)."""

    __slots__ = ("expr", "kind")

    def __init__(self, expr):
        self.expr = expr
        self.kind = expr.kind

    def ev(self, ctx, t):
        return self.expr.ev(ctx, t)


def unwrap(node: Node) -> Node:
    """The node inside any parentheses."""
    while isinstance(node, Paren):
        node = node.expr
    return node


def ref_time(at, offset, ctx, t):
    """Evaluation time after ``@`` (a timestamp, ``"start"`` or ``"end"``) and ``offset`` seconds."""
    if at is not None:
        if at == "start":
            t = ctx.start
        elif at == "end":
            t = ctx.end
        else:
            t = at
    return t - offset


class VectorSel(Node):
    """An instant vector selector ``name{matchers} @ at offset o``."""

    __slots__ = ("_cache", "at", "eq_labels", "matchers", "name", "offset")
    kind = "vector"

    def __init__(self, name: str | None, matchers: tuple, at, offset: float):
        self.name = name
        self.matchers = matchers
        self.at, self.offset = at, offset
        self._cache: tuple[int, int, list[Series]] | None = None
        # labels for absent(): equality matchers (excluding __name__), dropped if a label repeats
        eq: dict[str, str] = {}
        seen: set[str] = set()
        for mname, op, val, _ in matchers:
            if mname == "__name__":
                continue
            if mname in seen:
                eq.pop(mname, None)
                continue
            seen.add(mname)
            if op == EQ:
                eq[mname] = val
        self.eq_labels = eq

    def select(self, db: TSDB) -> list[Series]:
        """Matching series sorted by labels (cached until the store gains or loses series)."""
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
                if match_all(name_ms, {"__name__": n}):
                    cands.extend(db.series(n))
        ms = self.matchers
        out = [s for s in cands if match_all(ms, s.labels)] if ms else cands
        out.sort(key=lambda s: s.labels.key())
        self._cache = (db.uid, gen, out)
        return out

    def ev(self, ctx, t):
        t = ref_time(self.at, self.offset, ctx, t) if (self.at is not None or self.offset) else t
        lb = ctx.lookback
        out: list[tuple[Labels, float]] = []
        app = out.append
        for s in self.select(ctx.db):
            v = s.value_at(t, lb)
            if v is not None:
                app((s.labels, v))
        return out

    def timestamps(self, ctx, t):
        """``timestamp()`` of the selector: each series' sample time rather than the evaluation time."""
        t = ref_time(self.at, self.offset, ctx, t)
        out = []
        for s in self.select(ctx.db):
            ts = s.time_at(t, ctx.lookback)
            if ts is not None:
                out.append((s.labels.without_name(), ts))
        return out


class MatrixSel(Node):
    """A range vector selector ``selector[range]``."""

    __slots__ = ("range", "vs")
    kind = "matrix"

    def __init__(self, vs: VectorSel, rng: float):
        self.vs = vs
        self.range = rng

    def ev(self, ctx, t):
        vs = self.vs
        end = ref_time(vs.at, vs.offset, ctx, t)
        start = end - self.range
        m = Matrix(start, end, self.range)
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


class Subquery(Node):
    """A subquery ``expr[range:step]``: the inner expression evaluated at each step of the window."""

    __slots__ = ("at", "expr", "offset", "range", "step")
    kind = "matrix"

    def __init__(self, expr: Node, rng: float, step: float | None, at, offset):
        self.expr = expr
        self.range = rng
        self.step = step
        self.at = at
        self.offset = offset

    def ev(self, ctx, t):
        end = ref_time(self.at, self.offset, ctx, t)
        start = end - self.range
        step = self.step or DEFAULT_SUBQUERY_STEP
        # first step: the first multiple of step strictly after start (Prometheus aligns to absolute time)
        first = (math.floor(start / step) + 1) * step
        series: dict[tuple, tuple] = {}
        tt = first
        while tt <= end + 1e-9:
            v = self.expr.ev(ctx, tt)
            if isinstance(v, float):
                v = [({}, v)]
            for lab, val in v:
                k = label_key(lab)
                e = series.get(k)
                if e is None:
                    e = series[k] = (lab, [], [])
                e[1].append(tt)
                e[2].append(val)
            tt += step
        m = Matrix(start, end, self.range)
        for lab, ts, vs in series.values():
            m.append((lab, ts, vs, 0, len(ts), None))
        return m


class Neg(Node):
    """Unary minus (drops the metric name)."""

    __slots__ = ("expr", "kind")

    def __init__(self, expr: Node):
        self.expr = expr
        self.kind = expr.kind

    def ev(self, ctx, t):
        v = self.expr.ev(ctx, t)
        if isinstance(v, float):
            return -v
        return distinct([(drop_name(lab), -x) for lab, x in v])
