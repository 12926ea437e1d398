"""A fresh PostgreSQL schema per test, on the local server (skipped, or failed, without one).

``SPOKEHUB_TEST_POSTGRES_URL`` names the server (default: the local one, database ``test``).
Without a server the tests that need it skip, unless ``SPOKEHUB_REQUIRE_POSTGRES=1`` (CI), which
turns the skip into a failure.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from urllib.parse import quote

import pytest

BASE_URL = os.environ.get("SPOKEHUB_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")


def require_postgres() -> None:
    """Skip (or fail, under SPOKEHUB_REQUIRE_POSTGRES=1) when no server answers."""
    reason = None
    try:
        import psycopg
    except ImportError:
        reason = "psycopg is not installed (pip install 'spokehub[postgres]')"
    else:
        try:
            psycopg.connect(BASE_URL, connect_timeout=3).close()
        except psycopg.Error as exc:
            reason = f"no PostgreSQL at {BASE_URL}: {str(exc).strip()}"
    if reason is None:
        return
    if os.environ.get("SPOKEHUB_REQUIRE_POSTGRES") == "1":
        pytest.fail(f"SPOKEHUB_REQUIRE_POSTGRES=1 but {reason}")
    pytest.skip(reason)


def schema_url(schema: str) -> str:
    sep = "&" if "?" in BASE_URL else "?"
    return f"{BASE_URL}{sep}options={quote(f'-csearch_path={schema}')}"


@contextmanager
def fresh_schema() -> Iterator[str]:
    """Yield the URL of a new, empty schema; drop it afterwards."""
    require_postgres()
    import psycopg

    schema = f"t_{secrets.token_hex(6)}"
    with psycopg.connect(BASE_URL, autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {schema}")
    try:
        yield schema_url(schema)
    finally:
        with psycopg.connect(BASE_URL, autocommit=True) as conn:
            conn.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
