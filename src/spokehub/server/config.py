"""How the HTTP server is set up: where it listens, which Host names it answers, its secret.

The secret signs dashboard session cookies and CSRF tokens. It comes from
``SPOKEHUB_SERVER_SECRET``, else from a file next to the SQLite database
(``.spokehub/server-secret`` by default), created with mode 0600 on first start so sessions
survive a restart.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from spokehub.config import Settings
from spokehub.errors import ConfigurationError
from spokehub.governance.secrets import resolve_reference
from spokehub.store.sqlite import parse_sqlite_url

__all__ = ["DEFAULT_HOST", "DEFAULT_PORT", "ServerConfig", "load_secret", "secret_path"]

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8321
_LOCAL_NAMES = ("localhost", "127.0.0.1", "[::1]")
_WILDCARDS = ("0.0.0.0", "::", "")
_MIN_SECRET = 16
_REVEAL = ("read", "operate", "approve", "admin", "nobody")


@dataclass(frozen=True, kw_only=True)
class ServerConfig:
    """Everything ``create_app`` needs besides the client.

    Attributes:
        settings: the database and runtime settings.
        secret: signs session cookies and CSRF tokens (at least 16 bytes).
        host, port: where uvicorn listens (loopback by default).
        allowed_hosts: extra names accepted in the ``Host`` header, e.g. the public name of a
            reverse proxy; the local names and the bound host are always accepted.
        hooks_file: the TOML file declaring webhook triggers (none: no hooks).
        worker: also run a worker in the server's event loop.
        session_seconds: how long a dashboard login lasts.
        reveal: which permission sees payloads (inputs, results, errors, ledger data) in
            full through the API and dashboard: ``operate`` (default: the roles that may act
            on runs), ``approve``, ``admin``, ``read`` (everyone) or ``nobody``. Others see the
            values of secret-looking keys as ``[redacted]`` (``SPOKEHUB_SERVER_REVEAL``).
        login_attempts, login_window: failed dashboard logins one address may make within
            ``login_window`` seconds before it gets 429 until the window moves on.
    """

    settings: Settings = field(default_factory=Settings.from_env)
    secret: bytes
    host: str = DEFAULT_HOST
    port: int = DEFAULT_PORT
    allowed_hosts: tuple[str, ...] = ()
    hooks_file: Path | None = None
    worker: bool = False
    session_seconds: float = 12 * 3600.0
    reveal: str = "operate"
    login_attempts: int = 5
    login_window: float = 60.0

    def __post_init__(self) -> None:
        if self.reveal not in _REVEAL:
            raise ConfigurationError(
                f"reveal={self.reveal!r} is not one of {', '.join(_REVEAL)} "
                "(SPOKEHUB_SERVER_REVEAL: which permission sees payloads unredacted)"
            )
        if len(self.secret) < _MIN_SECRET:
            raise ConfigurationError(
                f"the server secret must be at least {_MIN_SECRET} bytes; set "
                "SPOKEHUB_SERVER_SECRET to a long random string (or unset it to generate one)"
            )
        if not 0 <= self.port <= 65535:
            raise ConfigurationError(f"port {self.port} is out of range; use 1-65535")

    def host_names(self) -> frozenset[str]:
        """Host header names (without port, lower case) this server answers."""
        names = {*_LOCAL_NAMES, *(h.lower() for h in self.allowed_hosts)}
        if self.host not in _WILDCARDS:
            bound = self.host.lower()
            names.add(f"[{bound}]" if ":" in bound and not bound.startswith("[") else bound)
        return frozenset(names)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> ServerConfig:
        """Read ``SPOKEHUB_SERVER_*`` (and the database settings) from the environment.

        This is how ``spokehub serve`` hands its options to the app factory, and how any ASGI
        server runs spokehub: ``uvicorn --factory spokehub.server.app:create_app_from_env``.
        """
        env = os.environ if env is None else env
        settings = Settings.from_env(env)
        url = resolve_reference(settings.database_url)  # secret://NAME
        if url != settings.database_url:
            settings = settings.with_(database_url=url)
        port = env.get("SPOKEHUB_SERVER_PORT", "") or str(DEFAULT_PORT)
        if not port.isdigit():
            raise ConfigurationError(f"SPOKEHUB_SERVER_PORT={port!r} is not a port number")
        hooks = env.get("SPOKEHUB_SERVER_HOOKS", "")
        return cls(
            settings=settings,
            secret=load_secret(settings, env),
            host=env.get("SPOKEHUB_SERVER_HOST", "") or DEFAULT_HOST,
            port=int(port),
            allowed_hosts=_names(env.get("SPOKEHUB_SERVER_ALLOWED_HOSTS", "")),
            hooks_file=Path(hooks) if hooks else None,
            worker=env.get("SPOKEHUB_SERVER_WORKER", "") in ("1", "true", "yes"),
            reveal=env.get("SPOKEHUB_SERVER_REVEAL", "") or "operate",
        )


def _names(text: str) -> tuple[str, ...]:
    return tuple(name.strip() for name in text.split(",") if name.strip())


def secret_path(settings: Settings) -> Path:
    """Where the generated secret is kept: beside the SQLite file, else ``.spokehub/``."""
    url = settings.database_url
    if "://" not in url or url.startswith("sqlite://"):
        path = parse_sqlite_url(url)
        if path != ":memory:":
            return Path(path).parent / "server-secret"
    return Path(".spokehub") / "server-secret"


def load_secret(settings: Settings, env: Mapping[str, str] | None = None) -> bytes:
    """``SPOKEHUB_SERVER_SECRET``, else the persisted secret, else a new one written to disk."""
    env = os.environ if env is None else env
    given = env.get("SPOKEHUB_SERVER_SECRET", "")
    if given:
        return given.encode("utf-8")
    path = secret_path(settings)
    try:
        return path.read_bytes().strip()
    except FileNotFoundError:
        pass
    path.parent.mkdir(parents=True, exist_ok=True)
    fresh = secrets.token_urlsafe(32).encode("ascii")
    try:
        # O_EXCL: when two servers start at once, one writes and the other reads its secret.
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return path.read_bytes().strip()
    with os.fdopen(fd, "wb") as out:
        out.write(fresh + b"\n")
    return fresh
