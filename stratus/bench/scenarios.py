"""Scenario files (DESIGN §8, a contract): load, validate, and report bad fields by name."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from stratus.twin.apps import available_apps, load_app
from stratus.twin.faults import REGISTRY, check_target
from stratus.twin.world import World

APP_NAMES = ("hotel-reservation", "social-network", "astronomy-shop")


class ScenarioError(ValueError):
    """An invalid scenario file; the message names the file and the field."""


class FaultEntry(BaseModel):
    model_config = ConfigDict(extra="forbid")

    type: str
    target: str | None = None
    params: dict[str, Any] = Field(default_factory=dict)

    @field_validator("type")
    @classmethod
    def _known(cls, v: str) -> str:
        if v not in REGISTRY:
            raise ValueError(f"unknown fault type {v!r}; known: {', '.join(sorted(REGISTRY))}")
        return v


class Expect(BaseModel):
    model_config = ConfigDict(extra="forbid")

    detected: bool = True
    root_cause: list[str] = Field(default_factory=list)
    system_level: str | None = None
    fault_type: str | None = None


class Scenario(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: str = Field(min_length=1)
    app: Literal["hotel-reservation", "social-network", "astronomy-shop"]
    seed: int = 0
    namespace: str | None = None
    faults: list[FaultEntry] = Field(default_factory=list)
    noise: Literal["none", "low", "high"] = "none"
    benign: list[Literal["rollout", "scale", "config"]] = Field(default_factory=list)  # routine changes
    expect: Expect = Field(default_factory=Expect)

    @model_validator(mode="after")
    def _targets(self) -> "Scenario":
        if self.app not in available_apps():
            raise ValueError(f"app {self.app!r} is not in this build of the twin; available: "
                             f"{', '.join(available_apps())}")
        app = load_app(self.app)
        for i, f in enumerate(self.faults):
            spec = REGISTRY[f.type]
            if spec.targets == "none":
                continue
            fake = World.__new__(World)  # a world shell is enough to check targets against the app's data
            fake.app = app
            try:
                check_target(fake, spec, f.target)
            except ValueError as exc:
                raise ValueError(str(exc).replace("faults[]", f"faults[{i}]")) from None
            unknown = set(f.params) - set(spec.params)
            if unknown:
                raise ValueError(f"faults[{i}].params: unknown parameter(s) {sorted(unknown)} for {f.type!r}; "
                                 f"allowed: {sorted(spec.params) or 'none'}")
        return self


def _expect_root_cause(data: dict[str, Any]) -> None:
    exp = data.get("expect")
    if isinstance(exp, dict) and isinstance(exp.get("root_cause"), str):
        exp["root_cause"] = [exp["root_cause"]]


def parse_scenario(data: Any, source: str = "<scenario>") -> Scenario:
    if not isinstance(data, dict):
        raise ScenarioError(f"{source}: a scenario file must be a YAML mapping, not {type(data).__name__}")
    _expect_root_cause(data)
    try:
        return Scenario.model_validate(data)
    except ValidationError as exc:
        msgs = []
        for err in exc.errors():
            loc = ".".join(str(p) for p in err["loc"]) or "(top level)"
            msg = err["msg"].removeprefix("Value error, ")
            if err["type"] == "extra_forbidden":
                msg = "unknown field (not part of the scenario format, see DESIGN §8)"
            msgs.append(f"{loc}: {msg}")
        raise ScenarioError(f"{source}: invalid scenario: " + "; ".join(msgs)) from None


def load_scenario(path: str | Path) -> Scenario:
    p = Path(path)
    if not p.exists():
        raise ScenarioError(f"{p}: no such scenario file")
    try:
        data = yaml.safe_load(p.read_text())
    except yaml.YAMLError as exc:
        raise ScenarioError(f"{p}: not valid YAML: {exc}") from None
    return parse_scenario(data, str(p))


def load_dir(path: str | Path) -> list[tuple[Path, Scenario]]:
    files = sorted(Path(path).glob("*.y*ml"))
    if not files:
        raise ScenarioError(f"{path}: no scenario files (*.yaml) found")
    return [(f, load_scenario(f)) for f in files]
