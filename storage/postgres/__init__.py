"""The `Store` on PostgreSQL: a pool, migrations and leases, for one or several processes."""

from __future__ import annotations

from storage.postgres.store import PostgresStore

__all__ = ["PostgresStore"]
