"""Telemetry from any Prometheus HTTP API and Alertmanager API, by URL (httpx), for real clusters.

``PrometheusHTTP.query`` and ``query_range`` return the ``data`` member of Prometheus's
``/api/v1/query`` and ``/api/v1/query_range`` answers, the shape the twin's engine returns too.
``alerts`` reads Alertmanager API v2 ``/api/v2/alerts`` when an Alertmanager URL is given, else the
firing alerts of Prometheus's ``/api/v1/alerts`` in the Alertmanager v2 shape.
"""

from __future__ import annotations

from typing import Any

import httpx
from tenacity import retry, retry_if_exception_type, stop_after_attempt, wait_exponential

from stratus.cluster.base import ClusterError

TIMEOUT_S = 10.0


class _Transient(Exception):
    pass


class PrometheusHTTP:
    """Queries and alerts over HTTP; either URL may be None (then that source answers with an error)."""

    def __init__(self, prometheus_url: str | None = None, alertmanager_url: str | None = None,
                 headers: dict[str, str] | None = None, verify: bool | str = True) -> None:
        self.prometheus_url = prometheus_url.rstrip("/") if prometheus_url else None
        self.alertmanager_url = alertmanager_url.rstrip("/") if alertmanager_url else None
        self.http = httpx.Client(timeout=TIMEOUT_S, headers=headers, verify=verify)

    @retry(retry=retry_if_exception_type(_Transient), stop=stop_after_attempt(4),
           wait=wait_exponential(multiplier=0.2, max=3), reraise=True)
    def _get(self, url: str, params: dict[str, Any] | None = None) -> Any:
        try:
            r = self.http.get(url, params=params)
        except httpx.TransportError as exc:
            raise _Transient(f"{url}: {exc}") from exc
        if r.status_code == 429 or r.status_code >= 500:
            raise _Transient(f"{url}: HTTP {r.status_code}")
        try:
            body = r.json()
        except ValueError as exc:
            raise ClusterError(f"{url} answered HTTP {r.status_code} without JSON: {r.text[:200]}") from exc
        if r.status_code >= 400 or (isinstance(body, dict) and body.get("status") == "error"):
            detail = body.get("error", r.text[:200]) if isinstance(body, dict) else r.text[:200]
            raise ClusterError(f"{url} refused the request (HTTP {r.status_code}): {detail}")
        return body

    def _prom(self, path: str, params: dict[str, Any]) -> dict[str, Any]:
        if not self.prometheus_url:
            raise ClusterError("no Prometheus URL configured: pass prometheus_url= (or --prometheus URL)")
        try:
            return dict(self._get(self.prometheus_url + path, params)["data"])
        except _Transient as exc:
            raise ClusterError(f"Prometheus unavailable after retries: {exc}") from exc

    def query(self, promql: str, at: float | None = None) -> dict[str, Any]:
        return self._prom("/api/v1/query", {"query": promql, **({"time": at} if at is not None else {})})

    def query_range(self, promql: str, start: float, end: float, step: float) -> dict[str, Any]:
        return self._prom("/api/v1/query_range", {"query": promql, "start": start, "end": end, "step": step})

    def alerts(self) -> list[dict[str, Any]]:
        try:
            if self.alertmanager_url:
                return list(self._get(self.alertmanager_url + "/api/v2/alerts", {"active": "true"}))
            if not self.prometheus_url:
                return []
            firing = self._get(self.prometheus_url + "/api/v1/alerts")["data"]["alerts"]
        except _Transient as exc:
            raise ClusterError(f"alert source unavailable after retries: {exc}") from exc
        return [{"labels": a.get("labels", {}), "annotations": a.get("annotations", {}),
                 "startsAt": a.get("activeAt", ""), "status": {"state": "active", "silencedBy": [],
                                                               "inhibitedBy": []}}
                for a in firing if a.get("state") == "firing"]
