"""Write the committed scenario suite (scenarios/*.yaml): every fault on three or four targets, plus controls.

Targets are chosen across tiers (entry, mid-tier, leaf, data stores), mostly not the public benchmark's
own target. Run: `uv run python bench/make_scenarios.py` (idempotent).
"""

from pathlib import Path

import yaml

from stratus.twin.faults import REGISTRY

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


def main(out: Path = Path("scenarios")) -> None:
    out.mkdir(exist_ok=True)
    for old in out.glob("hotel-*.yaml"):
        old.unlink()
    n = 0
    for fault, targets in MATRIX.items():
        spec = REGISTRY[fault]
        for target in targets:
            sid = f"hotel-{target}-{fault.replace('_', '-')}"
            doc = {"id": sid, "app": "hotel-reservation", "seed": 11 + 7 * n,
                   "faults": [{"type": fault, "target": target}],
                   "noise": NOISE.get((fault, target), "none"),
                   "expect": {"detected": True, "root_cause": [target], "system_level": spec.system_level,
                              "fault_type": spec.fault_type}}
            (out / f"{sid}.yaml").write_text(yaml.safe_dump(doc, sort_keys=False))
            n += 1
    for seed, noise in ((3, "none"), (5, "low"), (9, "high")):
        sid = f"hotel-noop-{noise}"
        doc = {"id": sid, "app": "hotel-reservation", "seed": seed, "faults": [], "noise": noise,
               "expect": {"detected": False, "root_cause": []}}
        (out / f"{sid}.yaml").write_text(yaml.safe_dump(doc, sort_keys=False))
        n += 1
    print(f"wrote {n} scenarios to {out}/")


if __name__ == "__main__":
    main()
