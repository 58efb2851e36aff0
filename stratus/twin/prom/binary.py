"""PromQL binary operators: arithmetic, comparisons, set operators and vector matching.

The counterpart of the binary-operator part of Prometheus' ``promql/engine.go``. Matching follows
``on``/``ignoring``/``group_left``/``group_right`` with Prometheus' error texts. Arithmetic and ``bool``
comparisons drop the metric name, filtering comparisons and ``and``/``or``/``unless`` keep it; a result
holding two samples with the same label set fails with Prometheus' error (see :func:`~.value.distinct`).
Division, modulo and power answer NaN and infinities the way Go's float arithmetic does.
"""

# ruff: noqa: PLR0124  (x != x is the NaN test)
from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from .engine import Node
from .value import PromQLError, distinct, drop_name, exec_error, label_key, labels_str

_INF = math.inf
_NAN = math.nan

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


# a sample function: arithmetic answers a float, a comparison a bool
SampleFn = Callable[[Any, Any], Any]

_ARITH_FN: dict[str, SampleFn] = {
    "+": lambda a, b: a + b,
    "-": lambda a, b: a - b,
    "*": lambda a, b: a * b,
    "/": _div,
    "%": _mod,
    "^": _pow,
    "atan2": math.atan2,
}
_CMP_FN: dict[str, SampleFn] = {
    "==": lambda a, b: a == b,
    "!=": lambda a, b: a != b,
    ">": lambda a, b: a > b,
    "<": lambda a, b: a < b,
    ">=": lambda a, b: a >= b,
    "<=": lambda a, b: a <= b,
}

ONE_TO_ONE, MANY_TO_ONE, ONE_TO_MANY, MANY_TO_MANY = 0, 1, 2, 3


class Binary(Node):
    """``lhs op [bool] [on|ignoring (labels)] [group_left|group_right (labels)] rhs``."""

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

    def __init__(self, op: str, lhs: Node, rhs: Node, return_bool: bool = False, card: int = ONE_TO_ONE,
                 on: bool = False, mlabels: tuple[str, ...] = (), include: tuple[str, ...] = ()):
        self.op = op
        self.lhs = lhs
        self.rhs = rhs
        self.bool = return_bool
        self.card = MANY_TO_MANY if op in _SET else card
        self.on = on
        self.mlabels = mlabels
        self.mset = frozenset(self.mlabels) | {"__name__"}
        self.include = include
        self.is_cmp = op in _CMP
        self.fn: SampleFn | None  # None for set operators, which match labels and compute nothing
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
            return lambda lab: label_key(drop_name(lab))
        mset = self.mset
        return lambda lab: tuple(sorted([(k, v) for k, v in lab.items() if k not in mset]))

    def ev(self, ctx, t):
        lv = self.lhs.ev(ctx, t)
        rv = self.rhs.ev(ctx, t)
        l_scalar = isinstance(lv, float)
        r_scalar = isinstance(rv, float)
        fn = self.fn
        if l_scalar and r_scalar:
            assert fn is not None, "the parser rejects set operators between scalars"
            r = fn(lv, rv)
            if self.is_cmp:
                return 1.0 if r else 0.0
            return r
        if l_scalar or r_scalar:
            return distinct(self._vs(lv, rv, r_scalar))
        if self.op in _SET:
            return self._set(lv, rv)
        return distinct(self._vv(lv, rv))

    def _vs(self, lv, rv, r_scalar):
        fn = self.fn
        assert fn is not None, "the parser rejects set operators with a scalar side"
        out: list[tuple[dict, Any]] = []
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
                    app((drop_name(lab), 1.0 if keep else 0.0))
                elif keep:
                    app((lab, v))
            return out
        if r_scalar:
            for lab, v in vec:
                app((drop_name(lab), fn(v, s)))
        else:
            for lab, v in vec:
                app((drop_name(lab), fn(s, v)))
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
        nameless = (not self.is_cmp) or self.bool
        lab = dict(drop_name(many)) if nameless else dict(many)
        if card == ONE_TO_ONE:
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
        swapped = card == ONE_TO_MANY
        many, one = (rv, lv) if swapped else (lv, rv)
        one_map: dict = {}
        for lab, v in one:
            sig = sigf(lab)
            prev = one_map.get(sig)
            if prev is not None:
                side = "left" if swapped else "right"
                raise exec_error(
                    f"found duplicate series for the match group {_sig_str(self, lab)} on the {side} hand-side "
                    f"of the operation: [{labels_str(prev[0])}, {labels_str(lab)}];many-to-many matching not "
                    f"allowed: matching labels must be unique on one side"
                )
            one_map[sig] = (lab, v)
        fn = self.fn
        assert fn is not None, "set operators are answered by _set"
        is_cmp = self.is_cmp
        ret_bool = self.bool
        simple = card == ONE_TO_ONE and not self.mlabels and not self.include
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
                    rlab = drop_name(lab)
            else:
                rlab = self._result_labels(lab, olab)
            if card == ONE_TO_ONE:
                if sig in matched:
                    raise exec_error(
                        "multiple matches for labels: many-to-one matching must be explicit (group_left/group_right)"
                    )
                matched[sig] = True
            else:
                ins = matched.get(sig)
                rk = label_key(rlab)
                if ins is None:
                    matched[sig] = {rk}
                elif rk in ins:
                    raise exec_error("multiple matches for labels: grouping labels must ensure unique matches")
                else:
                    ins.add(rk)
            out.append((rlab, val))
        return out


def _sig_str(b: Binary, lab: dict) -> str:
    if b.on:
        return labels_str({n: lab.get(n, "") for n in b.mlabels if lab.get(n, "")})
    return labels_str({k: v for k, v in lab.items() if k not in b.mset})
