"""The intake store of ``stratus serve`` (SQLite or PostgreSQL): see ``intake_store`` for the lifecycle,
``intake`` for how a payload is recorded, ``writer`` for the group commit and ``db`` for the schema."""

from stratus.serve.store.intake import Accepted
from stratus.serve.store.intake_store import Claim, IntakeStore

__all__ = ["Accepted", "Claim", "IntakeStore"]
