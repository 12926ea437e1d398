"""Encryption at rest: payloads sealed with AES-256-GCM, each tagged with its key id.

Opt in with ``SPOKEHUB_ENCRYPTION_KEYS=kid1:BASE64KEY,kid0:BASE64KEY`` (32-byte keys, standard
or URL-safe base64). The **first** key encrypts; every listed key decrypts, so a rotation
puts the new key first and keeps the old ones until ``spokehub db rotate-keys`` re-sealed
everything. A sealed payload is stored as text::

    enc:v1:{kid}:{base64(nonce[12] + ciphertext + tag[16])}

and the key id is also the associated data, so a payload cannot be passed off under another
key id. Plain JSON never starts with ``enc:``, so a database that had payloads before
encryption was turned on reads both. Blobs are addressed by an HMAC of their content with
the current key (not a plain hash, which would let anyone confirm a guessed payload).

``cryptography`` is imported only when keys are configured (extra ``spokehub[encryption]``).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
import re
from typing import Any

from spokehub.errors import ConfigurationError, EncryptionKeyError

__all__ = ["PREFIX", "PayloadCipher", "open_text", "parse_keys"]

PREFIX = "enc:v1:"
_KID = re.compile(r"^[A-Za-z0-9.-]{1,32}$")  # no LIKE wildcards: rotation matches by prefix
KEY_BYTES = 32


def _decode_key(kid: str, text: str) -> bytes:
    try:
        raw = base64.b64decode(text.replace("-", "+").replace("_", "/") + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError):
        raw = b""
    if len(raw) != KEY_BYTES:
        raise ConfigurationError(
            f"SPOKEHUB_ENCRYPTION_KEYS: key {kid!r} must be {KEY_BYTES} bytes in base64 (got "
            f'{len(raw)} bytes); make one with: python -c "import os, base64; '
            'print(base64.b64encode(os.urandom(32)).decode())"'
        )
    return raw


def parse_keys(text: str) -> list[tuple[str, bytes]]:
    """``kid:base64key,...`` to ``[(kid, key), ...]``, newest (the encrypting one) first."""
    keys: list[tuple[str, bytes]] = []
    for part in (p.strip() for p in text.split(",")):
        if not part:
            continue
        kid, sep, encoded = part.partition(":")
        kid = kid.strip()
        if not sep or not _KID.match(kid):
            raise ConfigurationError(
                "SPOKEHUB_ENCRYPTION_KEYS is a comma-separated list of KID:BASE64KEY, with key "
                "ids of letters, digits, '.' and '-' (e.g. 2026-11:q83v...); "
                f"got an entry starting {part[:12]!r}"
            )
        if any(k == kid for k, _ in keys):
            raise ConfigurationError(f"SPOKEHUB_ENCRYPTION_KEYS names key id {kid!r} twice")
        keys.append((kid, _decode_key(kid, encoded.strip())))
    if not keys:
        raise ConfigurationError("SPOKEHUB_ENCRYPTION_KEYS is set but lists no key")
    return keys


class PayloadCipher:
    """Seals and opens payload text with the configured keys."""

    def __init__(self, keys: list[tuple[str, bytes]]) -> None:
        try:
            from cryptography.hazmat.primitives.ciphers.aead import AESGCM
        except ImportError:  # pragma: no cover - the extra is part of dev
            raise ConfigurationError(
                "encryption at rest needs the cryptography package: pip install "
                "'spokehub[encryption]'"
            ) from None
        self.current = keys[0][0]
        self._mac_key = hashlib.sha256(b"spokehub blob address:" + keys[0][1]).digest()
        self._aead: dict[str, Any] = {kid: AESGCM(key) for kid, key in keys}
        self._seal_prefix = f"{PREFIX}{self.current}:"

    @classmethod
    def from_setting(cls, text: str | None) -> PayloadCipher | None:
        return cls(parse_keys(text)) if text else None

    @property
    def kids(self) -> list[str]:
        return list(self._aead)

    def current_prefix(self) -> str:
        """What every payload sealed with the current key starts with."""
        return self._seal_prefix

    def seal(self, text: str) -> str:
        nonce = os.urandom(12)
        kid = self.current
        body = self._aead[kid].encrypt(nonce, text.encode("utf-8"), kid.encode())
        return self._seal_prefix + base64.b64encode(nonce + body).decode("ascii")

    def open(self, text: str) -> str:
        if not text.startswith(PREFIX):
            return text
        kid, _, body = text[len(PREFIX) :].partition(":")
        aead = self._aead.get(kid)
        if aead is None:
            raise EncryptionKeyError(
                f"a payload is encrypted with key id {kid!r}, which SPOKEHUB_ENCRYPTION_KEYS "
                f"does not list (it has {', '.join(self._aead)}); add that key back"
            )
        from cryptography.exceptions import InvalidTag

        try:
            raw = base64.b64decode(body)
            return str(aead.decrypt(raw[:12], raw[12:], kid.encode()).decode("utf-8"))
        except (InvalidTag, binascii.Error, ValueError):
            raise EncryptionKeyError(
                f"a payload encrypted with key id {kid!r} does not decrypt with the key "
                f"configured as {kid!r}: that key is wrong (or the payload was altered)"
            ) from None

    def address(self, text: str) -> str:
        """A blob's id: keyed, so that it does not confirm guesses of the content."""
        return "hmac:" + hmac.new(self._mac_key, text.encode("utf-8"), hashlib.sha256).hexdigest()


def open_text(cipher: PayloadCipher | None, text: str) -> str:
    """Payload text as JSON, opening it when sealed; a sealed one needs the keys configured."""
    if cipher is not None:
        return cipher.open(text)
    if text.startswith(PREFIX):
        kid = text[len(PREFIX) :].partition(":")[0]
        raise EncryptionKeyError(
            f"a payload is encrypted with key id {kid!r} but SPOKEHUB_ENCRYPTION_KEYS is not "
            "set; set it to the keys this database was written with"
        )
    return text
