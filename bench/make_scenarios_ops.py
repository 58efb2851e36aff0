"""Write the scenarios of the wider catalogue: every new fault type on two HotelReservation targets,
multi-fault scenarios (two and three faults), benign changes and distractor noise mixed in.

Two suites from one table of rules, kept apart by construction:
- development (``scenarios/hotel-ops-*``, ``scenarios/hotel-multi-*``): ``DEV`` targets, seeds from 500;
- hold-out (``scenarios-holdout/``): ``HOLDOUT`` targets (no fault type on a target it has in
  development), other combinations for the multi-fault ones, seeds from 900, benign kinds and noise
  rotated differently. Nobody runs an agent on the hold-out suite while developing; `stratus bench
  --holdout` runs it.
Seeds are assigned in file order, never chosen by how an agent does. Called by ``make_scenarios.py``;
run alone: `uv run python bench/make_scenarios_ops.py` (idempotent).
"""

from pathlib import Path

import yaml

from stratus.twin.faults import REGISTRY

APP = "hotel-reservation"
DEV = {
    "service_selector_typo": ["geo", "reservation"], "service_deleted": ["profile", "memcached-rate"],
    "env_wrong_host": ["search", "frontend"], "service_port_changed": ["rate", "mongodb-user"],
    "db_service_wrong_port": ["mongodb-geo", "mongodb-recommendation"],
    "deployment_deleted": ["memcached-profile", "user"], "configmap_key_edited": ["frontend", "rate"],
    "configmap_key_deleted": ["geo", "profile"], "secret_missing": ["user", "reservation"],
    "liveness_probe_wrong_port": ["recommendation", "geo"], "command_typo": ["reservation", "search"],
    "poststart_hook_failure": ["search", "profile"], "request_too_large": ["geo", "mongodb-profile"],
    "node_taint": ["profile", "rate"], "node_cordon": ["rate", "recommendation"],
    "affinity_to_nothing": ["user", "search"], "resource_quota_exhausted": ["search", "geo"],
    "limit_range_default_oom": ["geo", "reservation"], "pvc_wrong_storage_class": ["mongodb-user", "mongodb-geo"],
    "pvc_deleted": ["mongodb-rate", "mongodb-profile"],
}
DEV_MULTI = [
    [("service_selector_typo", "geo"), ("node_cordon", "user")],
    [("configmap_key_edited", "rate"), ("liveness_probe_wrong_port", "recommendation")],
    [("secret_missing", "user"), ("service_target_port", "reservation")],
    [("request_too_large", "search"), ("scale_to_zero", "memcached-profile")],
    [("pvc_deleted", "mongodb-geo"), ("env_misconfig", "frontend")],
    [("command_typo", "profile"), ("service_deleted", "memcached-rate"), ("resource_quota_exhausted", "geo")],
    [("node_taint", "search"), ("missing_image", "user"), ("db_service_wrong_port", "mongodb-reservation")],
]
HOLDOUT = {
    "service_selector_typo": ["profile", "mongodb-rate"], "service_deleted": ["geo"],
    "env_wrong_host": ["geo", "reservation"], "service_port_changed": ["search"],
    "db_service_wrong_port": ["mongodb-rate"], "deployment_deleted": ["memcached-rate"],
    "configmap_key_edited": ["search"], "configmap_key_deleted": ["reservation"], "secret_missing": ["geo"],
    "liveness_probe_wrong_port": ["frontend"], "command_typo": ["user"], "poststart_hook_failure": ["rate"],
    "request_too_large": ["recommendation"], "node_taint": ["geo"], "node_cordon": ["search"],
    "affinity_to_nothing": ["mongodb-rate"], "resource_quota_exhausted": ["profile"],
    "limit_range_default_oom": ["recommendation"], "pvc_wrong_storage_class": ["mongodb-reservation"],
    "pvc_deleted": ["mongodb-recommendation"],
    "service_target_port": ["profile"], "wrong_command": ["geo"], "memory_limit_oom": ["profile"],
}
HOLDOUT_MULTI = [
    [("env_wrong_host", "reservation"), ("node_cordon", "geo")],
    [("service_port_changed", "profile"), ("crashing_image", "user")],
    [("liveness_probe_wrong_port", "search"), ("pvc_wrong_storage_class", "mongodb-rate")],
    [("configmap_key_deleted", "frontend"), ("secret_missing", "recommendation"),
     ("service_selector_typo", "memcached-reserve")],
]
BENIGN_DEV = ([], ["rollout"], [], ["scale"], [], ["config"], ["rollout", "scale"])
BENIGN_HOLDOUT = (["scale"], [], ["config", "rollout"], [], ["rollout"])
NOISE_DEV = ("none", "none", "low", "none", "high")
NOISE_HOLDOUT = ("low", "none", "none", "high")


def _doc(sid: str, seed: int, faults: list[tuple[str, str]], noise: str, benign: list[str]) -> dict:
    expect: dict = {"detected": True, "root_cause": [t for _, t in faults]}
    if len(faults) == 1:
        spec = REGISTRY[faults[0][0]]
        expect.update(system_level=spec.system_level, fault_type=spec.fault_type)
    doc: dict = {"id": sid, "app": APP, "seed": seed,
                 "faults": [{"type": f, "target": t} for f, t in faults], "noise": noise}
    if benign:
        doc["benign"] = list(benign)
    doc["expect"] = expect
    return doc


def write(out: Path, singles: dict[str, list[str]], multi: list[list[tuple[str, str]]], seed: int, prefix: str,
          benign: tuple[list[str], ...], noise: tuple[str, ...]) -> int:
    out.mkdir(exist_ok=True)
    n = 0
    cases = [(f"{prefix}-ops-{t}-{f.replace('_', '-')}", [(f, t)]) for f, ts in singles.items() for t in ts]
    cases += [(f"{prefix}-multi{len(fs)}-" + "-".join(t for _, t in fs), fs) for fs in multi]
    for sid, faults in cases:
        doc = _doc(sid, seed + n, faults, noise[n % len(noise)], benign[n % len(benign)])
        (out / f"{sid}.yaml").write_text(yaml.safe_dump(doc, sort_keys=False))
        n += 1
    return n


def main(out: Path = Path("scenarios"), holdout: Path | None = None) -> int:
    n = write(out, DEV, DEV_MULTI, 500, "hotel", BENIGN_DEV, NOISE_DEV)
    if holdout is not None:
        for old in holdout.glob("*.yaml"):
            old.unlink()
        write(holdout, HOLDOUT, HOLDOUT_MULTI, 900, "holdout", BENIGN_HOLDOUT, NOISE_HOLDOUT)
    return n


if __name__ == "__main__":
    print(f"wrote {main(Path('scenarios'), Path('scenarios-holdout'))} development scenarios to scenarios/ "
          "and the hold-out suite to scenarios-holdout/")
