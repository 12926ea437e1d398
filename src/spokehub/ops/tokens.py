"""API tokens: create, list, revoke, and check the one a request carries.

A token is ``shk_`` + 43 random URL-safe characters, shown once at creation and stored only as
its SHA-256 hash. A slow password hash (bcrypt, argon2) exists to make guessing *low-entropy*
secrets expensive; a 256-bit random token cannot be guessed whatever the hash speed, so a fast
hash loses nothing and lets every request be checked by one indexed lookup.

Roles grant permissions (see ``ROLE_PERMISSIONS``); the HTTP server asks for a permission per
route, never for a role, so a role can change without touching routes.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from spokehub.engine.validation import check_text
from spokehub.errors import SpokehubError
from spokehub.ops import audit
from spokehub.runtime.client import Client
from spokehub.store.base import Tx

__all__ = [
    "ROLE_PERMISSIONS",
    "TOKEN_PREFIX",
    "CreatedToken",
    "Permission",
    "Role",
    "TokenNotFound",
    "TokenRecord",
    "authenticate",
    "create_token",
    "get_token",
    "hash_token",
    "list_tokens",
    "revoke_token",
]

TOKEN_PREFIX = "shk_"
# last_used_at is written at most this often per token, so reads stay reads.
_TOUCH_EVERY = 60.0


class Role(StrEnum):
    VIEWER = "viewer"
    OPERATOR = "operator"
    APPROVER = "approver"
    ADMIN = "admin"


class Permission(StrEnum):
    READ = "read"  # runs, ledgers, queues, workers, workflows, metrics
    OPERATE = "operate"  # start, signal, cancel, fork runs
    APPROVE = "approve"  # approve or reject pending approvals
    ADMIN = "admin"  # manage API tokens


ROLE_PERMISSIONS: dict[Role, frozenset[Permission]] = {
    Role.VIEWER: frozenset({Permission.READ}),
    Role.OPERATOR: frozenset({Permission.READ, Permission.OPERATE}),
    Role.APPROVER: frozenset({Permission.READ, Permission.APPROVE}),
    Role.ADMIN: frozenset(Permission),
}


class TokenNotFound(SpokehubError, LookupError):
    code = "token_not_found"

    def __init__(self, token_id: str) -> None:
        super().__init__(
            f"no API token with id {token_id!r}; list them with `spokehub tokens list`"
        )
        self.token_id = token_id


@dataclass(frozen=True, slots=True)
class TokenRecord:
    """A token as stored, without its secret."""

    id: str
    name: str
    role: Role
    created_at: float
    last_used_at: float | None
    revoked_at: float | None

    @property
    def active(self) -> bool:
        return self.revoked_at is None

    def allows(self, permission: Permission) -> bool:
        return self.active and permission in ROLE_PERMISSIONS[self.role]

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "role": self.role.value,
            "created_at": self.created_at,
            "last_used_at": self.last_used_at,
            "revoked_at": self.revoked_at,
        }


@dataclass(frozen=True, slots=True)
class CreatedToken:
    record: TokenRecord
    secret: str  # the token itself: shown once, never stored


def hash_token(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


_COLUMNS = "id, name, role, created_at, last_used_at, revoked_at"


def _record(row: Any) -> TokenRecord:
    return TokenRecord(
        id=row[0],
        name=row[1],
        role=Role(row[2]),
        created_at=row[3],
        last_used_at=row[4],
        revoked_at=row[5],
    )


def _role(role: Role | str) -> Role:
    try:
        return Role(role)
    except ValueError:
        names = ", ".join(r.value for r in Role)
        raise ValueError(f"unknown role {role!r}; choose one of {names}") from None


async def create_token(
    client: Client, *, name: str, role: Role | str, actor: str | None = None
) -> CreatedToken:
    """A new token; its secret is in the result and nowhere else."""
    checked = _role(role)
    name = check_text(name, "token name").strip()
    if not name:
        raise ValueError("a token needs a name that says who or what uses it, e.g. --name ci")
    secret = TOKEN_PREFIX + secrets.token_urlsafe(32)
    record = TokenRecord(
        id=secrets.token_hex(6),
        name=name,
        role=checked,
        created_at=client.clock.now(),
        last_used_at=None,
        revoked_at=None,
    )

    def insert(tx: Tx) -> None:
        tx.execute(
            "INSERT INTO api_tokens (id, name, role, token_hash, created_at) "
            "VALUES (?, ?, ?, ?, ?)",
            (record.id, record.name, record.role.value, hash_token(secret), record.created_at),
        )

    await client.ensure_schema()
    await client.store.transact(insert)
    details = {"token_id": record.id, "name": record.name, "role": record.role.value}
    await audit.record(client, "token.create", actor=actor, details=details)
    return CreatedToken(record, secret)


async def list_tokens(client: Client) -> list[TokenRecord]:
    """Every token, revoked ones too, oldest first."""

    def select(tx: Tx) -> list[TokenRecord]:
        rows = tx.execute(f"SELECT {_COLUMNS} FROM api_tokens ORDER BY created_at, id").fetchall()
        return [_record(row) for row in rows]

    await client.ensure_schema()
    return await client.store.transact(select, write=False)


async def get_token(client: Client, token_id: str) -> TokenRecord:
    def select(tx: Tx) -> TokenRecord | None:
        row = tx.execute(f"SELECT {_COLUMNS} FROM api_tokens WHERE id = ?", (token_id,)).fetchone()
        return None if row is None else _record(row)

    await client.ensure_schema()
    found = await client.store.transact(select, write=False)
    if found is None:
        raise TokenNotFound(token_id)
    return found


async def revoke_token(client: Client, token_id: str, *, actor: str | None = None) -> TokenRecord:
    """Revoke a token at once (sessions opened with it end too); revoking twice is harmless."""
    check_text(token_id, "token id")
    now = client.clock.now()

    def update(tx: Tx) -> TokenRecord | None:
        tx.execute(
            "UPDATE api_tokens SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL",
            (now, token_id),
        )
        row = tx.execute(f"SELECT {_COLUMNS} FROM api_tokens WHERE id = ?", (token_id,)).fetchone()
        return None if row is None else _record(row)

    await client.ensure_schema()
    found = await client.store.transact(update)
    if found is None:
        raise TokenNotFound(token_id)
    await audit.record(client, "token.revoke", actor=actor, details={"token_id": token_id})
    return found


async def authenticate(client: Client, secret: str) -> TokenRecord | None:
    """The active token whose secret this is, or None; notes when it was last used."""
    if not secret.startswith(TOKEN_PREFIX):
        return None
    digest = hash_token(secret)
    now = client.clock.now()

    def select(tx: Tx) -> TokenRecord | None:
        row = tx.execute(
            f"SELECT {_COLUMNS} FROM api_tokens WHERE token_hash = ? AND revoked_at IS NULL",
            (digest,),
        ).fetchone()
        return None if row is None else _record(row)

    await client.ensure_schema()
    found = await client.store.transact(select, write=False)
    if found is not None and (
        found.last_used_at is None or now - found.last_used_at > _TOUCH_EVERY
    ):
        await client.store.transact(lambda tx: _touch(tx, found.id, now))
    return found


def _touch(tx: Tx, token_id: str, now: float) -> None:
    tx.execute("UPDATE api_tokens SET last_used_at = ? WHERE id = ?", (now, token_id))
