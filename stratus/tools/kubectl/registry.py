"""The verb registry: one same-shaped :class:`VerbSpec` per ``Action.verb``, in the manner of kubectl's
``pkg/cmd/<verb>/``. Each module under ``verbs/`` registers its entries; ``commands`` and ``guard`` drive them.

Also the small helpers most entries share: rendering an object reference, restoring a snapshot as the
inverse, the default answer to "which object does this action touch", and the two views of the change a
verb makes that the identity check reads (the paths it writes; the object after it).
"""

from __future__ import annotations

import shlex
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from stratus.cluster.actions import Action
from stratus.cluster.base import ClusterError, Ref
from stratus.cluster.mutate import clean_manifest, mutate

Parser = Callable[[str, list[str], "str | None"], Action]
"""(verb, arguments after the kubectl subcommand, inline manifest or None) -> the parsed Action."""
Renderer = Callable[[Action], str]
Inverter = Callable[[Action, "dict[str, Any] | None"], "list[Action] | None"]
"""(action, target manifest before it or None) -> the actions that undo it, or None when none is known."""
UndoNote = Callable[[Action], "tuple[bool, str]"]
Policy = Callable[[Action], "str | None"]
Touches = Callable[[Action, str], "Ref | None"]
FieldPath = tuple[str, ...]
"""A path into a manifest, one segment per map key or list index: ``("metadata", "labels", "app")``."""
Writes = Callable[[Action], "list[FieldPath]"]
"""action -> the manifest paths it writes (a path stands for everything under it)."""
After = Callable[[Action, "dict[str, Any]"], "dict[str, Any] | None"]
"""(action, the object before it) -> the object after it, or None when the verb cannot compute it."""


def restore_note(a: Action) -> tuple[bool, str]:
    """The inverse note for verbs undone by re-applying the snapshot."""
    return True, "undo: restore the snapshot"


def no_policy(a: Action) -> str | None:
    """Guard rules for verbs with none beyond the allow-list and the inverse."""
    return None


def mutated(a: Action, before: dict[str, Any]) -> dict[str, Any] | None:
    """The object after a verb that ``mutate`` applies client-side; None when it does not apply to it."""
    try:
        return mutate(before, a)
    except (ClusterError, KeyError, TypeError, ValueError):
        return None


def cannot_compute(a: Action, before: dict[str, Any]) -> None:
    """For verbs whose result the client cannot compute (the identity check reads their written paths)."""
    return None


def writes_nothing(a: Action) -> list[FieldPath]:
    """For verbs that write no field of an existing object's manifest (delete, exec, create)."""
    return []


def leaves(doc: Any, prefix: FieldPath = ()) -> list[FieldPath]:
    """The paths a merge patch (or an applied manifest) writes: its leaves; a list, a null or a ``$``
    directive (``$patch: replace``, ``$retainKeys``, ...) rewrites its whole parent."""
    if not isinstance(doc, dict) or not doc or any(str(k).startswith("$") for k in doc):
        return [prefix]
    return [p for k, v in doc.items() for p in leaves(v, (*prefix, str(k)))]


def object_ref(a: Action, namespace: str) -> Ref:
    """The object an action names (cluster-scoped Nodes have no namespace; others default to ``namespace``)."""
    return (a.kind, a.name, None if a.kind == "Node" else (a.namespace or namespace))


@dataclass(frozen=True)
class VerbSpec:
    """Everything STRATUS knows about one write verb.

    Attributes:
        verb: the ``Action.verb`` this entry handles.
        command: the kubectl words that select it (``("scale",)``, ``("set", "image")``).
        parse: reads the arguments into an Action, raising ``GuardError`` with a reason.
        render: the canonical kubectl command for an Action of this verb.
        inverse: the actions that undo it, given the target's manifest before it.
        writes: the manifest paths it writes, for the identity check when the object is not known.
        undo_note: whether an inverse is catalogued (the kinds are already on the allow-list), and what it needs.
        policy: the guard's semantic rules beyond the allow-list: a refusal reason or None.
        touches: the object whose manifest the transaction snapshots and the server dry run checks
            (None: the verb changes no manifest; its undo is the inverse command itself).
        after: the object after the action given the object before it, for the identity check.
        risky: whether the "risky" approval mode asks a human before running it.
        manifest_body: whether the command takes an inline manifest on the lines after it.
    """

    verb: str
    command: tuple[str, ...]
    parse: Parser
    render: Renderer
    inverse: Inverter
    writes: Writes
    undo_note: UndoNote = restore_note
    policy: Policy = no_policy
    touches: Touches = object_ref
    after: After = mutated
    risky: bool = False
    manifest_body: bool = False


VERBS: dict[str, VerbSpec] = {}
"""Action.verb -> its entry, in registration order."""


def register(*specs: VerbSpec) -> None:
    """Add entries to the registry (each verb exactly once)."""
    for spec in specs:
        if spec.verb in VERBS:
            raise ValueError(f"verb {spec.verb!r} registered twice")
        VERBS[spec.verb] = spec


def q(s: str) -> str:
    """Shell-quote one argument."""
    return shlex.quote(str(s))


def kubectl(*parts: str) -> str:
    """The kubectl command line from its already-quoted parts."""
    return " ".join(["kubectl", *parts])


def ref(a: Action) -> str:
    """``kind/name`` as kubectl prints it."""
    return f"{a.kind.lower()}/{a.name}"


def nsflag(a: Action) -> list[str]:
    """``-n <namespace>`` when the action has one."""
    return ["-n", a.namespace] if a.namespace else []


def restore(a: Action, before: dict[str, Any], why: str) -> Action:
    """Re-apply the target's snapshot: the inverse of most writes."""
    return Action(verb="apply", kind=a.kind, name=a.name, namespace=a.namespace,
                  params={"manifest": clean_manifest(before)},
                  reason=f"undo {why}: restore {a.kind}/{a.name} snapshot")


def restore_inverse(a: Action, before: dict[str, Any] | None) -> list[Action] | None:
    """Undo by restoring the snapshot; no inverse when the object's state before is unknown."""
    return None if before is None else [restore(a, before, a.verb)]


def previous(a: Action) -> Any:
    """The state before the action that the caller recorded in ``params.previous`` (exec: in db_command)."""
    if a.params.get("previous") is not None:
        return a.params["previous"]
    return a.params.get("db_command", {}).get("previous")
