"""What every request handler shares, kept on ``app.state.spokehub``."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Annotated, Protocol

from fastapi import Depends, Request

from spokehub.ops.hooks import Hook
from spokehub.ops.tokens import Permission, TokenRecord
from spokehub.runtime.client import Client
from spokehub.server.config import ServerConfig
from spokehub.server.ratelimit import LoginLimiter

__all__ = ["MetricsRenderer", "ServerState", "StateDep", "get_state"]


class MetricsRenderer(Protocol):
    """What ``/metrics`` serves (helper OBS provides it): the exposition and its media type."""

    async def render(self) -> tuple[bytes, str]: ...


@dataclass(slots=True)
class ServerState:
    """The client, the configuration, the webhook triggers and the metrics of one server."""

    client: Client
    config: ServerConfig
    hooks: dict[str, Hook] = field(default_factory=dict)
    metrics: MetricsRenderer | None = None
    login_limiter: LoginLimiter = field(default_factory=LoginLimiter)

    def reveals_to(self, token: TokenRecord | None) -> bool:
        """Whether ``token`` sees payloads in full (see ``ServerConfig.reveal``)."""
        level = self.config.reveal
        if token is None or level == "nobody":
            return False
        return token.allows(Permission(level))


def get_state(request: Request) -> ServerState:
    """FastAPI dependency: the server's state."""
    state: ServerState = request.app.state.spokehub
    return state


StateDep = Annotated[ServerState, Depends(get_state)]
"""A handler parameter annotated with this receives the server's state."""
