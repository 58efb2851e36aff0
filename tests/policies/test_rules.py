"""The offline rules policy localises the root cause from telemetry alone, for every fault.

Each case injects a fault into a twin, waits (simulated time) until alerts fire, and asks
``RulesPolicy().diagnose`` through the Cluster protocol only. The top hypothesis must name the injected
component and the right fault class, and carry the AIOpsLab labels the policy's own table gives that
class (not the fault catalogue's: the benchmark grades them against the catalogue, so they can be
wrong). A last check proves the policy cannot have peeked: importing it loads neither the twin nor the
bench.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from stratus.policies.rules import RulesPolicy, runbook_data
from stratus.state import Hypothesis
from stratus.tools.kubectl import parse
from stratus.twin.faults import REGISTRY, inject

NS = "test-hotel-reservation"
ROOT = Path(__file__).resolve().parents[2]

CLASS_OF = {
    "service_target_port": "service_port_mismatch",
    "scale_to_zero": "scaled_to_zero",
    "nonexistent_node_selector": "unschedulable",
    "crashing_image": "bad_rollout",
    "missing_image": "image_pull",
    "wrong_command": "wrong_binary",
    "revoke_db_role": "db_role_revoked",
    "drop_db_user": "db_user_missing",
    "env_misconfig": "env_misconfig",
    "network_policy_block": "network_policy",
    "memory_limit_oom": "oom_limit",
    "readiness_probe_misconfig": "readiness_probe",
    "pod_failure": "pod_chaos",
    "network_delay": "network_chaos",
}

TARGETS = {
    "service_target_port": ("geo", "user", "frontend"),
    "scale_to_zero": ("profile", "memcached-profile"),
    "nonexistent_node_selector": ("user", "search"),
    "crashing_image": ("geo", "reservation"),
    "missing_image": ("search", "mongodb-profile"),
    "wrong_command": ("profile", "user"),
    "revoke_db_role": ("mongodb-geo", "mongodb-rate"),
    "drop_db_user": ("mongodb-geo", "mongodb-reservation"),
    "env_misconfig": ("geo", "frontend"),
    "network_policy_block": ("user", "mongodb-profile"),
    "memory_limit_oom": ("rate", "geo"),
    "readiness_probe_misconfig": ("search", "frontend"),
    "pod_failure": ("reservation", "geo"),
    "network_delay": ("profile", "rate"),
}
CASES = [(f, t) for f, ts in TARGETS.items() for t in ts]


def test_every_fault_has_localisation_cases() -> None:
    assert set(TARGETS) == {n for n, s in REGISTRY.items() if not s.new} - {"noop"}  # the known types
    assert set(CLASS_OF) == set(TARGETS)


@pytest.mark.parametrize(("fault", "target"), CASES, ids=[f"{f}@{t}" for f, t in CASES])
def test_top_hypothesis_is_the_injected_component(fault: str, target: str, world: Any, cluster: Any,
                                                  twin_helpers: Any) -> None:
    inject(world, fault, target)
    waited = twin_helpers.advance_until_alerts(world)
    assert twin_helpers.firing_names(world), f"no alert within {waited:.0f}s of injecting {fault}@{target}"

    findings, hyps, _view = RulesPolicy().diagnose(cluster, NS)
    assert findings and hyps
    top = hyps[0]
    assert isinstance(top, Hypothesis)
    assert top.component == target, [(h.component, h.fault_class, h.confidence) for h in hyps[:4]]
    assert top.fault_class == CLASS_OF[fault]
    assert [top.system_level, top.fault_type] == runbook_data()["classes"][top.fault_class]["labels"]
    assert top.evidence, "a hypothesis cites the evidence it rests on"


@pytest.mark.parametrize(("fault", "target"), [("scale_to_zero", "profile"), ("network_policy_block", "geo"),
                                               ("revoke_db_role", "mongodb-geo")])
def test_first_plan_targets_the_root_cause(fault: str, target: str, world: Any, cluster: Any,
                                           twin_helpers: Any) -> None:
    inject(world, fault, target)
    twin_helpers.advance_until_alerts(world)
    policy = RulesPolicy()
    _f, hyps, view = policy.diagnose(cluster, NS)
    choice = policy.next_plan(cluster, NS, hyps, {}, view)
    assert choice is not None
    assert choice.hypothesis.component == target and choice.actions and choice.expect
    assert choice.actions[0].name in (target, f"deny-{target}")
    # a tried plan is never offered again
    again = policy.next_plan(cluster, NS, hyps, {choice.key: choice.commands}, view)
    assert again is None or again.key != choice.key


def test_healthy_twin_yields_no_confident_hypothesis(cluster: Any) -> None:
    findings, hyps, _ = RulesPolicy().diagnose(cluster, NS)
    assert not [f for f in findings if f.severity == "critical"]
    assert all(h.confidence < 0.3 for h in hyps)


PEEK_CHECK = """
import importlib, importlib.util, sys
modules = ["stratus.graph", "stratus.agents.detection", "stratus.agents.diagnosis", "stratus.agents.mitigation",
           "stratus.agents.undo", "stratus.agents.report", "stratus.policies.rules", "stratus.policies.runbooks",
           "stratus.policies.llm", "stratus.tools.health", "stratus.tools.transaction", "stratus.tools.analyzers",
           "stratus.tools.kubectl", "stratus.tools.telemetry"]
for name in modules:
    if importlib.util.find_spec(name) is not None:
        importlib.import_module(name)
print("LEAKS=" + ",".join(sorted(m for m in sys.modules if m.startswith(("stratus.twin", "stratus.bench")))))
"""


def test_policy_agents_and_tools_never_import_the_twin_or_bench() -> None:
    out = subprocess.run([sys.executable, "-c", PEEK_CHECK], capture_output=True, text=True, cwd=ROOT,
                         timeout=120)
    assert out.returncode == 0, out.stderr
    leaks = next(line for line in out.stdout.splitlines() if line.startswith("LEAKS="))
    assert leaks == "LEAKS=", f"agents/policies/tools pulled in ground truth: {leaks}"


def test_import_linter_contracts_hold() -> None:
    exe = shutil.which("lint-imports", path=str(Path(sys.executable).parent) + os.pathsep + os.environ["PATH"])
    if exe is None:
        pytest.skip("import-linter is not installed in this environment")
    out = subprocess.run([exe], capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "0 broken" in out.stdout
    assert "never see the twin" in out.stdout


def test_rollback_plan_after_an_undone_attempt_returns_to_the_pre_incident_template(
        world: Any, cluster: Any) -> None:
    from stratus.tools import transaction as txn

    def image() -> str:
        return cluster.get("Deployment", "geo", NS)["spec"]["template"]["spec"]["containers"][0]["image"]

    healthy_image = image()
    inject(world, "crashing_image", "geo")
    world.advance(120)
    faulty_image = image()
    attempt = parse(f"kubectl set image deployment/geo -n {NS} hotel-reserv-geo=yinfangchen/geo:nope")
    tx = txn.begin(cluster, "tx-wrong", 1, NS, [attempt], None, holder="test", ttl_s=600)
    tx = txn.snapshot_and_guard(cluster, tx, {NS})
    txn.apply_all(cluster, tx)
    world.advance(60)
    assert txn.undo(cluster, tx) == [] and image() == faulty_image, "TNR undid the wrong attempt"
    world.advance(60)

    hyp = Hypothesis(component="geo", fault_class="bad_rollout", confidence=0.9)
    actions = RulesPolicy().plans(cluster, NS, hyp)[0].actions
    assert [a.verb for a in actions] == ["rollout_undo"]
    assert cluster.apply(actions[0]).ok
    assert image() == healthy_image, f"rolled back to {image()} (the undone attempt), not {healthy_image}"


def test_env_fix_points_at_the_port_the_dependency_serves(world: Any, cluster: Any, twin_helpers: Any) -> None:
    inject(world, "env_misconfig", "profile", {"var": "CONSUL_ADDR"})
    twin_helpers.advance_until_alerts(world)
    policy = RulesPolicy()
    _f, hyps, view = policy.diagnose(cluster, NS)
    assert (hyps[0].component, hyps[0].fault_class) == ("profile", "env_misconfig")
    choice = policy.next_plan(cluster, NS, hyps, {}, view)
    assert choice is not None
    actions = choice.actions
    assert actions[0].verb == "set_env"
    assert actions[0].params["env"] == {"CONSUL_ADDR": "consul:8500"}
