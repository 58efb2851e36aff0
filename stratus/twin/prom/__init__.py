"""The twin's Prometheus: a PromQL engine over :mod:`stratus.twin.tsdb` and alert rule evaluation.

Laid out like Prometheus' own ``promql/`` and ``rules/``:

* :mod:`.value` values, errors and JSON formats; :mod:`.engine` evaluation core, selectors, subqueries;
  :mod:`.parser` glue from ``promql_parser``'s AST to our nodes; :mod:`.functions` and :mod:`.over_time`
  the function registry and its entries; :mod:`.aggregations` the aggregation operators;
  :mod:`.binary` binary operators and vector matching; :mod:`.stats` quantiles and variance;
  :mod:`.query` the HTTP API's query endpoints.
* :mod:`.rules` rule files and the alert state machine; :mod:`.template` alert templates;
  :mod:`.alertmanager` fingerprints, times and the webhook payload.
* Over the wire: :mod:`.http` the Prometheus and Alertmanager HTTP APIs and ``/metrics``
  (:func:`.http.serve_prometheus`); :mod:`.exposition` the text exposition format of the current
  samples; :mod:`.remote_write` remote-write pushes at simulated timestamps, staleness markers included.
"""
