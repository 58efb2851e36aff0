"""Parser glue: ``promql_parser``'s AST (the Rust port of Prometheus' parser) to our evaluation nodes.

Parsing is done by ``promql_parser``; :func:`compile_expr` converts its AST once per expression string
(cached with ``lru_cache``) into the node objects of :mod:`.engine`, :mod:`.functions`,
:mod:`.aggregations` and :mod:`.binary`. This is the only module that touches ``promql_parser`` types, so
the nodes take plain Python values. Constructs the twin does not evaluate (``or`` inside selector
braces, ``fill`` modifiers, unknown functions or operators) are refused here with a ``bad_data`` error.
"""

from __future__ import annotations

from functools import lru_cache

import promql_parser as _pp

from . import over_time  # noqa: F401  (registers the range-vector functions in FUNCTIONS)
from .aggregations import Agg
from .binary import MANY_TO_MANY, MANY_TO_ONE, ONE_TO_MANY, ONE_TO_ONE, Binary
from .engine import EQ, NE, NRE, RE, MatrixSel, Neg, Node, Num, Paren, Str, Subquery, VectorSel, compile_regex
from .functions import Call
from .value import PromQLError

# promql_parser enums are not hashable: key by their str()
_MATCH_OPS = {
    str(_pp.MatchOp.Equal): EQ,
    str(_pp.MatchOp.NotEqual): NE,
    str(_pp.MatchOp.Re): RE,
    str(_pp.MatchOp.NotRe): NRE,
}
_CARD = {
    str(_pp.VectorMatchCardinality.OneToOne): ONE_TO_ONE,
    str(_pp.VectorMatchCardinality.ManyToOne): MANY_TO_ONE,
    str(_pp.VectorMatchCardinality.OneToMany): ONE_TO_MANY,
    str(_pp.VectorMatchCardinality.ManyToMany): MANY_TO_MANY,
}
_KIND = {
    str(_pp.ValueType.Vector): "vector",
    str(_pp.ValueType.Scalar): "scalar",
    str(_pp.ValueType.Matrix): "matrix",
    str(_pp.ValueType.String): "string",
}


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


def _vector_selector(vs) -> VectorSel:
    ms = []
    for m in vs.matchers.matchers:
        op = _MATCH_OPS[str(m.op)]
        rx = compile_regex(m.value) if op in (RE, NRE) else None
        ms.append((m.name, op, m.value, rx))
    if vs.matchers.or_matchers:
        raise PromQLError('invalid parameter "query": parse error: "or" inside selector braces is not supported')
    at, offset = _at_offset(vs.at, vs.offset)
    return VectorSel(vs.name, tuple(ms), at, offset)


def _aggregation(e) -> Agg:
    param = _conv(e.param) if e.param is not None else None
    inner = _conv(e.expr)
    modifier = e.modifier
    if modifier is None:
        by, labels = True, ()
    else:
        by, labels = modifier.type == _pp.AggModifierType.By, tuple(modifier.labels)
    return Agg(str(e.op), inner, param, by, labels, str(e))


def _binary(e) -> Binary:
    lhs, rhs = _conv(e.lhs), _conv(e.rhs)
    modifier = e.modifier
    if modifier is None:
        return Binary(str(e.op), lhs, rhs)
    matching = modifier.matching
    on, mlabels = False, ()
    if matching is not None:
        on = matching.type == _pp.LabelModifierType.Include
        mlabels = tuple(matching.labels)
    fv = getattr(modifier, "fill_values", None)
    if fv is not None and (fv.lhs is not None or fv.rhs is not None):
        raise PromQLError('invalid parameter "query": fill modifiers are not supported by the twin')
    return Binary(str(e.op), lhs, rhs, bool(modifier.return_bool), _CARD[str(modifier.card)], on, mlabels,
                  tuple(modifier.group_labels or ()))


def _conv(e) -> Node:
    if isinstance(e, _pp.VectorSelector):
        return _vector_selector(e)
    if isinstance(e, _pp.MatrixSelector):
        return MatrixSel(_vector_selector(e.vector_selector), e.range.total_seconds())
    if isinstance(e, _pp.NumberLiteral):
        return Num(float(e.val))
    if isinstance(e, _pp.StringLiteral):
        return Str(e.val)
    if isinstance(e, _pp.ParenExpr):
        return Paren(_conv(e.expr))
    if isinstance(e, _pp.UnaryExpr):
        inner = _conv(e.expr)
        if isinstance(inner, Num):
            return Num(-inner.v)
        return Neg(inner)
    if isinstance(e, _pp.Call):
        fn = e.func
        return Call(fn.name, [_conv(a) for a in e.args], _KIND.get(str(fn.return_type), "vector"), str(e))
    if isinstance(e, _pp.AggregateExpr):
        return _aggregation(e)
    if isinstance(e, _pp.BinaryExpr):
        return _binary(e)
    if isinstance(e, _pp.SubqueryExpr):
        at, offset = _at_offset(e.at, e.offset)
        step = e.step.total_seconds() if e.step is not None else None
        # the stub marks range Optional, but promql-parser's SubqueryExpr always has one (Duration)
        rng = e.range.total_seconds()  # type: ignore[union-attr]
        return Subquery(_conv(e.expr), rng, step, at, offset)
    raise PromQLError(f'invalid parameter "query": unsupported expression node {type(e).__name__}')


@lru_cache(maxsize=4096)
def compile_expr(expr: str) -> Node:
    """Parse and convert an expression (cached). Raises :class:`~.value.PromQLError` (``bad_data``)."""
    if not isinstance(expr, str) or not expr.strip():
        raise PromQLError('invalid parameter "query": parse error: no expression found in input')
    try:
        return _conv(_pp.parse(expr))
    except (ValueError, TypeError, OverflowError) as e:
        raise PromQLError(f'invalid parameter "query": parse error: {e}') from None
