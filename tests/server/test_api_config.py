"""Server configuration: the environment, the persisted secret, the Host names."""

from __future__ import annotations

from pathlib import Path

import pytest

from spokehub import Settings
from spokehub.errors import ConfigurationError
from spokehub.server.config import ServerConfig, load_secret, secret_path


def test_the_secret_is_generated_once_and_kept_beside_the_database(tmp_path: Path) -> None:
    settings = Settings(database_url=f"sqlite:///{tmp_path / 'db' / 'app.db'}")
    assert secret_path(settings) == tmp_path / "db" / "server-secret"
    first = load_secret(settings, env={})
    assert len(first) >= 32
    assert load_secret(settings, env={}) == first  # a restart keeps sessions valid
    assert (tmp_path / "db" / "server-secret").stat().st_mode & 0o777 == 0o600
    given = load_secret(settings, env={"SPOKEHUB_SERVER_SECRET": "from the environment!"})
    assert given == b"from the environment!"
    assert secret_path(Settings(database_url="sqlite:///:memory:")) == Path(
        ".spokehub/server-secret"
    )


def test_from_env(tmp_path: Path) -> None:
    hooks = tmp_path / "hooks.toml"
    env = {
        "SPOKEHUB_DATABASE_URL": f"sqlite:///{tmp_path / 'x.db'}",
        "SPOKEHUB_SERVER_SECRET": "s" * 32,
        "SPOKEHUB_SERVER_HOST": "0.0.0.0",
        "SPOKEHUB_SERVER_PORT": "9000",
        "SPOKEHUB_SERVER_HOOKS": str(hooks),
        "SPOKEHUB_SERVER_WORKER": "1",
        "SPOKEHUB_SERVER_ALLOWED_HOSTS": "api.example.com, ,Other.Example",
    }
    config = ServerConfig.from_env(env)
    assert (config.host, config.port, config.worker, config.hooks_file) == (
        "0.0.0.0",
        9000,
        True,
        hooks,
    )
    # a wildcard bind adds no name of its own; allowed names are compared in lower case
    assert config.host_names() == {
        "localhost",
        "127.0.0.1",
        "[::1]",
        "api.example.com",
        "other.example",
    }
    defaults = ServerConfig.from_env({"SPOKEHUB_SERVER_SECRET": "s" * 32})
    assert (defaults.host, defaults.port, defaults.worker) == ("127.0.0.1", 8321, False)
    with pytest.raises(ConfigurationError, match="not a port"):
        ServerConfig.from_env({"SPOKEHUB_SERVER_SECRET": "s" * 32, "SPOKEHUB_SERVER_PORT": "x"})


def test_bad_settings_say_what_to_do() -> None:
    with pytest.raises(ConfigurationError, match="SPOKEHUB_SERVER_SECRET"):
        ServerConfig(secret=b"short")
    with pytest.raises(ConfigurationError, match="out of range"):
        ServerConfig(secret=b"s" * 32, port=70000)
    ipv6 = ServerConfig(secret=b"s" * 32, host="::1")
    assert "[::1]" in ipv6.host_names()
    named = ServerConfig(secret=b"s" * 32, host="box.lan")
    assert "box.lan" in named.host_names()
