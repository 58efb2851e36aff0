"""PromQL function registry, the call node, and the functions over instant vectors and scalars.

The counterpart of Prometheus' ``promql/functions.go``. Every function is one entry registered with
``@function("name")``; an entry takes ``(args, ctx, t)`` (the argument nodes, the evaluation context and
time) and returns the call's value. Functions over range vectors (``rate``, ``*_over_time``, ...) are
registered by :mod:`.over_time`; :mod:`.parser` imports both before it builds a :class:`Call`.

The metric name is dropped by every function except ``sort*``, ``label_replace``, ``label_join``,
``last_over_time`` and ``first_over_time``. A call whose result holds two samples with the same label set
fails with Prometheus' error (see :func:`~.value.distinct`).
"""

# ruff: noqa: PLR0124, PLR1730  (x != x is the NaN test; explicit ifs instead of min/max in hot loops)
from __future__ import annotations

import calendar
import math
import re
import time as _time
from collections.abc import Callable

from .engine import Cached, MatrixSel, Node, VectorSel, compile_regex, unwrap
from .stats import bucket_quantile, parse_le
from .value import PromQLError, distinct, drop_name, exec_error, label_key

_INF = math.inf
_NAN = math.nan

FUNCTIONS: dict[str, Callable] = {}


def function(*names: str):
    """Register the decorated ``(args, ctx, t) -> value`` implementation under each of ``names``."""

    def register(impl):
        for name in names:
            FUNCTIONS[name] = impl
        return impl

    return register


class Call(Cached, Node):
    """A function call; ``ckey`` is the canonical expression text used as its cache key."""

    __slots__ = ("args", "ckey", "impl", "kind", "name")

    def __init__(self, name: str, args: list[Node], kind: str, ckey: str = ""):
        impl = FUNCTIONS.get(name)
        if impl is None:
            raise PromQLError(f'invalid parameter "query": function "{name}" is not supported by the twin')
        self.name = name
        self.impl = impl
        self.args = args
        self.kind = kind
        self.ckey = ckey or f"{name}#{id(self)}"

    def _ev(self, ctx, t):
        r = self.impl(self.args, ctx, t)
        return distinct(r) if type(r) is list else r


# ---------------------------------------------------------------------------------------------- math


def _sgn(x):
    if x > 0:
        return 1.0
    if x < 0:
        return -1.0
    return x


def _safe(f):
    """``f`` answering NaN/Inf like Go's math package where Python's raises."""

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


_MATH = {
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


def _elementwise(f):
    def impl(args, ctx, t):
        return [(drop_name(lab), f(v)) for lab, v in args[0].ev(ctx, t)]

    return impl


for _name, _f in _MATH.items():
    function(_name)(_elementwise(_f))


def _clamp(vec, lo, hi):
    out = []
    for lab, v in vec:
        if v == v:
            v = max(lo, min(hi, v))
            if lo != lo or hi != hi:
                v = _NAN
        out.append((drop_name(lab), v))
    return out


@function("clamp")
def _clamp_both(args, ctx, t):
    vec = args[0].ev(ctx, t)
    lo, hi = args[1].ev(ctx, t), args[2].ev(ctx, t)
    if lo > hi:
        return []
    return _clamp(vec, lo, hi)


@function("clamp_min")
def _clamp_min(args, ctx, t):
    vec = args[0].ev(ctx, t)
    return _clamp(vec, args[1].ev(ctx, t), _INF)


@function("clamp_max")
def _clamp_max(args, ctx, t):
    vec = args[0].ev(ctx, t)
    return _clamp(vec, -_INF, args[1].ev(ctx, t))


@function("round")
def _round(args, ctx, t):
    vec = args[0].ev(ctx, t)
    to = args[1].ev(ctx, t) if len(args) > 1 else 1.0
    inv = 1.0 / to
    return [(drop_name(lab), math.floor(v * inv + 0.5) / inv if math.isfinite(v) else v) for lab, v in vec]


# ---------------------------------------------------------------------------------------------- time


def _dt(v: float):
    return _time.gmtime(v)


_DATE = {
    "minute": lambda v: float(_dt(v).tm_min),
    "hour": lambda v: float(_dt(v).tm_hour),
    "day_of_week": lambda v: float((_dt(v).tm_wday + 1) % 7),
    "day_of_month": lambda v: float(_dt(v).tm_mday),
    "day_of_year": lambda v: float(_dt(v).tm_yday),
    "days_in_month": lambda v: float(calendar.monthrange(_dt(v).tm_year, _dt(v).tm_mon)[1]),
    "month": lambda v: float(_dt(v).tm_mon),
    "year": lambda v: float(_dt(v).tm_year),
}


def _date_function(f):
    def impl(args, ctx, t):
        if not args:
            return [({}, f(t))]
        return [(drop_name(lab), f(v) if math.isfinite(v) else _NAN) for lab, v in args[0].ev(ctx, t)]

    return impl


for _name, _f in _DATE.items():
    function(_name)(_date_function(_f))


@function("time")
def _time_fn(args, ctx, t):
    return float(t)


@function("timestamp")
def _timestamp(args, ctx, t):
    a = unwrap(args[0])
    if isinstance(a, VectorSel):
        return a.timestamps(ctx, t)
    return [(drop_name(lab), float(t)) for lab, _v in a.ev(ctx, t)]


# ---------------------------------------------------------------------------------------------- types


@function("pi")
def _pi(args, ctx, t):
    return math.pi


@function("vector")
def _vector(args, ctx, t):
    return [({}, args[0].ev(ctx, t))]


@function("scalar")
def _scalar(args, ctx, t):
    vec = args[0].ev(ctx, t)
    return vec[0][1] if len(vec) == 1 else _NAN


def _absent_labels(arg: Node) -> dict:
    """Labels of ``absent()``'s sample: the selector's equality matchers."""
    a = unwrap(arg)
    if isinstance(a, MatrixSel):
        a = a.vs
    return dict(a.eq_labels) if isinstance(a, VectorSel) else {}


@function("absent")
def _absent(args, ctx, t):
    if args[0].ev(ctx, t):
        return []
    return [(_absent_labels(args[0]), 1.0)]


@function("absent_over_time")
def _absent_over_time(args, ctx, t):
    if [x for x in args[0].ev(ctx, t) if x[4] > x[3]]:
        return []
    return [(_absent_labels(args[0]), 1.0)]


@function("histogram_quantile")
def _histogram_quantile(args, ctx, t):
    q, vec = args[0].ev(ctx, t), args[1].ev(ctx, t)
    groups: dict[tuple, tuple[dict, list]] = {}
    for lab, v in vec:
        le = lab.get("le")
        if le is None:
            continue
        ub = parse_le(le)
        if ub is None:
            continue
        base = {k: x for k, x in lab.items() if k != "le" and k != "__name__"}
        k = tuple(sorted(base.items()))
        g = groups.get(k)
        if g is None:
            g = groups[k] = (base, [])
        g[1].append((ub, v))
    return [(base, bucket_quantile(q, buckets)) for base, buckets in groups.values()]


# ---------------------------------------------------------------------------------------------- sorting


def _sort_by_value(rev: bool):
    def impl(args, ctx, t):
        vec = list(args[0].ev(ctx, t))
        # NaN last in both directions
        vec.sort(key=lambda s: (s[1] != s[1], -s[1] if rev else s[1]))
        return vec

    return impl


def _sort_by_label(rev: bool):
    def impl(args, ctx, t):
        vec = list(args[0].ev(ctx, t))
        names = [a.ev(ctx, t) for a in args[1:]]
        vec.sort(key=lambda s: [s[0].get(n, "") for n in names] + [label_key(s[0])], reverse=rev)
        return vec

    return impl


function("sort")(_sort_by_value(False))
function("sort_desc")(_sort_by_value(True))
function("sort_by_label")(_sort_by_label(False))
function("sort_by_label_desc")(_sort_by_label(True))

# ---------------------------------------------------------------------------------------------- labels

_LABEL_NAME_RE = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]*$")


def valid_label_name(name: str) -> bool:
    """Whether ``name`` is a legal Prometheus label name."""
    return _LABEL_NAME_RE.match(name) is not None


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


def _with_label(lab: dict, name: str, value: str) -> dict:
    d = dict(lab)
    if value:
        d[name] = value
    else:
        d.pop(name, None)
    return d


@function("label_replace")
def _label_replace(args, ctx, t):
    vec = args[0].ev(ctx, t)
    dst, repl, src, regex = (a.ev(ctx, t) for a in args[1:5])
    rx = compile_regex(regex)
    if not valid_label_name(dst):
        raise exec_error(f"invalid destination label name in label_replace(): {dst}")
    out = []
    for lab, v in vec:
        m = rx.fullmatch(lab.get(src, ""))
        if m is None:
            out.append((lab, v))
        else:
            out.append((_with_label(lab, dst, _go_expand(repl, m)), v))
    return out


@function("label_join")
def _label_join(args, ctx, t):
    vec = args[0].ev(ctx, t)
    dst, sep = args[1].ev(ctx, t), args[2].ev(ctx, t)
    srcs = [a.ev(ctx, t) for a in args[3:]]
    if not valid_label_name(dst):
        raise exec_error(f"invalid destination label name in label_join(): {dst}")
    return [(_with_label(lab, dst, sep.join(lab.get(s, "") for s in srcs)), v) for lab, v in vec]
