"""Write the committed scenario suite (scenarios/*.yaml): every fault on three or four targets, controls,
and scenarios that exercise the TNR gate (HotelReservation); and twelve fault types across the services
and data stores of SocialNetwork and the Astronomy Shop, with two controls each.

Targets are chosen across tiers (entry, mid-tier, leaf, data stores), mostly not the public benchmark's
own target. The gate scenarios pair a fault with high distractor noise that lands where the fault is,
so the first plausible plan can be harmful: an allow-all NetworkPolicy on the very pods a deny-all
policy blocks (deleting the wrong one first fixes nothing and removes a policy nobody asked to remove),
or a bystander evicted while the service registry is down (its restart, bundled with the fix, lands
before the registry serves). Their seeds are chosen by where the noise puts its distractor, never by
how an agent does. The wider catalogue's scenarios (and the hold-out suite) come from
``make_scenarios_ops.py``. Run: `uv run python bench/make_scenarios.py` (idempotent).
"""

import importlib.util
from pathlib import Path

import yaml

from stratus.bench.noise import add_noise
from stratus.twin.faults import REGISTRY
from stratus.twin.world import World

MATRIX = {
    "service_target_port": ["geo", "reservation", "frontend", "mongodb-geo"],
    "scale_to_zero": ["rate", "profile", "memcached-profile", "mongodb-rate"],
    "nonexistent_node_selector": ["profile", "search", "user", "mongodb-profile"],
    "crashing_image": ["geo", "recommendation", "reservation"],
    "missing_image": ["user", "search", "mongodb-profile"],
    "wrong_command": ["profile", "rate", "user"],
    "revoke_db_role": ["mongodb-geo", "mongodb-rate", "mongodb-user"],
    "drop_db_user": ["mongodb-rate", "mongodb-geo", "mongodb-reservation"],
    "env_misconfig": ["geo", "frontend", "search"],
    "network_policy_block": ["user", "geo", "mongodb-profile"],
    "memory_limit_oom": ["rate", "geo", "search", "mongodb-rate"],
    "readiness_probe_misconfig": ["search", "profile", "frontend"],
    "pod_failure": ["user", "geo", "reservation", "mongodb-rate"],
    "network_delay": ["geo", "rate", "profile", "memcached-rate"],
}
NOISE = {("revoke_db_role", "mongodb-rate"): "low", ("service_target_port", "reservation"): "high",
         ("network_delay", "rate"): "low", ("wrong_command", "user"): "high"}


# fault -> targets; "policy": the seed is the first from GATE_SEED_FROM whose high-noise allow-all policy
# selects the target's pods; an int list: those seeds (every service is a client of the registry)
GATE = {"network_policy_block": (["profile", "rate", "search", "reservation"], "policy"),
        "nonexistent_node_selector": (["consul"], [7, 101, 202])}
GATE_SEED_FROM = 100
APP = "hotel-reservation"

# The other twin apps: (fault, target, seed, noise, params) across their services and data stores, then
# two no-fault controls (noise low and none) with the seeds in CONTROL_SEEDS. Not `cart` or `checkout`:
# the LLM policy's few-shot kubectl examples name those (tests/llm/test_nl2kubectl.py keeps them apart).
_SN_IMAGE = "deathstarbench/social-network-microservices:buggy"
_ASTRO_IMAGE = "ghcr.io/open-telemetry/demo:2.0.2-product-catalog-broken"
OTHER_APPS: dict[str, tuple[str, list[tuple[str, str, int, str, dict]]]] = {
    "social-network": ("social", [
        ("scale_to_zero", "user-service", 11, "none", {}),
        ("nonexistent_node_selector", "user-service", 12, "low", {}),
        ("service_target_port", "user-service", 13, "none", {}),
        ("service_target_port", "text-service", 14, "low", {}),
        ("service_target_port", "post-storage-service", 15, "high", {}),
        ("wrong_command", "compose-post-service", 16, "none", {}),
        ("network_delay", "home-timeline-service", 17, "low", {}),
        ("memory_limit_oom", "social-graph-service", 18, "none", {}),
        ("pod_failure", "user-timeline-service", 19, "high", {}),
        ("crashing_image", "media-service", 20, "none", {"image": _SN_IMAGE}),
        ("missing_image", "unique-id-service", 21, "low", {}),
        ("env_misconfig", "url-shorten-service", 22, "none", {}),
        ("scale_to_zero", "post-storage-mongodb", 23, "none", {}),
        ("pod_failure", "user-memcached", 24, "low", {}),
        ("network_policy_block", "text-service", 25, "none", {}),
        ("readiness_probe_misconfig", "url-shorten-service", 26, "none", {}),
        ("network_delay", "social-graph-redis", 27, "high", {}),
    ]),
    "astronomy-shop": ("astro", [
        ("scale_to_zero", "payment", 31, "none", {}),
        ("service_target_port", "product-catalog", 32, "low", {}),
        ("network_policy_block", "currency", 33, "none", {}),
        ("network_delay", "payment", 34, "high", {}),
        ("memory_limit_oom", "recommendation", 35, "none", {}),
        ("nonexistent_node_selector", "frontend", 36, "low", {}),
        ("wrong_command", "shipping", 37, "none", {}),
        ("readiness_probe_misconfig", "ad", 38, "none", {}),
        ("pod_failure", "quote", 39, "low", {}),
        ("crashing_image", "product-catalog", 40, "none", {"image": _ASTRO_IMAGE}),
        ("missing_image", "email", 41, "high", {}),
        ("env_misconfig", "shipping", 42, "none", {}),
        ("env_misconfig", "recommendation", 43, "low", {}),
        ("scale_to_zero", "valkey-cart", 44, "none", {}),
        ("network_delay", "valkey-cart", 45, "low", {}),
        ("scale_to_zero", "kafka", 46, "none", {}),
        ("pod_failure", "flagd", 47, "none", {}),
    ]),
}
CONTROL_SEEDS = {"social-network": {"low": 28, "none": 29}, "astronomy-shop": {"low": 48, "none": 49}}


def _distractor_policy_target(seed: int) -> str | None:
    """The component whose pods the high-noise allow-all NetworkPolicy selects, for this seed."""
    world = World(APP, seed=seed)
    before = {p["metadata"]["name"] for p in world.store.list("NetworkPolicy", world.namespace)}
    add_noise(world, "high", seed)
    for pol in world.store.list("NetworkPolicy", world.namespace):
        if pol["metadata"]["name"] not in before:
            return pol["spec"]["podSelector"]["matchLabels"].get(world.app.label_key)
    return None


def _gate_seeds(target: str, rule: str | list[int]) -> list[int]:
    if not isinstance(rule, str):
        return rule
    seed = GATE_SEED_FROM
    while _distractor_policy_target(seed) != target:
        seed += 1
    return [seed]


def _doc(sid: str, seed: int, fault: str, target: str, noise: str, app: str = APP,
         params: dict | None = None) -> dict:
    spec = REGISTRY[fault]
    entry: dict = {"type": fault, "target": target}
    if params:
        entry["params"] = params
    return {"id": sid, "app": app, "seed": seed, "faults": [entry], "noise": noise,
            "expect": {"detected": True, "root_cause": [target], "system_level": spec.system_level,
                       "fault_type": spec.fault_type}}


def _other_apps(out: Path) -> int:
    n = 0
    for app, (prefix, rows) in OTHER_APPS.items():
        for old in out.glob(f"{prefix}-*.yaml"):
            old.unlink()
        for fault, target, seed, noise, params in rows:
            sid = f"{prefix}-{target}-{fault.replace('_', '-')}"
            doc = _doc(sid, seed, fault, target, noise, app, params)
            (out / f"{sid}.yaml").write_text(yaml.safe_dump(doc, sort_keys=False))
            n += 1
        for noise, seed in CONTROL_SEEDS[app].items():
            sid = f"{prefix}-noop-{noise}"
            doc = {"id": sid, "app": app, "seed": seed, "faults": [], "noise": noise,
                   "expect": {"detected": False, "root_cause": []}}
            (out / f"{sid}.yaml").write_text(yaml.safe_dump(doc, sort_keys=False))
            n += 1
    return n


def _ops():
    """The sibling generator of the wider catalogue, found next to this file however this one was loaded."""
    spec = importlib.util.spec_from_file_location("make_scenarios_ops", Path(__file__).with_name("make_scenarios_ops.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def main(out: Path = Path("scenarios")) -> None:
    out.mkdir(exist_ok=True)
    for old in out.glob("hotel-*.yaml"):
        old.unlink()
    n = 0
    for fault, targets in MATRIX.items():
        for target in targets:
            sid = f"hotel-{target}-{fault.replace('_', '-')}"
            doc = _doc(sid, 11 + 7 * n, fault, target, NOISE.get((fault, target), "none"))
            (out / f"{sid}.yaml").write_text(yaml.safe_dump(doc, sort_keys=False))
            n += 1
    for fault, (targets, rule) in GATE.items():
        for target in targets:
            for seed in _gate_seeds(target, rule):
                sid = f"hotel-gate-{target}-{fault.replace('_', '-')}-{seed}"
                (out / f"{sid}.yaml").write_text(yaml.safe_dump(_doc(sid, seed, fault, target, "high"),
                                                                sort_keys=False))
                n += 1
    for seed, noise in ((3, "none"), (5, "low"), (9, "high")):
        sid = f"hotel-noop-{noise}"
        doc = {"id": sid, "app": APP, "seed": seed, "faults": [], "noise": noise,
               "expect": {"detected": False, "root_cause": []}}
        (out / f"{sid}.yaml").write_text(yaml.safe_dump(doc, sort_keys=False))
        n += 1
    n += _other_apps(out)
    n += _ops().main(out)  # the wider catalogue, multi-fault and benign changes
    print(f"wrote {n} scenarios to {out}/")


if __name__ == "__main__":
    main()
