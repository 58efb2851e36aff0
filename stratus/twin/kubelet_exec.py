"""What ``kubectl exec`` runs in the twin's containers: the catalogued database commands, by their clients.

``db_exec_handler`` makes the kubelet port's exec handler (``kubelet_server.ExecHandler``) over a
``World``'s databases: in a database container (``App.container_name`` of a component the world keeps
accounts for) ``mongo``/``mongosh`` run the catalogued user and role commands through
``World.db_exec`` and ``getUser`` reads an account, printing what the mongo shell prints (its banner
unless ``--quiet``, ``null`` or the user document in the shell's notation, ``uncaught exception:`` and
exit code 1 on an error). Any other command fails as a container without that program would.

Which commands are catalogued is the kubectl guard's knowledge, not the twin's: the caller passes the
catalogue's parser (``parse``: argv -> ``db_command``, raising on anything uncatalogued). The handler
runs on the kubelet port's connection threads; a world that advances on another thread must be
serialised by the caller.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Callable
from typing import Any

from stratus.twin.kubelet_server import ExecHandler
from stratus.twin.world import World

DbParse = Callable[[list[str]], dict[str, Any]]
MONGO_CLIENTS = ("mongo", "mongosh")
_GET_USER = re.compile(r"""^\s*db\.getSiblingDB\('([A-Za-z0-9_-]+)'\)\.getUser\('([A-Za-z0-9_.@-]+)'\)\s*;?\s*$""")


def _not_found(program: str) -> tuple[int, str, str]:
    return 126, "", (f'OCI runtime exec failed: exec failed: unable to start container process: exec: '
                     f'"{program}": executable file not found in $PATH: unknown\n')


def _user_document(dbs: dict[str, dict[str, Any]], comp: str, db: str, name: str) -> str:
    """``getUser``'s answer as the mongo shell prints it (tab-indented, ``UUID(...)`` for the user id)."""
    user = dbs[comp]["users"].get(name)
    if user is None:
        return "null"
    user_id = uuid.uuid5(uuid.NAMESPACE_URL, f"twin://{comp}/{db}/{name}")
    doc = {"_id": f"{db}.{name}", "userId": "@UUID@", "user": name, "db": db,
           "roles": [{"role": r["role"], "db": r["db"]} for r in user["roles"]],
           "mechanisms": ["SCRAM-SHA-1", "SCRAM-SHA-256"]}
    return json.dumps(doc, indent="\t", separators=(",", " : ")).replace('"@UUID@"', f'UUID("{user_id}")')


def db_exec_handler(world: World, parse: DbParse) -> ExecHandler:
    """The exec handler for ``world``'s database containers (see the module docstring)."""
    binaries = [img for img, spec in world.app.images.items() if "mongod" in spec.get("binaries", [])]
    version = binaries[0].rpartition(":")[2] if binaries else "unknown"

    def banner(argv: list[str]) -> str:
        if "--quiet" in argv:
            return ""
        return (f"MongoDB shell version v{version}\nconnecting to: mongodb://127.0.0.1:27017/?compressors="
                f"disabled&gssapiServiceName=mongodb\nMongoDB server version: {version}\n")

    def handler(namespace: str, pod: str, container: str, argv: list[str]) -> tuple[int, str, str]:
        dbs = world.databases(namespace)
        comp = next((c for c in dbs if world.app.container_name(c) == container), None)
        if comp is None or not argv or argv[0] not in MONGO_CLIENTS:
            return _not_found(argv[0] if argv else "")
        js = argv[argv.index("--eval") + 1] if "--eval" in argv[:-1] else ""
        if m := _GET_USER.match(js):
            return 0, banner(argv) + _user_document(dbs, comp, m.group(1), m.group(2)) + "\n", ""
        try:
            cmd = parse(argv)
        except ValueError as exc:  # the guard's GuardError is a ValueError
            return 1, banner(argv), f"uncaught exception: SyntaxError: {exc}\n"
        try:
            out = world.db_exec(comp, cmd, namespace)
        except ValueError as exc:
            return 1, banner(argv), f"uncaught exception: Error: {exc}\n"
        return 0, banner(argv) + out + "\n", ""

    return handler
