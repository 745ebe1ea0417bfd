"""The `Store` on one SQLite file: its connection and migrations, for one bot process."""

from __future__ import annotations

from storage.sqlite.store import SQLiteStore

__all__ = ["SQLiteStore"]
