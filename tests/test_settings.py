"""Configuration from CONNECTOR_* variables; bad config is one clear line naming the setting."""

from __future__ import annotations

from pathlib import Path

import pytest

from connector.settings import ConfigError, load_settings


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    import os

    for name in list(os.environ):
        if name.startswith("CONNECTOR_"):
            monkeypatch.delenv(name)
    return monkeypatch


def test_defaults_are_the_embedded_sqlite_file_and_loopback():
    s = load_settings()
    assert s.database_url == "sqlite+aiosqlite:///./data/connector.db"
    assert s.is_sqlite and s.sqlite_path == Path("data/connector.db")
    assert (s.host, s.port) == ("127.0.0.1", 8000)
    assert s.public_url == "http://127.0.0.1:8000"
    assert s.allowed_origins == ["http://127.0.0.1:8000"]
    assert s.max_body_bytes == 1024 * 1024
    assert s.key_grace_seconds == 24 * 3600
    assert s.csat_window_seconds == 86400
    assert s.log_json is False and s.log_level == "info"


@pytest.mark.parametrize(("env", "public"), [
    ({"CONNECTOR_PORT": "8765"}, "http://127.0.0.1:8765"),
    ({"CONNECTOR_HOST": "0.0.0.0", "CONNECTOR_PORT": "9000"}, "http://127.0.0.1:9000"),
    ({"CONNECTOR_HOST": "::1"}, "http://[::1]:8000"),
    ({"CONNECTOR_PORT": "8765", "CONNECTOR_PUBLIC_URL": "https://c.example"},
     "https://c.example"),
])
def test_the_public_url_follows_the_port_unless_given(clean_env, env, public):
    for name, value in env.items():
        clean_env.setenv(name, value)
    s = load_settings()
    assert s.public_url == public
    assert s.allowed_origins == [public]  # the console served there may open its socket


def test_values_come_from_connector_prefixed_variables(clean_env):
    clean_env.setenv("CONNECTOR_DATABASE_URL", "postgresql+asyncpg://u:p@db/connector")
    clean_env.setenv("CONNECTOR_HOST", "0.0.0.0")
    clean_env.setenv("CONNECTOR_PORT", "9090")
    clean_env.setenv("CONNECTOR_PUBLIC_URL", "https://connector.example.com/")
    clean_env.setenv("CONNECTOR_LOG_JSON", "true")
    clean_env.setenv("CONNECTOR_LOG_LEVEL", "WARNING")
    clean_env.setenv("CONNECTOR_RETRY_BASE_SECONDS", "0.25")
    clean_env.setenv("PORT", "1")  # unprefixed: ignored
    s = load_settings()
    assert s.database_url == "postgresql+asyncpg://u:p@db/connector"
    assert not s.is_sqlite and s.sqlite_path is None
    assert (s.host, s.port) == ("0.0.0.0", 9090)
    assert s.public_url == "https://connector.example.com"  # trailing slash dropped
    assert s.allowed_origins == ["https://connector.example.com"]
    assert s.secure_cookies is True
    assert s.log_json is True and s.log_level == "warning"
    assert s.retry_base_seconds == 0.25


def test_allowed_origins_as_a_json_list(clean_env):
    clean_env.setenv("CONNECTOR_ALLOWED_ORIGINS", '["https://a.example", "https://b.example"]')
    assert load_settings().allowed_origins == ["https://a.example", "https://b.example"]


def test_trusted_proxies_are_none_by_default_and_a_comma_separated_list(clean_env):
    assert load_settings().trusted_networks == ()
    clean_env.setenv("CONNECTOR_TRUSTED_PROXIES", " 10.0.0.0/8, 192.168.1.5 ,fd00::/8")
    s = load_settings()
    assert s.trusted_proxies == "10.0.0.0/8,192.168.1.5/32,fd00::/8"
    assert [str(n) for n in s.trusted_networks] == ["10.0.0.0/8", "192.168.1.5/32", "fd00::/8"]
    with pytest.raises(ConfigError, match=r"^CONNECTOR_TRUSTED_PROXIES: '10.0.0.1/8' is not an "
                                          r"IP address or network; did you mean 10.0.0.0/8\?$"):
        load_settings(trusted_proxies="10.0.0.1/8")


def test_in_memory_sqlite_is_refused():
    # The writer thread, the pool and the migrations would each get their own database.
    with pytest.raises(ConfigError, match="CONNECTOR_DATABASE_URL: needs a file"):
        load_settings(database_url="sqlite+aiosqlite:///:memory:")


@pytest.mark.parametrize(("name", "value"), [
    ("PORT", "abc"),
    ("PORT", "0"),
    ("PORT", "70000"),
    ("DATABASE_URL", "mysql://x"),
    ("DATABASE_URL", "sqlite:///plain-driver.db"),
    ("PUBLIC_URL", "connector.example.com"),
    ("PUBLIC_URL", "ftp://connector.example.com"),
    ("LOG_LEVEL", "loud"),
    ("LOG_JSON", "maybe"),
    ("MAX_BODY_BYTES", "10"),
    ("RETRY_JITTER", "1.5"),
    ("DELIVERY_TIMEOUT_SECONDS", "0"),
    ("CSAT_WINDOW_SECONDS", "0"),
    ("CSAT_WINDOW_SECONDS", "2592001"),
    ("ALLOWED_ORIGINS", "https://not-a-json-list.example"),
    ("TRUSTED_PROXIES", "proxy.example.com"),
    ("TRUSTED_PROXIES", "10.0.0.1/8"),
    ("TRUSTED_PROXIES", "10.0.0.5; 10.0.0.6"),
])
def test_bad_value_is_one_line_naming_the_setting(clean_env, name, value):
    clean_env.setenv(f"CONNECTOR_{name}", value)
    with pytest.raises(ConfigError) as err:
        load_settings()
    message = str(err.value)
    assert message.startswith(f"CONNECTOR_{name}: ")
    assert "\n" not in message
    assert len(message) > len(f"CONNECTOR_{name}: ") + 5  # says what is wrong


def test_overrides_are_checked_too():
    with pytest.raises(ConfigError, match=r"^CONNECTOR_PORT: "):
        load_settings(port="nope")
    assert load_settings(port=8123).port == 8123
