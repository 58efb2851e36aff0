"""In-memory time-series store for the digital twin.

A deliberately small subset of the Prometheus TSDB model:

* A series is identified by its full label set, ``__name__`` included. Labels with an empty value are
  dropped on ingestion (Prometheus treats ``a=""`` as "no label a").
* Samples are appended in time order to per-series ``array('d')`` buffers (times and values).
  Out-of-order samples are rejected (counted in :attr:`TSDB.rejected`); a second sample for the same
  timestamp overwrites the first.
* Staleness: :meth:`TSDB.add_many` is one scrape of one target. A series written by the previous scrape
  of the same target but missing from this one receives a staleness marker at the scrape time, exactly
  when Prometheus would write its ``StaleNaN``. Markers are kept in a small per-series list instead of
  as a NaN sample so genuine NaN values stay distinguishable; instant selectors skip a series whose
  newest event at or before the evaluation time is a marker, range selectors never see markers.
* Retention: samples older than ``t - retention_s`` are dropped every ``trim_interval_s`` of simulated
  time, and series with nothing left are removed, so memory stays flat over long simulations.
* Index: metric name -> {label key -> series}. Every change to a name's series set bumps a per-name
  generation counter that the PromQL evaluator uses to cache selector results.
* Concurrency: writes hold :attr:`TSDB.lock` (reentrant), and readers in other threads (the HTTP API)
  hold it too, so a query never sees half a scrape; the lock covers the store alone, not the simulation
  that produces the samples, so queries do not wait for a simulation step.
"""

from __future__ import annotations

import itertools
import threading
from array import array
from bisect import bisect_left, bisect_right
from collections.abc import Iterable, Mapping

__all__ = ["TSDB", "Labels", "Series"]

_db_ids = itertools.count(1)


class Labels(dict):
    """A label dict that caches derived forms (sort key, copy without ``__name__``).

    Instances handed out by the store must be treated as immutable.
    """

    __slots__ = ("_gk", "_key", "_nn")

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._key = None
        self._nn = None
        self._gk = None  # grouping-key cache used by the PromQL evaluator: spec -> key

    def key(self) -> tuple:
        k = self._key
        if k is None:
            k = self._key = tuple(sorted(self.items()))
        return k

    def without_name(self) -> Labels:
        nn = self._nn
        if nn is None:
            if "__name__" in self:
                nn = Labels((k, v) for k, v in self.items() if k != "__name__")
            else:
                nn = self
            self._nn = nn
        return nn


class Series:
    """One time series: label set plus parallel time/value arrays."""

    __slots__ = ("labels", "name", "nn", "resets", "stale", "ts", "vs")

    def __init__(self, name: str, labels: Labels):
        self.name = name
        self.labels = labels
        self.nn = labels.without_name()  # labels without __name__ (what functions/aggregations output)
        self.ts = array("d")
        self.vs = array("d")
        # times of staleness markers (sorted); usually empty
        self.stale: list[float] = []
        # times of samples whose value is lower than the previous one (counter resets); usually empty
        self.resets: list[float] = []

    def append(self, t: float, v: float) -> bool:
        ts = self.ts
        if ts:
            last = ts[-1]
            if t < last:
                return False
            vs = self.vs
            if t == last:
                vs[-1] = v
                return True
            if v < vs[-1]:
                self.resets.append(t)
        ts.append(t)
        self.vs.append(v)
        return True

    def mark_stale(self, t: float) -> None:
        ts = self.ts
        if ts and ts[-1] <= t and (not self.stale or self.stale[-1] < t):
            self.stale.append(t)

    def value_at(self, t: float, lookback: float) -> float | None:
        """Latest non-stale value in ``(t - lookback, t]``, or None."""
        ts = self.ts
        n = len(ts)
        if not n:
            return None
        if ts[-1] <= t:
            i = n - 1
        else:
            i = bisect_right(ts, t) - 1
            if i < 0:
                return None
        st = ts[i]
        if st <= t - lookback:
            return None
        stale = self.stale
        if stale and stale[-1] > st:
            # any marker in (st, t] hides the series
            j = bisect_right(stale, st)
            if j < len(stale) and stale[j] <= t:
                return None
        return self.vs[i]

    def time_at(self, t: float, lookback: float) -> float | None:
        """Timestamp of the sample :meth:`value_at` would return."""
        if self.value_at(t, lookback) is None:
            return None
        return self.ts[bisect_right(self.ts, t) - 1]

    def window(self, start: float, end: float) -> tuple[int, int]:
        """Index range [lo, hi) of samples with ``start < t <= end`` (left-open, as Prometheus 3)."""
        ts = self.ts
        n = len(ts)
        hi = n if (n and ts[-1] <= end) else bisect_right(ts, end)
        lo = bisect_right(ts, start, 0, hi)
        return lo, hi

    def has_reset_in(self, start: float, end: float) -> bool:
        r = self.resets
        if not r:
            return False
        j = bisect_right(r, start)
        return j < len(r) and r[j] <= end

    def trim(self, cutoff: float) -> None:
        ts = self.ts
        if ts and ts[0] < cutoff:
            k = bisect_left(ts, cutoff)
            del ts[:k]
            del self.vs[:k]
        if self.stale and self.stale[0] < cutoff:
            del self.stale[: bisect_left(self.stale, cutoff)]
        if self.resets and self.resets[0] < cutoff:
            del self.resets[: bisect_left(self.resets, cutoff)]

    def __len__(self) -> int:
        return len(self.ts)

    def __repr__(self) -> str:
        return f"Series({dict(self.labels)!r}, n={len(self.ts)})"


def _label_key(labels: Mapping[str, str]) -> tuple:
    return tuple(sorted(labels.items()))


class TSDB:
    """In-memory store. Times are float seconds (the twin's simulated epoch seconds)."""

    def __deepcopy__(self, memo: dict) -> "TSDB":
        """A copy is a different store: it gets its own uid, so PromQL caches never mix the two."""
        import copy as _copy

        new = self.__class__.__new__(self.__class__)
        memo[id(self)] = new
        for k, v in self.__getstate__().items():
            setattr(new, k, _copy.deepcopy(v, memo))
        new.uid = next(_db_ids)
        new.lock = threading.RLock()
        return new

    def __getstate__(self) -> dict:
        """Worlds are copied and pickled (what-if runs, checkpoints): the lock is not state."""
        state = self.__dict__.copy()
        del state["lock"]
        return state

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        self.lock = threading.RLock()

    def __init__(self, retention_s: float = 1800.0, trim_interval_s: float | None = None):
        self.retention_s = float(retention_s)
        self.trim_interval_s = (
            float(trim_interval_s) if trim_interval_s is not None else max(15.0, min(60.0, retention_s / 20))
        )
        self.uid = next(_db_ids)
        self.lock = threading.RLock()
        # name -> {label key (sorted (k, v) pairs without __name__) -> Series}
        self._by_name: dict[str, dict[tuple, Series]] = {}
        # name -> generation counter (bumped when the series set of that name changes)
        self._name_gen: dict[str, int] = {}
        self.generation = 0  # bumped on any series-set change
        self._last_scrape: dict[str, set[Series]] = {}
        self._last_trim: float | None = None
        self.max_time: float | None = None
        self.rejected = 0
        # bumped on every write; the PromQL evaluator caches instant sub-results per version
        self.version = 0
        self.query_cache: dict = {}
        self._query_cache_version = -1

    # ------------------------------------------------------------------ ingestion

    def _series(self, name: str, labels: Mapping[str, str]) -> Series:
        bucket = self._by_name.get(name)
        key = tuple(sorted(labels.items()))
        if bucket is not None:
            s = bucket.get(key)
            if s is not None:
                return s
        else:
            bucket = self._by_name[name] = {}
        if "" in labels.values() or "__name__" in labels:
            clean = {k: str(v) for k, v in labels.items() if v != "" and k != "__name__"}
            ckey = _label_key(clean)
            s = bucket.get(ckey)
            if s is not None:
                bucket[key] = s  # alias so the raw key is found next time
                return s
            key2 = ckey
        else:
            clean = {k: str(v) for k, v in labels.items()}
            key2 = key
        lab = Labels(clean)
        lab["__name__"] = name
        s = Series(name, lab)
        bucket[key2] = s
        if key2 != key:
            bucket[key] = s
        self._name_gen[name] = self._name_gen.get(name, 0) + 1
        self.generation += 1
        return s

    def add(self, name: str, labels: Mapping[str, str], value: float, t: float) -> None:
        """Append one sample (no staleness tracking: the series simply ages out of the 5m lookback)."""
        with self.lock:
            s = self._series(name, labels)
            if not s.append(float(t), float(value)):
                self.rejected += 1
            self._advance(t)

    def add_many(
        self, samples: Iterable[tuple[str, Mapping[str, str], float]], t: float, target: str = ""
    ) -> int:
        """Append one scrape of ``target`` at time ``t``; returns the number of samples stored.

        Series written by the previous scrape of the same target but absent now get a staleness marker.
        Call once per target per scrape interval (the twin may use one target for everything).
        """
        with self.lock:
            return self._add_many(samples, float(t), target)

    def _add_many(self, samples: Iterable[tuple[str, Mapping[str, str], float]], t: float, target: str) -> int:
        seen: set[Series] = set()
        seen_add = seen.add
        by_name = self._by_name
        get = self._series
        n = 0
        rejected = 0
        for name, labels, value in samples:
            bucket = by_name.get(name)
            s = bucket.get(tuple(sorted(labels.items()))) if bucket is not None else None
            if s is None:
                s = get(name, labels)
            value = float(value)
            ts = s.ts
            if ts and ts[-1] >= t:
                if s.append(t, value):  # same timestamp: overwrite
                    n += 1
                else:
                    rejected += 1
            else:
                vs = s.vs
                if vs and value < vs[-1]:
                    s.resets.append(t)
                ts.append(t)
                vs.append(value)
                n += 1
            seen_add(s)
        self.rejected += rejected
        prev = self._last_scrape.get(target)
        if prev:
            for s in prev - seen:
                s.mark_stale(t)
        self._last_scrape[target] = seen
        self._advance(t)
        return n

    def _advance(self, t: float) -> None:
        self.version += 1
        if self.max_time is None or t > self.max_time:
            self.max_time = t
        if self._last_trim is None:
            self._last_trim = t
        elif t - self._last_trim >= self.trim_interval_s:
            self._trim(t)

    def trim(self, now: float | None = None) -> None:
        """Drop samples older than ``now - retention_s`` and series left without samples."""
        with self.lock:
            self._trim((self.max_time or 0.0) if now is None else now)

    def _trim(self, now: float) -> None:
        self._last_trim = now
        self.version += 1
        cutoff = now - self.retention_s
        dead_names = []
        for name, bucket in self._by_name.items():
            dead = None
            for key, s in bucket.items():
                ts = s.ts
                if ts and ts[0] < cutoff:
                    s.trim(cutoff)
                if not s.ts:
                    if dead is None:
                        dead = []
                    dead.append(key)
            if dead:
                for key in dead:
                    s = bucket.pop(key)
                    for prev in self._last_scrape.values():
                        prev.discard(s)
                self._name_gen[name] = self._name_gen.get(name, 0) + 1
                self.generation += 1
                if not bucket:
                    dead_names.append(name)
        for name in dead_names:
            del self._by_name[name]

    # ------------------------------------------------------------------ lookup

    def name_generation(self, name: str) -> int:
        return self._name_gen.get(name, 0)

    def names(self) -> list[str]:
        return sorted(self._by_name)

    def series(self, name: str) -> list[Series]:
        """All series of a metric name (unique; aliases removed)."""
        bucket = self._by_name.get(name)
        if not bucket:
            return []
        if len(bucket) == 1:
            return list(bucket.values())
        return list({id(s): s for s in bucket.values()}.values())

    def all_series(self) -> Iterable[Series]:
        for name in self._by_name:
            yield from self.series(name)

    def get(self, name: str, labels: Mapping[str, str]) -> Series | None:
        bucket = self._by_name.get(name)
        if not bucket:
            return None
        s = bucket.get(tuple(sorted(labels.items())))
        if s is None:
            s = bucket.get(_label_key({k: v for k, v in labels.items() if v != "" and k != "__name__"}))
        return s

    def latest(self, name: str, labels: Mapping[str, str], at: float | None = None,
               lookback: float = 300.0) -> float | None:
        """Value of one exact series at ``at`` (default: newest time), honouring staleness."""
        s = self.get(name, labels)
        if s is None:
            return None
        if at is None:
            at = self.max_time if self.max_time is not None else 0.0
        return s.value_at(at, lookback)

    def label_names(self) -> list[str]:
        out: set[str] = set()
        for s in self.all_series():
            out.update(s.labels)
        return sorted(out)

    def label_values(self, label: str) -> list[str]:
        if label == "__name__":
            return self.names()
        out: set[str] = set()
        for s in self.all_series():
            v = s.labels.get(label)
            if v is not None:
                out.add(v)
        return sorted(out)

    # ------------------------------------------------------------------ stats

    def series_count(self) -> int:
        return sum(len(self.series(n)) for n in self._by_name)

    def sample_count(self) -> int:
        return sum(len(s.ts) for s in self.all_series())

    def __repr__(self) -> str:
        return f"TSDB(series={self.series_count()}, samples={self.sample_count()}, max_time={self.max_time})"
