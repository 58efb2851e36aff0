"""The twin's current telemetry in the Prometheus text exposition format, for a real Prometheus to scrape.

:func:`current_samples` reads, from the twin's TSDB, the newest non-stale sample of every series at a
time (the series a scrape of the twin's exporters would return at that moment); :func:`exposition` renders
them with ``prometheus_client``'s text format (escaping, ``# HELP`` and ``# TYPE`` lines, value spelling).

Samples carry no timestamps, so the scraping Prometheus stores them at its own scrape time and applies its
own staleness: the twin's clock may run in simulated time, but a scrape is always "now". (For simulated
time use :mod:`.remote_write`.) The series keep their ``job`` and ``instance`` labels as kube-state-metrics,
cAdvisor and the OpenTelemetry collector set them, so the scrape job should use ``honor_labels: true``,
as kube-prometheus does for kube-state-metrics; the series the rule evaluator writes (``ALERTS``,
``ALERTS_FOR_STATE``) are left out because the scraping Prometheus evaluates the rules itself.

Metric types follow the naming conventions the exporters keep: ``*_total`` is a counter, a
``*_bucket``/``*_sum``/``*_count`` trio with ``le`` labels is a histogram, everything else a gauge.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from prometheus_client.core import Metric
from prometheus_client.exposition import generate_latest
from prometheus_client.registry import Collector, CollectorRegistry

from ..tsdb import TSDB
from .engine import LOOKBACK_DELTA

RULE_SERIES = frozenset({"ALERTS", "ALERTS_FOR_STATE"})
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

Sample = tuple[str, dict[str, str], float]


def current_samples(db: TSDB, at: float, lookback: float = LOOKBACK_DELTA) -> list[Sample]:
    """Newest non-stale sample of every telemetry series at ``at`` (``(name, labels, value)``, sorted)."""
    out: list[Sample] = []
    for name in db.names():
        if name in RULE_SERIES:
            continue
        for s in db.series(name):
            v = s.value_at(at, lookback)
            if v is not None:
                out.append((name, dict(s.nn), v))
    out.sort(key=lambda x: (x[0], sorted(x[1].items())))
    return out


def _families(samples: list[Sample]) -> dict[str, tuple[str, list[Sample]]]:
    """Group samples into metric families: family name -> (type, samples)."""
    names = {name for name, _, _ in samples}
    histograms = {
        name[: -len("_bucket")]
        for name, labels, _ in samples
        if name.endswith("_bucket") and "le" in labels and name[: -len("_bucket")] + "_count" in names
    }
    fams: dict[str, tuple[str, list[Sample]]] = {}
    for sample in samples:
        name = sample[0]
        base = name.rsplit("_", 1)[0]
        if base in histograms and name in (base + "_bucket", base + "_sum", base + "_count"):
            family, typ = base, "histogram"
        elif name.endswith("_total"):
            family, typ = name[: -len("_total")], "counter"
        else:
            family, typ = name, "gauge"
        fams.setdefault(family, (typ, []))[1].append(sample)
    return fams


class _Snapshot(Collector):
    """A ``prometheus_client`` collector over one fixed list of samples."""

    def __init__(self, samples: list[Sample]) -> None:
        self.samples = samples

    def collect(self) -> Iterable[Metric]:
        for family, (typ, samples) in sorted(_families(self.samples).items()):
            job = samples[0][1].get("job", "twin")
            shown = family + "_total" if typ == "counter" else family
            m = Metric(family, f"{shown} as the STRATUS twin's {job} exporter reports it.", typ)
            for name, labels, value in samples:
                m.add_sample(name, labels, value)
            yield m


def exposition(samples: list[Sample]) -> bytes:
    """The Prometheus text format (version 0.0.4) of ``samples``."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Snapshot(samples))
    return generate_latest(registry)


def metrics_page(source: Any) -> bytes:
    """``GET /metrics`` body for a source with ``.tsdb`` and ``.clock.now`` (a World)."""
    return exposition(current_samples(source.tsdb, source.clock.now))
