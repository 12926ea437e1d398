"""Stores: where runs and their ledgers live. ``open_store`` picks the backend from the URL."""

from __future__ import annotations

from spokehub.config import Settings
from spokehub.errors import ConfigurationError
from spokehub.store.base import Store


def open_store(settings: Settings) -> Store:
    """Open the store named by ``settings.database_url`` (schema is not migrated here)."""
    url = settings.database_url
    if url.startswith(("postgres://", "postgresql://")):
        from spokehub.store.postgres import PostgresStore

        return PostgresStore(settings)
    if "://" in url and not url.startswith("sqlite://"):
        scheme = url.split("://", 1)[0]
        raise ConfigurationError(
            f"unknown database URL scheme {scheme!r}; use sqlite:///path.db, a plain file path "
            "or postgresql://user@host/db"
        )
    from spokehub.store.sqlite import SqliteStore

    return SqliteStore(settings)


__all__ = ["Store", "open_store"]
