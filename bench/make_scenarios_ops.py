"""Write the scenarios of the wider catalogue: single faults of every new type on all three apps,
compound incidents (two and three faults) on all three apps, benign changes and distractor noise.

Development suite (``scenarios/``), built from these rules:
- the hand-written HotelReservation tables ``DEV`` (single faults, seeds from 500) and ``DEV_MULTI``;
- ``RETIRED_HOLDOUT``/``RETIRED_HOLDOUT_MULTI``: the first hold-out suite (seeds from 900). Its results
  were read while developing, so it no longer is one; its files moved into ``scenarios/`` with their
  ids (``holdout-*``);
- every new fault type on a SocialNetwork and an Astronomy Shop target where the type applies (``_singles``,
  seeds from 600);
- ``COMPOUND_DEV`` compound incidents per app (``_compounds``, seeds from 700);
- ``COMPOUND_DEV_MORE`` further compound incidents per app (seeds from 1500), added after the hold-out
  suite had been run once: drawn from their own stream, clear of every (app, fault, target) the hold-out
  suite uses, so it stays as it was. They bring the development suite's share of compound incidents
  (27% before) closer to the hold-out suite's (56%).

Hold-out suite (``scenarios-holdout/``, seeds from 2000), the same composition: new fault types on other
targets of all three apps (never a (fault type, target, app) single the development suite has), and
compound incidents drawn by the same rule from another random stream (a combination the development
suite has is skipped). Nobody runs an agent on it while developing; ``stratus bench --holdout`` runs it
once, at the end. ``tests/bench/test_generators.py`` checks that the two share no single-fault pair and
no seed, and that both are reproduced exactly.

Rules, never hand-picked by how an agent does: a target is any application service or data store
(``_targets``; not the tracing/telemetry infrastructure, the load generator, or ``cart``/``checkout``,
which the LLM policy's few-shot examples name) on which the fault can be staged and injected; a compound
incident takes fault types from distinct families on distinct targets, drawn from a seeded stream per
app and suite; noise and benign changes rotate through fixed tuples; seeds are assigned in file order.
Called by ``make_scenarios.py``; run alone: `uv run python bench/make_scenarios_ops.py` (idempotent).
"""

import copy
import importlib.util
import random
from pathlib import Path
from typing import Any

import yaml

from stratus.twin.faults import REGISTRY, stage
from stratus.twin.faults import inject as inject_fault
from stratus.twin.world import World

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
RETIRED_HOLDOUT = {
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
RETIRED_HOLDOUT_MULTI = [
    [("env_wrong_host", "reservation"), ("node_cordon", "geo")],
    [("service_port_changed", "profile"), ("crashing_image", "user")],
    [("liveness_probe_wrong_port", "search"), ("pvc_wrong_storage_class", "mongodb-rate")],
    [("configmap_key_deleted", "frontend"), ("secret_missing", "recommendation"),
     ("service_selector_typo", "memcached-reserve")],
]
BENIGN_DEV = ([], ["rollout"], [], ["scale"], [], ["config"], ["rollout", "scale"])
BENIGN_RETIRED = (["scale"], [], ["config", "rollout"], [], ["rollout"])
NOISE_DEV = ("none", "none", "low", "none", "high")
NOISE_RETIRED = ("low", "none", "none", "high")


PREFIX = {"hotel-reservation": "hotel", "social-network": "social", "astronomy-shop": "astro"}
NOT_TARGETS = {"jaeger", "otel-collector", "load-generator", "wrk2", "locust", "cart", "checkout"}
COMPOUND_DEV = {2: 14, 3: 6}  # per app: compound incidents with two and three faults
COMPOUND_HOLDOUT = {2: 8, 3: 4}
COMPOUND_DEV_MORE = {2: 12, 3: 8}  # per app, drawn after the hold-out suite and clear of its pairs
BENIGN_NEW = ([], ["rollout"], ["scale"], [], ["config"], ["rollout", "scale"], [])
NOISE_NEW = ("none", "low", "none", "high", "none")
SEEDS = {"singles": 600, "compounds": 700, "more": 1500, "holdout": 2000}
_APPLIES: dict[tuple[str, str, str], bool] = {}
_FRESH: dict[str, World] = {}


def _doc(sid: str, seed: int, faults: list[tuple[str, str]], noise: str, benign: list[str],
         app: str = APP) -> dict:
    expect: dict = {"detected": True, "root_cause": [t for _, t in faults]}
    if len(faults) == 1:
        spec = REGISTRY[faults[0][0]]
        expect.update(system_level=spec.system_level, fault_type=spec.fault_type)
    doc: dict = {"id": sid, "app": app, "seed": seed,
                 "faults": [{"type": f, "target": t} for f, t in faults], "noise": noise}
    if benign:
        doc["benign"] = list(benign)
    doc["expect"] = expect
    return doc


def applies(app: str, fault: str, target: str) -> bool:
    """Whether ``fault`` can be staged and injected on ``target`` of a fresh ``app`` (cached)."""
    key = (app, fault, target)
    if key not in _APPLIES:
        if app not in _FRESH:
            _FRESH[app] = World(app, seed=1)
        try:
            world = copy.deepcopy(_FRESH[app])  # a copy of a fresh twin: building one per probe is slow
            stage(world, fault, target)
            inject_fault(world, fault, target)
            _APPLIES[key] = True
        except Exception:  # noqa: BLE001 - any failure to inject means the fault does not apply there
            _APPLIES[key] = False
    return _APPLIES[key]


def _targets(app: str) -> list[str]:
    """Application services and data stores of ``app``, in the app's order."""
    if app not in _FRESH:
        _FRESH[app] = World(app, seed=1)
    return [c for c in _FRESH[app].app.components if c not in NOT_TARGETS]


def _new_types() -> list[str]:
    return sorted(n for n, spec in REGISTRY.items() if spec.new)


def _fault_pool() -> list[str]:
    return sorted(n for n, spec in REGISTRY.items() if spec.family not in ("control", ""))


def _singles(app: str, taken: set[tuple[str, str]], rank: int) -> list[tuple[str, str]]:
    """One (fault, target) per new fault type that applies on ``app``: the ``rank``-th applicable target
    (counted from a per-type offset, so targets spread over the app) not in ``taken``."""
    comps = _targets(app)
    out = []
    for i, fault in enumerate(_new_types()):
        free = [comps[(i * 5 + j) % len(comps)] for j in range(len(comps))]
        free = [t for t in free if (fault, t) not in taken and applies(app, fault, t)]
        if len(free) > rank:
            out.append((fault, free[rank]))
    return out


def _compounds(app: str, stream: str, counts: dict[int, int], skip: set[frozenset[tuple[str, str]]],
               avoid: set[tuple[str, str]] | None = None) -> list[list[tuple[str, str]]]:
    """Compound incidents on ``app`` from the random stream named ``stream``: each takes fault types of
    distinct families on distinct targets, every fault applicable where it lands; a combination in
    ``skip`` (or drawn before), or with a (fault, target) in ``avoid``, is drawn again (bounded)."""
    rng = random.Random(f"{app}/{stream}")
    comps, pool = _targets(app), _fault_pool()
    out: list[list[tuple[str, str]]] = []
    for k, n in sorted(counts.items()):
        made, tries = 0, 0
        while made < n and tries < 400:
            tries += 1
            faults = rng.sample(pool, k)
            targets = rng.sample(comps, k)
            if len({REGISTRY[f].family for f in faults}) < k:
                continue
            combo = list(zip(faults, targets))
            key = frozenset(combo)
            if key in skip or set(combo) & (avoid or set()) or not all(applies(app, f, t) for f, t in combo):
                continue
            skip.add(key)
            out.append(combo)
            made += 1
    return out


def _multi_id(prefix: str, combo: list[tuple[str, str]]) -> str:
    return f"{prefix}-multi{len(combo)}-" + "-".join(t for _, t in combo)


def write(out: Path, singles: dict[str, list[str]], multi: list[list[tuple[str, str]]], seed: int, prefix: str,
          benign: tuple[list[str], ...], noise: tuple[str, ...]) -> int:
    out.mkdir(exist_ok=True)
    n = 0
    cases = [(f"{prefix}-ops-{t}-{f.replace('_', '-')}", [(f, t)]) for f, ts in singles.items() for t in ts]
    cases += [(_multi_id(prefix, fs), fs) for fs in multi]
    for sid, faults in cases:
        doc = _doc(sid, seed + n, faults, noise[n % len(noise)], benign[n % len(benign)])
        (out / f"{sid}.yaml").write_text(yaml.safe_dump(doc, sort_keys=False))
        n += 1
    return n


def _write_cases(out: Path, cases: list[tuple[str, str, list[tuple[str, str]]]], seed: int) -> list[str]:
    """Write (id, app, faults) cases with seeds from ``seed`` in file order; returns the ids written."""
    out.mkdir(exist_ok=True)
    ids = []
    for n, (sid, app, faults) in enumerate(cases):
        doc = _doc(sid, seed + n, faults, NOISE_NEW[n % len(NOISE_NEW)], BENIGN_NEW[n % len(BENIGN_NEW)], app)
        (out / f"{sid}.yaml").write_text(yaml.safe_dump(doc, sort_keys=False))
        ids.append(sid)
    return ids


def _unique(cases: list[tuple[str, str, list[tuple[str, str]]]], taken: set[str]) -> list[tuple[str, str, Any]]:
    """Drop cases whose id is already used (two draws on the same targets keep the first)."""
    out = []
    for case in cases:
        if case[0] not in taken:
            taken.add(case[0])
            out.append(case)
    return out


def _sibling_pairs() -> set[tuple[str, str, str]]:
    """(app, fault, target) of the scenarios ``make_scenarios.py`` writes itself (its tables)."""
    spec = importlib.util.spec_from_file_location("make_scenarios", Path(__file__).with_name("make_scenarios.py"))
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    pairs = {(APP, f, t) for table in (module.MATRIX, {f: ts for f, (ts, _) in module.GATE.items()})
             for f, ts in table.items() for t in ts}
    return pairs | {(app, row[0], row[1]) for app, (_, rows) in module.OTHER_APPS.items() for row in rows}


def suites() -> tuple[list[tuple[str, str, Any]], list[tuple[str, str, Any]], list[tuple[str, str, Any]]]:
    """The generated cases: development singles, development compounds, and the hold-out suite.

    Every (app, fault, target) of the hold-out suite, single or in a compound, is one no development
    scenario has."""
    dev_pairs = {(APP, f, t) for table in (DEV, RETIRED_HOLDOUT) for f, ts in table.items() for t in ts}
    dev_pairs |= {(APP, f, t) for c in DEV_MULTI + RETIRED_HOLDOUT_MULTI for f, t in c} | _sibling_pairs()
    dev_single, dev_multi = [], []
    for app, prefix in PREFIX.items():
        if app != APP:
            picked = _singles(app, {(f, t) for a, f, t in dev_pairs if a == app}, 0)
            dev_single += [(f"{prefix}-ops-{t}-{f.replace('_', '-')}", app, [(f, t)]) for f, t in picked]
        skip = {frozenset(c) for c in DEV_MULTI + RETIRED_HOLDOUT_MULTI} if app == APP else set()
        dev_multi += [(_multi_id(prefix, c), app, c) for c in _compounds(app, "dev", COMPOUND_DEV, skip)]
    dev_single = _unique(dev_single, set())
    dev_multi = _unique(dev_multi, {f"hotel-multi{len(c)}-" + "-".join(t for _, t in c) for c in DEV_MULTI})
    dev_pairs |= {(app, f, t) for _, app, faults in dev_single + dev_multi for f, t in faults}
    hold = []
    for rank, (app, prefix) in enumerate(PREFIX.items()):
        seen = {(f, t) for a, f, t in dev_pairs if a == app}
        hold += [(f"hold-{prefix}-ops-{t}-{f.replace('_', '-')}", app, [(f, t)])
                 for i, (f, t) in enumerate(_singles(app, seen, 0)) if (i + rank) % 2 == 0]
        hold += [(_multi_id(f"hold-{prefix}", c), app, c)
                 for c in _compounds(app, "holdout", COMPOUND_HOLDOUT, set(), avoid=seen)]
    return dev_single, dev_multi, _unique(hold, set())


def more_compounds(dev_multi: list[tuple[str, str, Any]],
                   hold: list[tuple[str, str, Any]]) -> list[tuple[str, str, Any]]:
    """Further development compounds (``COMPOUND_DEV_MORE``), from their own stream, drawn after the
    hold-out suite was fixed and clear of every (app, fault, target) it uses, so they change nothing in
    it. They bring the development suite's share of compound incidents closer to the hold-out suite's."""
    taken = {sid for sid, _, _ in dev_multi}
    out = []
    for app, prefix in PREFIX.items():
        avoid = {(f, t) for _, a, faults in hold if a == app for f, t in faults}
        skip = {frozenset(c) for _, a, c in dev_multi if a == app}
        out += [(_multi_id(prefix, c), app, c) for c in _compounds(app, "dev-more", COMPOUND_DEV_MORE, skip, avoid)]
    return _unique(out, taken)


def main(out: Path = Path("scenarios"), holdout: Path | None = None) -> int:
    n = write(out, DEV, DEV_MULTI, 500, "hotel", BENIGN_DEV, NOISE_DEV)
    n += write(out, RETIRED_HOLDOUT, RETIRED_HOLDOUT_MULTI, 900, "holdout", BENIGN_RETIRED, NOISE_RETIRED)
    dev_single, dev_multi, hold = suites()
    n += len(_write_cases(out, dev_single, SEEDS["singles"]))
    n += len(_write_cases(out, dev_multi, SEEDS["compounds"]))
    n += len(_write_cases(out, more_compounds(dev_multi, hold), SEEDS["more"]))
    if holdout is not None:
        for old in holdout.glob("*.yaml"):
            old.unlink()
        _write_cases(holdout, hold, SEEDS["holdout"])
    return n


if __name__ == "__main__":
    print(f"wrote {main(Path('scenarios'), Path('scenarios-holdout'))} development scenarios to scenarios/ "
          "and the hold-out suite to scenarios-holdout/")
