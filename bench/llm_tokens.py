"""Prompt size of the LLM policy per incident, measured offline with a scripted model.

    uv run python bench/llm_tokens.py [--scenarios scenarios] [--limit N]

The scripted ``EvidenceFollowingModel`` takes the cheapest correct path a capable model would take from
the evidence STRATUS puts in its prompts (no extra tool calls), so the figures are the floor of what the
evidence-first prompts cost, and show how they grow with retries. Token counts come from
``count_tokens_approximately`` (a scripted model reports no usage metadata).
"""

from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path

from stratus.bench.runner import run_scenario
from stratus.context import Context
from stratus.policies.scripted import EvidenceFollowingModel


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--scenarios", default="scenarios")
    ap.add_argument("--limit", type=int, default=0)
    args = ap.parse_args()
    files = sorted(Path(args.scenarios).glob("*.yaml"))
    if args.limit:
        files = files[: args.limit]
    rows = []
    for f in files:
        ctx = Context(policy="llm", chat_model=EvidenceFollowingModel())
        r = run_scenario(f, policy="llm", context=ctx)
        rows.append(r)
        print(f"{r['scenario']:50s} mitigated={r['mitigated']!s:5} calls={r['llm_calls']:2d} "
              f"prompt_tokens={r['llm_prompt_tokens']:6d} tokens={r['llm_tokens']:6d} tx={r['transactions']}",
              flush=True)
    prompt = [r["llm_prompt_tokens"] for r in rows if r["detected"]]
    summary = {
        "incidents": len(prompt),
        "median_prompt_tokens_per_incident": statistics.median(prompt) if prompt else 0,
        "max_prompt_tokens_per_incident": max(prompt) if prompt else 0,
        "median_llm_calls": statistics.median(r["llm_calls"] for r in rows),
        "mitigated": sum(r["mitigated"] for r in rows),
        "runs": len(rows),
    }
    print(json.dumps(summary, indent=2))


if __name__ == "__main__":
    main()
