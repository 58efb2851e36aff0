"""TSDB + PromQL evaluator: Prometheus semantics the twin relies on."""

import math

import pytest

from stratus.twin.prom.query import eval_instant, evaluate, evaluate_range, select_series
from stratus.twin.prom.value import PromQLError, format_value
from stratus.twin.tsdb import TSDB

T0 = 1767225600.0
STEP = 15.0


def scrape(db, i, samples):
    db.add_many(samples, T0 + STEP * i)
    return T0 + STEP * i


def vec(db, expr, t):
    """{frozenset(labels): value} of an instant vector."""
    res = eval_instant(db, expr, t)
    assert isinstance(res, list), res
    return {frozenset(lab.items()): v for lab, v in res}


def one(db, expr, t):
    res = eval_instant(db, expr, t)
    assert isinstance(res, list) and len(res) == 1, res
    return res[0][1]


# ---------------------------------------------------------------------------------------------- rate


def test_rate_increase_irate_with_counter_reset():
    db = TSDB()
    # +10 every 15 s; the process restarts after sample 9 (counter back to 0)
    for i in range(14):
        v = 10.0 * i if i < 10 else 10.0 * (i - 10)
        t = scrape(db, i, [("reqs_total", {"job": "a"}, v)])
    # window (t-120, t] holds samples 6..13: 60 70 80 90 | 0 10 20 30
    raw_increase = (30 - 60) + 90  # reset corrected
    sampled, range_s = 105.0, 120.0
    # first sample 15 s after window start (< 1.1 * 15 -> extrapolate to the boundary), last sample at t
    expected_increase = raw_increase * (sampled + 15.0 + 0.0) / sampled
    assert one(db, "increase(reqs_total[2m])", t) == pytest.approx(expected_increase)
    assert one(db, "rate(reqs_total[2m])", t) == pytest.approx(expected_increase / range_s)
    # metric name is dropped by rate
    assert eval_instant(db, "rate(reqs_total[2m])", t)[0][0] == {"job": "a"}
    # resets() and irate across the reset
    assert one(db, "resets(reqs_total[5m])", t) == 1
    t_reset = T0 + STEP * 10
    assert one(db, "irate(reqs_total[1m])", t_reset) == 0.0  # last (0) < previous (90): value/interval
    assert one(db, "irate(reqs_total[1m])", t) == pytest.approx(10 / 15)
    # delta does not correct resets
    assert one(db, "delta(reqs_total[2m])", t) == pytest.approx((30 - 60) * 120 / 105)


def test_rate_steady_counter_and_zero_point_clamp():
    db = TSDB()
    for i in range(30):
        t = scrape(db, i, [("c_total", {"k": "v"}, 2.0 * STEP * i + 3.0)])
    assert one(db, "rate(c_total[1m])", t) == pytest.approx(2.0)
    assert one(db, "increase(c_total[5m])", t) == pytest.approx(600.0)
    # a series starting inside the window is extrapolated by half an interval at most ...
    db2 = TSDB()
    for i in range(3):
        t2 = scrape(db2, i, [("n_total", {}, 5.0 * (i + 1)), ("z_total", {}, 1.0 + 10 * i)])  # 5 10 15 / 1 11 21
    assert one(db2, "increase(n_total[5m])", t2) == pytest.approx(10 * (30 + 7.5) / 30)
    # ... and never below the counter's zero point (here 30 * 1/20 = 1.5 s before the first sample)
    assert one(db2, "increase(z_total[5m])", t2) == pytest.approx(20 * (30 + 1.5) / 30)


# ---------------------------------------------------------------------------------------------- histograms


def _buckets(db, counts, labels=None, t=T0):
    samples = [("lat_bucket", {**(labels or {"svc": "a"}), "le": le}, c) for le, c in counts]
    db.add_many(samples, t)


def test_histogram_quantile_interpolation_and_inf_bucket():
    db = TSDB()
    _buckets(db, [("0.1", 10), ("0.5", 30), ("1", 40), ("+Inf", 50)])
    # rank 25 falls in (0.1, 0.5]: 0.1 + 0.4 * (25 - 10) / 20
    assert one(db, "histogram_quantile(0.5, lat_bucket)", T0) == pytest.approx(0.4)
    # rank 49.5 is in the +Inf bucket -> upper bound of the second-highest bucket
    assert one(db, "histogram_quantile(0.99, lat_bucket)", T0) == 1.0
    # lowest bucket interpolates from 0
    assert one(db, "histogram_quantile(0.1, lat_bucket)", T0) == pytest.approx(0.05)
    res = evaluate(db, "histogram_quantile(0.5, lat_bucket)", T0)
    assert res["result"][0]["metric"] == {"svc": "a"}  # le and __name__ removed


def test_histogram_quantile_nan_cases_and_grouping():
    db = TSDB()
    samples = []
    for le in ("0.1", "1", "+Inf"):
        samples.append(("h_bucket", {"svc": "empty", "le": le}, 0.0))
    samples += [("h_bucket", {"svc": "noinf", "le": "0.1"}, 1.0), ("h_bucket", {"svc": "noinf", "le": "1"}, 2.0)]
    for pod, n in (("p1", 10.0), ("p2", 30.0)):
        samples += [("h_bucket", {"svc": "sum", "pod": pod, "le": "1"}, n),
                    ("h_bucket", {"svc": "sum", "pod": pod, "le": "2"}, 2 * n),
                    ("h_bucket", {"svc": "sum", "pod": pod, "le": "+Inf"}, 2 * n)]
    db.add_many(samples, T0)
    out = {dict(lab)["svc"]: v for lab, v in eval_instant(db, "histogram_quantile(0.5, h_bucket)", T0)
           if "pod" not in lab}
    assert math.isnan(out["empty"])  # no observations
    assert math.isnan(out["noinf"])  # no +Inf bucket
    res = evaluate(db, 'histogram_quantile(0.5, sum by (le, svc) (h_bucket{svc="sum"}))', T0)
    # 80 observations, rank 40 == count of le=1 -> exactly 1
    assert res["result"] == [{"metric": {"svc": "sum"}, "value": [int(T0), "1"]}]
    assert evaluate(db, 'histogram_quantile(0.5, h_bucket{svc="empty"})', T0)["result"][0]["value"][1] == "NaN"


# ---------------------------------------------------------------------------------------------- aggregation


@pytest.fixture
def podsdb():
    db = TSDB()
    samples = []
    for svc, pods in (("geo", ("geo-1", "geo-2")), ("rate", ("rate-1",))):
        for j, p in enumerate(pods):
            samples.append(("mem_bytes", {"namespace": "hr", "svc": svc, "pod": p}, 100.0 * (j + 1)))
    samples += [
        ("pod_info", {"namespace": "hr", "pod": "geo-1", "node": "n1"}, 1.0),
        ("pod_info", {"namespace": "hr", "pod": "geo-2", "node": "n2"}, 1.0),
        ("pod_info", {"namespace": "hr", "pod": "rate-1", "node": "n1"}, 1.0),
        ("limit_bytes", {"namespace": "hr", "pod": "geo-1"}, 400.0),
        ("limit_bytes", {"namespace": "hr", "pod": "rate-1"}, 200.0),
    ]
    db.add_many(samples, T0)
    return db


def test_sum_by_without_and_other_aggregations(podsdb):
    db = podsdb
    assert vec(db, "sum by (svc) (mem_bytes)", T0) == {
        frozenset({("svc", "geo")}): 300.0,
        frozenset({("svc", "rate")}): 100.0,
    }
    assert vec(db, "sum without (pod) (mem_bytes)", T0) == {
        frozenset({("namespace", "hr"), ("svc", "geo")}): 300.0,
        frozenset({("namespace", "hr"), ("svc", "rate")}): 100.0,
    }
    assert one(db, "sum(mem_bytes)", T0) == 400.0
    assert one(db, "count(mem_bytes)", T0) == 3
    assert one(db, "avg(mem_bytes)", T0) == pytest.approx(400 / 3)
    assert one(db, "max(mem_bytes)", T0) == 200.0
    assert one(db, "min(mem_bytes)", T0) == 100.0
    assert one(db, "quantile(0.5, mem_bytes)", T0) == 100.0
    top = eval_instant(db, "topk(1, mem_bytes)", T0)
    assert top == [({"__name__": "mem_bytes", "namespace": "hr", "svc": "geo", "pod": "geo-2"}, 200.0)]
    assert {lab["pod"] for lab, _ in eval_instant(db, "bottomk by (svc) (1, mem_bytes)", T0)} == {"geo-1", "rate-1"}
    # by on a label that some series lack groups them under the empty value, which is omitted
    assert vec(db, "count by (node) (mem_bytes)", T0) == {frozenset(): 3}


def test_on_group_left_join_and_matching_errors(podsdb):
    db = podsdb
    res = eval_instant(db, "mem_bytes * on (namespace, pod) group_left (node) pod_info", T0)
    assert {lab["pod"]: (lab["node"], v) for lab, v in res} == {
        "geo-1": ("n1", 100.0), "geo-2": ("n2", 200.0), "rate-1": ("n1", 100.0)}
    assert all("__name__" not in lab and lab["svc"] for lab, _ in res)
    # one-to-one with on(): only the matching labels remain
    ratio = vec(db, "mem_bytes / on (namespace, pod) limit_bytes", T0)
    assert ratio == {
        frozenset({("namespace", "hr"), ("pod", "geo-1")}): 0.25,
        frozenset({("namespace", "hr"), ("pod", "rate-1")}): 0.5,
    }
    # ignoring
    assert len(vec(db, "mem_bytes / ignoring (svc) limit_bytes", T0)) == 2
    # group_right keeps the right side's labels
    gr = eval_instant(db, "pod_info * on (namespace, pod) group_right mem_bytes", T0)
    assert {lab["svc"] for lab, _ in gr} == {"geo", "rate"}
    with pytest.raises(PromQLError) as e:
        evaluate(db, "mem_bytes * on (namespace) pod_info", T0)
    assert e.value.error_type == "execution"
    assert "many-to-many matching not allowed: matching labels must be unique on one side" in str(e.value)
    with pytest.raises(PromQLError, match="many-to-one matching must be explicit"):
        evaluate(db, "mem_bytes * on (namespace) sum by (namespace) (pod_info)", T0)


def test_set_operators(podsdb):
    db = podsdb
    def pods(expr):
        return sorted(lab["pod"] for lab, _ in eval_instant(db, expr, T0))

    assert pods("mem_bytes and on (pod) limit_bytes") == ["geo-1", "rate-1"]
    assert pods("mem_bytes unless on (pod) limit_bytes") == ["geo-2"]
    both = eval_instant(db, 'mem_bytes{svc="rate"} or on (pod) limit_bytes', T0)
    assert sorted((lab["__name__"], lab["pod"]) for lab, _ in both) == [
        ("limit_bytes", "geo-1"), ("mem_bytes", "rate-1")]
    # and keeps the left-hand side's samples (names, labels, values); default matching uses all labels
    kept = eval_instant(db, "mem_bytes and on (namespace, pod) pod_info", T0)
    assert sorted((lab["__name__"], lab["pod"], v) for lab, v in kept) == [
        ("mem_bytes", "geo-1", 100.0), ("mem_bytes", "geo-2", 200.0), ("mem_bytes", "rate-1", 100.0)]
    assert eval_instant(db, "mem_bytes and pod_info", T0) == []
    assert eval_instant(db, "vector(1) and on () mem_bytes", T0) == [({}, 1.0)]


def test_comparison_filtering_and_bool(podsdb):
    db = podsdb
    res = eval_instant(db, "mem_bytes > 100", T0)
    assert [(lab["pod"], lab["__name__"], v) for lab, v in res] == [("geo-2", "mem_bytes", 200.0)]
    b = vec(db, "mem_bytes > bool 100", T0)
    assert sorted(b.values()) == [0.0, 0.0, 1.0]
    assert all(("__name__", "mem_bytes") not in k for k in b)
    # scalar on the left: filter keeps the vector's value
    assert [v for _, v in eval_instant(db, "150 < mem_bytes", T0)] == [200.0]
    # vector-vector comparison keeps the left value; one-to-one on() keeps only the matching labels
    assert vec(db, "mem_bytes >= on (namespace, pod) (limit_bytes / 3)", T0) == {
        frozenset({("namespace", "hr"), ("pod", "rate-1")}): 100.0}
    assert vec(db, "mem_bytes >= ignoring (svc) limit_bytes / 3", T0) == {
        frozenset({("namespace", "hr"), ("pod", "rate-1"), ("__name__", "mem_bytes")}): 100.0}
    assert eval_instant(db, "1 < bool 2", T0) == 1.0
    # arithmetic
    assert eval_instant(db, "2 ^ 10 % 1000", T0) == 24.0
    assert eval_instant(db, "1 / 0", T0) == math.inf
    assert evaluate(db, "0 / 0", T0)["result"] == [int(T0), "NaN"]
    assert evaluate(db, "-1 / 0", T0)["result"] == [int(T0), "-Inf"]


def test_matchers_regex_anchored_and_offset():
    db = TSDB()
    for i in range(25):
        scrape(db, i, [("m", {"svc": "ab"}, float(i)), ("m", {"svc": "a"}, 100.0 + i)])
    t = T0 + STEP * 24
    assert [lab["svc"] for lab, _ in eval_instant(db, 'm{svc=~"a"}', t)] == ["a"]
    assert [lab["svc"] for lab, _ in eval_instant(db, 'm{svc!~"a"}', t)] == ["ab"]
    assert [lab["svc"] for lab, _ in eval_instant(db, 'm{svc=~"a.*"}', t)] == ["a", "ab"]
    assert [lab["svc"] for lab, _ in eval_instant(db, 'm{svc!="a"}', t)] == ["ab"]
    assert [lab["svc"] for lab, _ in eval_instant(db, '{__name__=~"m|x", svc="a"}', t)] == ["a"]
    assert one(db, 'm{svc="ab"} offset 1m', t) == 20.0
    assert one(db, 'max_over_time(m{svc="ab"}[1m] offset 2m)', t) == 16.0
    assert one(db, 'count_over_time(m{svc="ab"}[1m])', t) == 4  # left-open window
    assert one(db, 'last_over_time(m{svc="a"}[1m])', t) == 124.0
    assert eval_instant(db, 'last_over_time(m{svc="a"}[1m])', t)[0][0]["__name__"] == "m"
    assert one(db, 'avg_over_time(m{svc="ab"}[1m])', t) == pytest.approx((21 + 22 + 23 + 24) / 4)
    assert one(db, 'changes(m{svc="ab"}[1m])', t) == 3
    assert one(db, 'max_over_time(rate(m{svc="ab"}[1m])[5m:1m])', t) == pytest.approx(1 / 15)


def test_functions_misc(podsdb):
    db = podsdb
    assert eval_instant(db, 'absent(nope{namespace="hr", pod=~"x"})', T0) == [({"namespace": "hr"}, 1.0)]
    assert eval_instant(db, "absent(mem_bytes)", T0) == []
    lr = eval_instant(db, 'label_replace(limit_bytes, "deployment", "$1", "pod", "(.*)-[0-9]+")', T0)
    assert sorted(lab["deployment"] for lab, _ in lr) == ["geo", "rate"]
    assert eval_instant(db, "scalar(sum(limit_bytes)) * 2", T0) == 1200.0
    assert eval_instant(db, "time()", T0) == T0
    assert [v for _, v in eval_instant(db, "sort_desc(mem_bytes)", T0)] == [200.0, 100.0, 100.0]
    assert [v for _, v in eval_instant(db, "clamp_max(mem_bytes, 150)", T0)] == [100.0, 150.0, 100.0]
    assert [v for _, v in eval_instant(db, "clamp(mem_bytes, 150, 160)", T0)] == [150.0, 160.0, 150.0]
    assert eval_instant(db, "abs(vector(-3))", T0) == [({}, 3.0)]
    assert eval_instant(db, "-limit_bytes", T0)[0][0].get("__name__") is None
    assert select_series(db, 'mem_bytes{svc="rate"}') == [
        {"__name__": "mem_bytes", "namespace": "hr", "pod": "rate-1", "svc": "rate"}]


def test_dropping_the_metric_name_refuses_duplicate_label_sets():
    """Two series differing only in __name__ must not be folded into one label set (Prometheus' error)."""
    db = TSDB()
    for i in range(5):
        t = scrape(db, i, [("a_total", {"job": "x"}, 10.0 * i), ("b_total", {"job": "x"}, 20.0 * i),
                           ("dup", {"label": "a", "this": "a"}, 1.0), ("dup", {"label": "b", "this": "a"}, 1.0)])
    both = '{__name__=~"a_total|b_total"}'
    for q in (f"sum(rate({both}[1m]))", f"rate({both}[1m])", f"{both} * 2", f"-{both}", f"{both} > bool 0",
              f"abs({both})", f"sum_over_time({both}[1m])", 'label_join(dup, "label", "", "this")'):
        with pytest.raises(PromQLError, match="^vector cannot contain metrics with the same labelset$") as e:
            evaluate(db, q, t)
        assert e.value.error_type == "execution", q
        with pytest.raises(PromQLError, match="same labelset"):
            evaluate_range(db, q, t - 30, t, 15)
    # operations that keep the name (or one metric at a time) are fine
    assert len(vec(db, f"{both} > 0", t)) == 2
    assert len(vec(db, f"last_over_time({both}[1m])", t)) == 2
    assert one(db, "sum(rate(a_total[1m])) + sum(rate(b_total[1m]))", t) == pytest.approx(2.0)


def test_stddev_and_stdvar_of_a_constant_series_are_exactly_zero():
    db = TSDB()
    for i in range(3):
        t = scrape(db, i, [("g", {"pod": p}, 0.1) for p in ("a", "b", "c")] + [("h", {}, 3.3)])
    for q in ("stdvar(g)", "stddev(g)", "stdvar_over_time(h[1m])", "stddev_over_time(h[1m])"):
        assert one(db, q, t) == 0.0, q
    assert set(vec(db, "stddev_over_time(g[1m])", t).values()) == {0.0}
    # and still the population variance of a spread: 2 4 4 4 5 5 7 9 -> mean 5, variance 4
    db2 = TSDB()
    for i, x in enumerate((2, 4, 4, 4, 5, 5, 7, 9)):
        db2.add_many([("s", {"i": str(i)}, float(x))], T0)
    assert one(db2, "stdvar(s)", T0) == 4.0
    assert one(db2, "stddev(s)", T0) == 2.0


# ---------------------------------------------------------------------------------------------- store


def test_staleness_dropped_series_disappears():
    db = TSDB()
    for i in range(4):
        scrape(db, i, [("up", {"pod": "a"}, 1.0), ("up", {"pod": "b"}, 1.0)])
    t = scrape(db, 4, [("up", {"pod": "a"}, 1.0)])  # b vanished from the scrape
    assert [lab["pod"] for lab, _ in eval_instant(db, "up", t)] == ["a"]
    # still visible just before the scrape that dropped it, and in range selectors
    assert len(eval_instant(db, "up", t - 1)) == 2
    assert one(db, 'count_over_time(up{pod="b"}[5m])', t) == 4
    # comes back when written again
    t = scrape(db, 5, [("up", {"pod": "a"}, 1.0), ("up", {"pod": "b"}, 2.0)])
    assert vec(db, "sum by (pod) (up)", t) == {frozenset({("pod", "a")}): 1.0, frozenset({("pod", "b")}): 2.0}
    # staleness is per target: a separate target's series are unaffected by this target's scrapes
    db.add_many([("x", {}, 1.0)], t, target="other")
    t = scrape(db, 6, [("up", {"pod": "a"}, 1.0)])
    assert len(eval_instant(db, "x", t)) == 1
    # a sample written with add() (no scrape) is visible for the 5 minute lookback only
    db.add("pushed", {}, 7.0, t)
    assert one(db, "pushed", t + 299) == 7.0
    assert eval_instant(db, "pushed", t + 300) == []


@pytest.mark.parametrize("retention", [300.0, 1800.0])
def test_retention_keeps_memory_flat(retention):
    db = TSDB(retention_s=retention)
    period = int(db.trim_interval_s / STEP)  # samples are trimmed every trim_interval_s
    counts = []
    for i in range(int(3 * retention / STEP) + 8 * period):
        samples = [("g", {"i": str(k)}, float(i)) for k in range(20)]
        if i < 10:
            samples.append(("short_lived", {}, 1.0))
        db.add_many(samples, T0 + STEP * i)
        if i * STEP >= 2 * retention:
            counts.append(db.sample_count())
    # bounded: at most retention + one trim interval of samples per series
    assert max(counts) <= 20 * ((retention + db.trim_interval_s) / STEP + 1)
    # flat: the count only oscillates with the trim phase, it never grows
    assert all(counts[k] == counts[k + period] for k in range(len(counts) - period))
    assert db.series_count() == 20  # the short-lived series was removed
    assert "short_lived" not in db.names()


def test_out_of_order_and_duplicate_timestamps():
    db = TSDB()
    db.add("g", {}, 1.0, T0)
    db.add("g", {}, 2.0, T0)  # same timestamp overwrites
    db.add("g", {}, 3.0, T0 - 10)  # out of order: rejected
    assert one(db, "g", T0) == 2.0
    assert db.rejected == 1
    db.add("g", {"empty": ""}, 5.0, T0 + 1)  # empty label == absent label
    assert db.series_count() == 1 and one(db, "g", T0 + 1) == 5.0


# ---------------------------------------------------------------------------------------------- API shapes


def test_instant_result_shapes():
    db = TSDB()
    db.add_many([("up", {"job": "b"}, 1.0), ("up", {"job": "a"}, 0.5), ("nan_g", {}, math.nan)], T0)
    r = evaluate(db, "up", T0)
    assert r == {"resultType": "vector", "result": [
        {"metric": {"__name__": "up", "job": "a"}, "value": [int(T0), "0.5"]},
        {"metric": {"__name__": "up", "job": "b"}, "value": [int(T0), "1"]},
    ]}
    assert list(r["result"][0]["metric"]) == ["__name__", "job"]
    assert evaluate(db, "1 + 1", T0) == {"resultType": "scalar", "result": [int(T0), "2"]}
    assert evaluate(db, '"hi"', T0) == {"resultType": "string", "result": [int(T0), "hi"]}
    assert evaluate(db, "nan_g", T0)["result"][0]["value"][1] == "NaN"
    m = evaluate(db, "up[1m]", T0 + 0.5)
    assert m["resultType"] == "matrix"
    assert m["result"][0]["values"] == [[int(T0), "0.5"]]
    assert evaluate(db, "up", T0 + 0.25)["result"][0]["value"][0] == T0 + 0.25
    assert evaluate(db, "nothing", T0) == {"resultType": "vector", "result": []}
    assert [format_value(x) for x in (1e-7, 1e21, -0.25, math.inf, 3.0)] == [
        "0.0000001", "1000000000000000000000", "-0.25", "+Inf", "3"]


def test_range_query_shape_sorting_and_errors():
    db = TSDB()
    for i in range(20):
        samples = [("req_total", {"svc": "b"}, 30.0 * i), ("req_total", {"svc": "a"}, 15.0 * i)]
        if i >= 10:
            samples.append(("late", {}, 1.0))
        scrape(db, i, samples)
    start, end = T0 + 120, T0 + 285
    r = evaluate_range(db, "rate(req_total[1m])", start, end, 15)
    assert r["resultType"] == "matrix"
    assert [s["metric"] for s in r["result"]] == [{"svc": "a"}, {"svc": "b"}]
    a = r["result"][0]["values"]
    assert len(a) == 12 and a[0][0] == int(start) and a[-1][0] == int(end)
    assert [t for t, _ in a] == [int(start) + 15 * k for k in range(12)]
    assert all(isinstance(v, str) and float(v) == pytest.approx(1.0) for _, v in a)
    assert all(float(v) == pytest.approx(2.0) for _, v in r["result"][1]["values"])
    late = evaluate_range(db, "late", T0, end, 15)["result"][0]["values"]
    assert late[0][0] == int(T0 + 150)  # missing steps are simply absent
    sc = evaluate_range(db, "vector(1) * 3", start, start + 30, 15)
    assert sc["result"] == [{"metric": {}, "values": [[int(start), "3"], [int(start) + 15, "3"], [int(start) + 30, "3"]]}]
    with pytest.raises(PromQLError, match="zero or negative query resolution step widths are not accepted"):
        evaluate_range(db, "up", start, end, 0)
    with pytest.raises(PromQLError, match="exceeded maximum resolution of 11,000 points per timeseries"):
        evaluate_range(db, "up", T0, T0 + 11001, 1)
    with pytest.raises(PromQLError, match="end timestamp must not be before start time"):
        evaluate_range(db, "up", end, start, 15)
    with pytest.raises(PromQLError, match='invalid expression type "range vector"'):
        evaluate_range(db, "up[1m]", start, end, 15)


def test_parse_errors():
    db = TSDB()
    with pytest.raises(PromQLError) as e:
        evaluate(db, "sum(rate(x[5m])", T0)
    assert e.value.error_type == "bad_data" and e.value.http_status == 400
    assert str(e.value) == 'invalid parameter "query": parse error: unclosed left parenthesis'
    assert e.value.to_api() == {"status": "error", "errorType": "bad_data", "error": str(e.value)}
    with pytest.raises(PromQLError, match="unknown function with name 'nope'"):
        evaluate(db, "nope(x)", T0)
    with pytest.raises(PromQLError, match="expected type matrix in call to function 'rate'"):
        evaluate(db, "rate(x)", T0)
    with pytest.raises(PromQLError, match="parse error"):
        evaluate(db, "", T0)
