"""The `Store` on PostgreSQL through an asyncpg pool, for one or several bot processes."""

from __future__ import annotations

from storage.postgres.store import PostgresStore

__all__ = ["PostgresStore"]
