"""Signed approval links: a URL that lets one person decide one approval, once, for a while.

A link is ``{payload}.{signature}``: the payload (base64url JSON) names the run, the approval
call, the person (and role) deciding, an expiry and a random id; the signature is an
HMAC-SHA256 of it with the server secret. Verifying needs no database; using a link records
its id in the store in the same transaction as the vote, so a link works once.

Example:
    >>> token = sign_link(secret, run_id="r1", seq=1, name="ship", by="alice", now=now)
    >>> link = verify_link(secret, token, now=now)  # ApprovalLinkInvalid / ApprovalLinkGone
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import secrets
from dataclasses import dataclass
from typing import Any

from spokehub.errors import ApprovalLinkGone, ApprovalLinkInvalid

__all__ = ["DEFAULT_TTL", "ApprovalLink", "sign_link", "verify_link"]

DEFAULT_TTL = 24 * 3600.0
_PURPOSE = b"spokehub-approval-link:v1:"


@dataclass(frozen=True, slots=True, kw_only=True)
class ApprovalLink:
    """What a verified link allows: ``by`` (with ``role``) decides approval ``seq`` of a run."""

    id: str
    run_id: str
    seq: int
    name: str
    by: str
    role: str | None
    expires_at: float


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _mac(secret: bytes, payload: str) -> str:
    return _b64(hmac.new(secret, _PURPOSE + payload.encode("ascii"), hashlib.sha256).digest())


def sign_link(
    secret: bytes,
    *,
    run_id: str,
    seq: int,
    name: str,
    by: str,
    now: float,
    role: str | None = None,
    ttl: float = DEFAULT_TTL,
) -> str:
    """A link token for ``by`` to decide approval ``name`` (call ``seq``) of ``run_id``."""
    if ttl <= 0:
        raise ValueError(f"a link's lifetime must be > 0 seconds, got {ttl}")
    if not by:
        raise ValueError("a link is for one person: give their user name")
    body = {
        "id": secrets.token_hex(12),
        "run": run_id,
        "seq": seq,
        "name": name,
        "by": by,
        "role": role,
        "exp": now + ttl,
    }
    payload = _b64(json.dumps(body, separators=(",", ":")).encode())
    return f"{payload}.{_mac(secret, payload)}"


def _decode(token: str) -> tuple[str, str, dict[str, Any]]:
    payload, _, mac = token.partition(".")
    try:
        body = json.loads(_unb64(payload))
    except (ValueError, binascii.Error, UnicodeDecodeError):
        body = None
    return payload, mac, body if isinstance(body, dict) else {}


def verify_link(secret: bytes, token: str, *, now: float) -> ApprovalLink:
    """Check a link's signature, then its expiry.

    Raises:
        ApprovalLinkInvalid: the signature does not match (tampered, or another server's).
        ApprovalLinkGone: the link expired.
    """
    payload, mac, body = _decode(token)
    if not mac or not hmac.compare_digest(mac, _mac(secret, payload)) or not body:
        raise ApprovalLinkInvalid(
            "this approval link is not valid (its signature does not match); nothing was "
            "changed. Use the link exactly as sent, or ask for a new one"
        )
    link = ApprovalLink(
        id=str(body["id"]),
        run_id=str(body["run"]),
        seq=int(body["seq"]),
        name=str(body["name"]),
        by=str(body["by"]),
        role=body.get("role"),
        expires_at=float(body["exp"]),
    )
    if link.expires_at < now:
        raise ApprovalLinkGone(
            f"this approval link for {link.name!r} of run {link.run_id!r} expired; ask for a "
            "new link, or decide in the approvals inbox"
        )
    return link
