"""Turn `DATABASE_URL` into the engine it selects, refusing anything else in one sentence."""

from __future__ import annotations

from pathlib import Path
from typing import Literal
from urllib.parse import unquote, urlsplit, urlunsplit

from storage.errors import StorageError

MEMORY = Path(":memory:")
"""`sqlite:///:memory:`: a database that lives only as long as its store (for tests)."""

Engine = Literal["sqlite", "postgresql"]

_PREFIX = "sqlite:///"
_SCHEMES: dict[str, Engine] = {
    "sqlite": "sqlite",
    "postgresql": "postgresql",
    "postgres": "postgresql",
}
_SUPPORTED = "sqlite:///path/to/file.db and postgresql://user@host:port/database"


def database_engine(url: str) -> Engine:
    """Which engine the URL's scheme selects: `sqlite`, or `postgresql` (also `postgres://`).
    Any other scheme is refused without echoing the rest of the URL, which may hold a
    password."""
    scheme = urlsplit(url.strip()).scheme.lower()
    if scheme not in _SCHEMES:
        shown = f"'{scheme}://'" if scheme else "no scheme"
        raise StorageError(f"DATABASE_URL has {shown}, but only {_SUPPORTED} are supported.")
    return _SCHEMES[scheme]


def parse_database_url(url: str) -> Path:
    """The SQLite file a `sqlite:` URL names: `sqlite:///relative.db` is relative to the
    working directory, `sqlite:////abs.db` is absolute; other schemes are refused here (see
    `database_engine` for the URL forms of other engines)."""
    url = url.strip()
    if database_engine(url) != "sqlite":
        raise StorageError(
            f"DATABASE_URL names a PostgreSQL database ({redact(url)}), not a SQLite file "
            "(sqlite:///path/to/file.db)."
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


def redact(url: str) -> str:
    """The URL as it may be shown in messages and logs: no password, no ?options (which may
    carry one), e.g. `postgresql://bot@db.example:5432/phi4bot`; a SQLite URL as it is."""
    parts = urlsplit(url.strip())
    if parts.scheme.lower() == "sqlite":
        return url.strip()  # a path holds no password
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    try:
        port = parts.port
    except ValueError:
        port = None
    netloc = host if port is None else f"{host}:{port}"
    if parts.username:
        netloc = f"{parts.username}@{netloc}"
    return urlunsplit((parts.scheme, netloc, parts.path, "", ""))
