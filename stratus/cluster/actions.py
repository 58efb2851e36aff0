"""The protocol's words for changes: ``Action`` (one change) and ``ActionResult`` (what the world said).

They sit at the ground floor so that every world (the twin, a real cluster) and every layer above can
use them without importing the graph. The kubectl notation for an ``Action`` lives in
``stratus.tools.kubectl`` (``render`` / ``parse``).
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field

Verb = Literal[
    "scale", "patch", "set_image", "set_env", "set_resources", "rollout_undo", "rollout_restart",
    "delete", "label", "annotate", "cordon", "uncordon", "taint", "apply", "exec", "create",
]


class Action(BaseModel):
    """One change to the cluster. ``stratus.tools.kubectl.render`` prints it as kubectl, ``parse`` reads it back."""

    verb: Verb
    kind: str
    name: str
    namespace: str | None = None
    params: dict[str, Any] = Field(default_factory=dict)
    reason: str = ""

    def ref(self) -> tuple[str, str, str | None]:
        return (self.kind, self.name, self.namespace)



class ActionResult(BaseModel):
    ok: bool
    action: dict[str, Any]
    message: str = ""
    dry_run: bool = False
    changed: bool = False
