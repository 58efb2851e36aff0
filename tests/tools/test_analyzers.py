"""The analyzer registry: every registered analyzer runs, in a fixed order, and the log signatures load."""

from __future__ import annotations

from stratus.tools.analyzers import ANALYZERS, REGISTRY, STATIC_ANALYZERS
from stratus.tools.analyzers.logs import LOG_SIGNATURES


def test_every_registered_analyzer_has_a_place_in_the_run_order() -> None:
    assert sorted(REGISTRY) == sorted(ANALYZERS)
    assert len(set(ANALYZERS)) == len(ANALYZERS)
    assert set(STATIC_ANALYZERS) <= set(ANALYZERS)


def test_log_signatures_match_the_lines_they_name() -> None:
    by_signal = {signal: (rx, via) for rx, signal, via in LOG_SIGNATURES}
    rx, via = by_signal["DBNotAuthorized"]
    m = rx.search('not authorized on geo-db to execute command { find: "geo" }')
    assert m is not None and m.group("db") == "geo-db" and via == "MONGO_ADDR"
    rx, via = by_signal["ListenPort"]
    m = rx.search("Read target port: 8083")
    assert m is not None and m.group("port") == "8083" and via == ""
