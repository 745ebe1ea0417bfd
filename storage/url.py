"""Turn `DATABASE_URL` into the SQLite file it names, refusing anything else in one sentence."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import unquote, urlsplit

from storage.errors import StorageError

MEMORY = Path(":memory:")
"""`sqlite:///:memory:`: a database that lives only as long as its store (for tests)."""

_PREFIX = "sqlite:///"


def parse_database_url(url: str) -> Path:
    """`sqlite:///relative.db` is relative to the working directory, `sqlite:////abs.db` is
    absolute; any other scheme is refused because only SQLite is implemented so far."""
    url = url.strip()
    scheme = urlsplit(url).scheme
    if scheme.lower() != "sqlite":
        shown = f"'{scheme}://'" if scheme else "no scheme"
        raise StorageError(
            f"DATABASE_URL has {shown}, but only sqlite:///path/to/file.db is supported."
        )
    if not url.lower().startswith(_PREFIX):
        raise StorageError(
            "DATABASE_URL must look like sqlite:///relative/path.db or "
            "sqlite:////absolute/path.db (three slashes before the path)."
        )
    rest = url[len(_PREFIX) :]
    if "?" in rest or "#" in rest:
        raise StorageError(
            "DATABASE_URL must name a file only, without ?options or #fragments: "
            f"sqlite:///{rest.split('?')[0].split('#')[0]}"
        )
    raw = unquote(rest)
    if not raw or raw.endswith("/"):
        raise StorageError(f"DATABASE_URL names no database file: {url}")
    if raw == ":memory:":
        return MEMORY
    return Path(raw)
