"""PromQL aggregation operators: the registry, the aggregation node and each operator.

The counterpart of the aggregation part of Prometheus' ``promql/engine.go``. Every operator is one entry
registered with ``@aggregation("name")``; an entry takes ``(vec, param, keyf, outl)``: the input vector,
the evaluated parameter (``topk``'s k, ``quantile``'s q, ...), the function mapping a label set to its
group key, and the function turning a group key back into output labels. The node owns the grouping
(``by``/``without``, metric name always dropped) and memoises group keys on store-owned label sets.
``stddev``/``stdvar`` use the compensated Welford variance of :mod:`.stats`.
"""

# ruff: noqa: PLR0124  (x != x is the NaN test)
from __future__ import annotations

import math
from collections.abc import Callable

from ..tsdb import Labels
from .engine import Cached, Node
from .functions import valid_label_name
from .stats import quantile, variance
from .value import PromQLError, exec_error, format_value

AGGREGATIONS: dict[str, Callable] = {}


def aggregation(*names: str):
    """Register the decorated ``(vec, param, keyf, outl) -> vector`` implementation under each name."""

    def register(impl):
        for name in names:
            AGGREGATIONS[name] = impl
        return impl

    return register


class Agg(Cached, Node):
    """``op [by|without (labels)] ([param,] expr)``; ``ckey`` is the canonical text used as cache key."""

    __slots__ = ("by", "ckey", "expr", "impl", "labels", "op", "param", "spec", "wset")
    kind = "vector"

    def __init__(self, op: str, expr: Node, param: Node | None, by: bool, labels: tuple[str, ...],
                 ckey: str = ""):
        impl = AGGREGATIONS.get(op)
        if impl is None:
            raise PromQLError(f'invalid parameter "query": aggregation "{op}" is not supported by the twin')
        self.impl = impl
        self.ckey = ckey or f"{op}#{id(self)}"
        self.op = op
        self.expr = expr
        self.param = param
        self.by = by
        self.labels = labels
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
        vec = self.expr.ev(ctx, t)
        param = self.param.ev(ctx, t) if self.param is not None else None
        by = self.by
        names = self.labels
        wset = self.wset

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

        return self.impl(vec, param, keyf, outl)


@aggregation("sum")
def _sum(vec, param, keyf, outl):
    groups: dict = {}
    for lab, v in vec:
        k = keyf(lab)
        groups[k] = groups.get(k, 0.0) + v
    return [(outl(k), v) for k, v in groups.items()]


def _counts(vec, keyf) -> dict:
    groups: dict = {}
    for lab, _v in vec:
        k = keyf(lab)
        groups[k] = groups.get(k, 0.0) + 1.0
    return groups


@aggregation("count")
def _count(vec, param, keyf, outl):
    return [(outl(k), v) for k, v in _counts(vec, keyf).items()]


@aggregation("group")
def _group(vec, param, keyf, outl):
    return [(outl(k), 1.0) for k in _counts(vec, keyf)]


@aggregation("avg")
def _avg(vec, param, keyf, outl):
    groups: dict = {}
    for lab, v in vec:
        k = keyf(lab)
        g = groups.get(k)
        if g is None:
            groups[k] = [v, 1]
        else:
            g[0] += v
            g[1] += 1
    return [(outl(k), s / n) for k, (s, n) in groups.items()]


def _extreme(is_max: bool):
    def impl(vec, param, keyf, outl):
        groups: dict = {}
        for lab, v in vec:
            k = keyf(lab)
            cur = groups.get(k)
            if cur is None or cur != cur or (v > cur if is_max else v < cur):
                groups[k] = v
        return [(outl(k), v) for k, v in groups.items()]

    return impl


aggregation("max")(_extreme(is_max=True))
aggregation("min")(_extreme(is_max=False))


def _values_by_group(vec, keyf) -> dict:
    groups: dict = {}
    for lab, v in vec:
        groups.setdefault(keyf(lab), []).append(v)
    return groups


@aggregation("stdvar")
def _stdvar(vec, param, keyf, outl):
    return [(outl(k), variance(xs)) for k, xs in _values_by_group(vec, keyf).items()]


@aggregation("stddev")
def _stddev(vec, param, keyf, outl):
    return [(outl(k), math.sqrt(variance(xs))) for k, xs in _values_by_group(vec, keyf).items()]


@aggregation("quantile")
def _quantile(vec, param, keyf, outl):
    return [(outl(k), quantile(param, xs)) for k, xs in _values_by_group(vec, keyf).items()]


def _k_of(op: str, param) -> int:
    if param != param:
        raise exec_error(f"Parameter value is NaN for {op}")
    return int(param)


def _selecting(op: str):
    """``topk``/``bottomk``/``limitk``: up to k samples per group, input labels kept."""

    def impl(vec, param, keyf, outl):
        kk = _k_of(op, param)
        if kk < 1:
            return []
        groups: dict = {}
        for s in vec:
            groups.setdefault(keyf(s[0]), []).append(s)
        out = []
        for ss in groups.values():
            if op == "topk":
                ss.sort(key=lambda s: (s[1] != s[1], -s[1] if s[1] == s[1] else 0.0))
            elif op == "bottomk":
                ss.sort(key=lambda s: (s[1] != s[1], s[1] if s[1] == s[1] else 0.0))
            out.extend(ss[:kk])
        return out

    return impl


for _op in ("topk", "bottomk", "limitk"):
    aggregation(_op)(_selecting(_op))


@aggregation("count_values")
def _count_values(vec, param, keyf, outl):
    lname = str(param)
    if not valid_label_name(lname):
        raise exec_error(f"invalid label name {lname!r}")
    groups: dict = {}
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
