"""The guard: may STRATUS run this command or action? It parses (Actions are rendered and re-parsed),
checks the namespace scope, runs the verb's own policy rules, refuses changes to identity and reserved
fields (``identity``), and requires a known inverse.
"""

from __future__ import annotations

import copy
from typing import Any

from pydantic import BaseModel, ValidationError

from stratus.cluster.actions import Action
from stratus.cluster.kinds import KINDS
from stratus.tools.kubectl.claims import claim_problem
from stratus.tools.kubectl.commands import inverse_supported, parse, render
from stratus.tools.kubectl.identity import identity_problem
from stratus.tools.kubectl.lex import GuardError
from stratus.tools.kubectl.registry import VERBS, previous


class GuardVerdict(BaseModel):
    """The guard's answer: whether it is allowed, why, and the normalised action and kubectl to run."""

    allowed: bool
    reason: str
    action: dict[str, Any] | None = None
    kubectl: str | None = None
    inverse_known: bool = False


def guard(command_or_action: str | Action | dict[str, Any], *, allowed_namespaces: set[str] | None = None,
          allow_cluster_scoped: bool = True, current: dict[str, Any] | None = None) -> GuardVerdict:
    """Decide whether STRATUS may run a command or action. Use ``verdict.action`` (normalised) to execute.

    Checks: it parses (Actions are rendered and re-parsed), the verb/kind pair is on the allow-list, the
    namespace is in scope (when ``allowed_namespaces`` is given; cluster-scoped kinds such as Node need
    ``allow_cluster_scoped``), policy limits hold, a claim that may hold data is neither deleted nor
    replaced (``claims``), no identity or reserved field of the object changes, and the pair has a known
    inverse.

    ``current`` is the target object as it is now (a snapshot manifest), when the caller has it: the
    identity check then compares the object before and after the action; without it, it checks the
    paths the action writes, which refuses more (an applied Deployment always sets spec.selector).
    """
    try:
        if isinstance(command_or_action, str):
            action = parse(command_or_action)
        else:
            given = (command_or_action if isinstance(command_or_action, Action)
                     else Action.model_validate(command_or_action))
            action = parse(render(given))
            params = copy.deepcopy(action.params)
            prev = previous(given)
            if prev is not None:
                params["previous"] = prev
            action = action.model_copy(update={"reason": given.reason, "params": params})
        kubectl = render(action)
    except GuardError as exc:
        return GuardVerdict(allowed=False, reason=exc.reason)
    except ValidationError as exc:
        return GuardVerdict(allowed=False, reason=f"invalid action: {exc.errors()[0].get('msg', exc)}")
    dumped = action.model_dump()

    def refuse(reason: str, inverse_known: bool = False) -> GuardVerdict:
        return GuardVerdict(allowed=False, reason=reason, action=dumped, kubectl=kubectl,
                            inverse_known=inverse_known)

    inv_ok, inv_note = inverse_supported(action)
    if allowed_namespaces is not None:
        if KINDS[action.kind]["namespaced"]:
            if action.namespace is None:
                return refuse(f"namespace missing: add -n <namespace> (allowed: {', '.join(sorted(allowed_namespaces))})",
                              inv_ok)
            if action.namespace not in allowed_namespaces:
                return refuse(f"namespace {action.namespace!r} is out of scope (allowed: "
                              f"{', '.join(sorted(allowed_namespaces))})", inv_ok)
        elif not allow_cluster_scoped:
            return refuse(f"cluster-scoped {action.kind} changes are out of scope", inv_ok)
    problem = VERBS[action.verb].policy(action) or claim_problem(action, current) or identity_problem(action, current)
    if problem:
        return refuse(problem, inv_ok)
    if not inv_ok:
        return refuse(inv_note)
    where = f" in {action.namespace}" if action.namespace else ""
    return GuardVerdict(allowed=True, reason=f"allowed: {action.verb} {action.kind}/{action.name}{where}; {inv_note}",
                        action=dumped, kubectl=kubectl, inverse_known=True)
