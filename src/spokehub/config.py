"""Settings: one frozen object, read from the environment by default."""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace

from spokehub.errors import ConfigurationError

DEFAULT_DB_PATH = os.path.join(".spokehub", "spokehub.db")
_SYNC_LEVELS = ("OFF", "NORMAL", "FULL", "EXTRA")
_UNSAFE_SYNC_LEVELS = ("OFF", "NORMAL")


def _flag(raw: str) -> bool:
    value = raw.strip().lower()
    if value in ("1", "true", "yes", "on"):
        return True
    if value in ("0", "false", "no", "off"):
        return False
    raise ValueError(raw)


def default_database_url() -> str:
    return f"sqlite:///{DEFAULT_DB_PATH}"


@dataclass(frozen=True, kw_only=True)
class Settings:
    """Everything a store, client and worker need to know.

    Attributes:
        database_url: ``sqlite:///relative/path.db``, ``sqlite:////abs/path.db`` or a plain path.
        lease_seconds: how long a worker's claim on a run lasts without a heartbeat.
        poll_interval: how often an idle worker looks for due work (seconds).
        inline_wait: waits shorter than this stay in memory; longer ones unload the run.
        blob_threshold: payloads larger than this many bytes go to the content-addressed blob table.
        sqlite_synchronous: SQLite ``synchronous`` pragma; FULL (default) and EXTRA survive
            power loss; OFF and NORMAL need ``unsafe_durability``.
        busy_timeout_ms: how long SQLite waits for another process's write lock.
        max_recoveries: a run that took down the process executing it alone this many
            times (strikes; see docs/design.md, "Poison isolation") is dead-lettered
            instead of tried again. Deaths of workers it shared with other runs, and
            outside kills, are not counted.
        drain_timeout: on SIGTERM, how long a worker lets in-flight steps finish before it
            cancels them and gives their runs back.
        unsafe_durability: accept a PostgreSQL server with ``fsync`` or
            ``synchronous_commit`` off, or SQLite ``synchronous`` OFF or NORMAL (throwaway
            databases only).
        max_input_bytes: the largest run input or signal payload accepted (bytes of JSON),
            and the largest HTTP request body the server reads; default 1 MiB.
        policy_dir: a directory of policy files (CEL); when set, the CLI's workers and the
            server decide at the policy hook points with it (see docs/governance.md).
    """

    database_url: str = field(default_factory=default_database_url)
    lease_seconds: float = 30.0
    poll_interval: float = 0.5
    inline_wait: float = 1.0
    blob_threshold: int = 16 * 1024
    sqlite_synchronous: str = "FULL"
    busy_timeout_ms: int = 10_000
    max_recoveries: int = 5
    drain_timeout: float = 30.0
    unsafe_durability: bool = False
    max_input_bytes: int = 1024 * 1024
    policy_dir: str | None = None
    encryption_keys: str | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        if self.sqlite_synchronous.upper() not in _SYNC_LEVELS:
            raise ConfigurationError(
                f"sqlite_synchronous={self.sqlite_synchronous!r} is not one of {_SYNC_LEVELS}"
            )
        level = self.sqlite_synchronous.upper()
        if level in _UNSAFE_SYNC_LEVELS and not self.unsafe_durability:
            # Below FULL, a commit spokehub has acknowledged (a started run, a recorded step)
            # can be lost when the machine loses power: the same promise PostgreSQL's
            # fsync=off or synchronous_commit=off breaks, and refused the same way.
            raise ConfigurationError(
                f"sqlite_synchronous={level} can lose acknowledged commits on a power loss, "
                "which breaks spokehub's durability promise; use FULL (the default) or EXTRA, "
                "or, for a throwaway database only, set SPOKEHUB_UNSAFE_DURABILITY=1 "
                "(--unsafe-durability)"
            )
        for name in ("lease_seconds", "poll_interval"):
            if getattr(self, name) <= 0:
                raise ConfigurationError(f"{name} must be positive, got {getattr(self, name)!r}")
        if self.max_recoveries < 1:
            raise ConfigurationError("max_recoveries must be at least 1")
        if self.drain_timeout < 0:
            raise ConfigurationError("drain_timeout must be zero or positive")
        if self.max_input_bytes < 1:
            raise ConfigurationError("max_input_bytes must be at least 1")
        if self.inline_wait < 0:
            raise ConfigurationError("inline_wait must be zero or positive")

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, **overrides: object) -> Settings:
        """Read ``SPOKEHUB_*`` variables; keyword overrides win over the environment."""
        env = os.environ if env is None else env
        values: dict[str, object] = {}
        mapping: dict[str, tuple[str, Callable[[str], object]]] = {
            "SPOKEHUB_DATABASE_URL": ("database_url", str),
            "SPOKEHUB_LEASE_SECONDS": ("lease_seconds", float),
            "SPOKEHUB_POLL_INTERVAL": ("poll_interval", float),
            "SPOKEHUB_INLINE_WAIT": ("inline_wait", float),
            "SPOKEHUB_BLOB_THRESHOLD": ("blob_threshold", int),
            "SPOKEHUB_SQLITE_SYNCHRONOUS": ("sqlite_synchronous", str),
            "SPOKEHUB_BUSY_TIMEOUT_MS": ("busy_timeout_ms", int),
            "SPOKEHUB_MAX_RECOVERIES": ("max_recoveries", int),
            "SPOKEHUB_DRAIN_TIMEOUT": ("drain_timeout", float),
            "SPOKEHUB_UNSAFE_DURABILITY": ("unsafe_durability", _flag),
            "SPOKEHUB_MAX_INPUT_BYTES": ("max_input_bytes", int),
            "SPOKEHUB_POLICY_DIR": ("policy_dir", str),
            "SPOKEHUB_ENCRYPTION_KEYS": ("encryption_keys", str),
        }
        for var, (name, kind) in mapping.items():
            raw = env.get(var)
            if raw is None or raw == "":
                continue
            try:
                values[name] = kind(raw)
            except ValueError:
                what = "flag (1/0, true/false)" if kind is _flag else kind.__name__
                raise ConfigurationError(
                    f"{var}={raw!r} is not a valid {what}; fix or unset it"
                ) from None
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**values)  # type: ignore[arg-type]

    def with_(self, **changes: object) -> Settings:
        return replace(self, **changes)  # type: ignore[arg-type]
