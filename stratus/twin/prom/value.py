"""PromQL values and their encodings: errors, string and range-vector types, label keys, JSON formats.

The counterpart of Prometheus' ``promql/value.go``. An instant vector is a plain ``list`` of
``(labels, value)`` pairs, a scalar a ``float``, a string a :class:`String`, a range vector a :class:`Matrix`.
Label dicts handed out by the store are :class:`~stratus.twin.tsdb.Labels`, which cache their sort key and
their copy without ``__name__``; the helpers here use those caches when they can.
"""

# ruff: noqa: PLR0124  (x != x is the NaN test)
from __future__ import annotations

import math
from decimal import Decimal
from typing import ClassVar

from ..tsdb import Labels

_INF = math.inf

SAME_LABELSET = "vector cannot contain metrics with the same labelset"


class PromQLError(Exception):
    """Query error. ``error_type`` is the Prometheus API errorType (``bad_data`` | ``execution``)."""

    _HTTP: ClassVar[dict[str, int]] = {"bad_data": 400, "execution": 422, "timeout": 503, "canceled": 499, "internal": 500}

    def __init__(self, message: str, error_type: str = "bad_data"):
        super().__init__(message)
        self.message = message
        self.error_type = error_type

    @property
    def http_status(self) -> int:
        """HTTP status Prometheus answers this error with."""
        return self._HTTP.get(self.error_type, 500)

    def to_api(self) -> dict:
        """Prometheus API error envelope."""
        return {"status": "error", "errorType": self.error_type, "error": self.message}


def exec_error(msg: str) -> PromQLError:
    """An error found while evaluating (API errorType ``execution``), not while parsing."""
    return PromQLError(msg, "execution")


class String(str):
    """A PromQL string value."""


class Matrix(list):
    """Range vector: list of (labels, ts, vs, lo, hi, series|None); window is (start, end]."""

    __slots__ = ("end", "range", "start")

    def __init__(self, start: float, end: float, rng: float):
        super().__init__()
        self.start = start
        self.end = end
        self.range = rng


def drop_name(lab: dict) -> dict:
    """Labels without ``__name__`` (cached for store-owned Labels)."""
    if type(lab) is Labels:
        return lab.without_name()
    if "__name__" not in lab:
        return lab
    return {k: v for k, v in lab.items() if k != "__name__"}


def label_key(lab: dict) -> tuple:
    """Hashable, sorted form of a label set."""
    if type(lab) is Labels:
        return lab.key()
    return tuple(sorted(lab.items()))


def labels_str(lab: dict) -> str:
    """Label set as Prometheus prints it in error messages."""
    return "{" + ", ".join(f'{k}="{v}"' for k, v in sorted(lab.items())) + "}"


def distinct(vec: list) -> list:
    """Return ``vec`` unchanged, or raise Prometheus' error if two of its samples share a label set.

    Dropping ``__name__`` (functions, arithmetic, ``bool`` comparisons, negation) or rewriting labels can
    fold two input series into one label set; Prometheus refuses such a vector instead of returning
    duplicates that a later aggregation would silently count twice.
    """
    if len(vec) > 1:
        seen: set[tuple] = set()
        for lab, _v in vec:
            k = label_key(lab)
            if k in seen:
                raise exec_error(SAME_LABELSET)
            seen.add(k)
    return vec


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
