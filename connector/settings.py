"""One `Settings` object, read from `CONNECTOR_*` environment variables.

Everything the service needs to know is here and is passed down explicitly;
no module reads the environment on its own.
"""

from __future__ import annotations

import re
from functools import cached_property
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

from pydantic import Field, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict, SettingsError

from connector.outbound.addresses import parse_networks as parse_networks_list
from connector.realtime.bus import BUSES
from connector.web.proxies import Network, parse_networks


class ConfigError(Exception):
    """Bad configuration: the message is one line naming the setting."""


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="CONNECTOR_", extra="ignore")

    #: sqlite+aiosqlite:///PATH (one file, its directory created) or
    #: postgresql+asyncpg://USER:PASSWORD@HOST:PORT/DATABASE.
    database_url: str = "sqlite+aiosqlite:///./data/connector.db"
    #: The address `serve` listens on (0.0.0.0: every interface).
    host: str = "127.0.0.1"
    #: The TCP port `serve` listens on; checked before any migration runs.
    port: int = Field(8000, ge=1, le=65535)
    #: The URL people and bots reach the service at: webhook URLs, cookies (https: Secure).
    #: Empty: http://HOST:PORT of `host` and `port` (127.0.0.1 when listening on every
    #: interface), so a changed port changes the webhook URLs and the allowed origin too.
    public_url: str = ""
    #: Origins allowed to open the live stream; default: the public URL's origin.
    allowed_origins: list[str] = []
    #: Comma-separated IPs or CIDR networks of the reverse proxies whose
    #: X-Forwarded-For is believed (`connector.web.proxies`); none by default.
    trusted_proxies: str = ""
    #: Notifications between instances: memory:// (one instance) or redis://HOST:PORT/DB.
    bus_url: str = "memory://"
    #: Networks that outbound calls (channels, APIs, event webhooks) may reach although
    #: they are not public, as a JSON list of CIDRs, e.g. ["10.20.0.0/16"]; none by
    #: default: loopback, private, link-local... addresses are refused (`connector.outbound`).
    outbound_allow_networks: list[str] = []

    #: debug, info, warning, error or critical.
    log_level: str = "info"
    #: One JSON object per log line instead of text.
    log_json: bool = False

    #: The first admin, created at the first start when there is no admin.
    admin_username: str = "admin"
    #: Its password (8 to 1000 characters); unset: a one-time password is printed,
    #: to be replaced at the first sign-in.
    admin_password: str | None = None

    #: How long a rotated-out Smartly key keeps working.
    key_grace_seconds: float = Field(24 * 3600, ge=0)
    #: A resent identical webhook body within this window is a duplicate.
    dedupe_window_seconds: float = Field(600, ge=0)
    #: Largest webhook body accepted (413 beyond).
    max_body_bytes: int = Field(1024 * 1024, ge=1024)
    #: A request's line and headers must arrive within this time of its first byte (of the
    #: connection's opening for its first request), else 408 and the connection is closed.
    header_timeout_seconds: float = Field(10.0, gt=0)
    #: A request body must arrive within this time of the app starting to read it, else 408
    #: and the connection is closed (a 1 MiB body then needs 35 KB/s on average).
    body_timeout_seconds: float = Field(30.0, gt=0)
    #: Ingest group commit: most events per transaction.
    ingest_batch_max: int = Field(256, ge=1)
    #: PostgreSQL: ingest batches written at once, each in its own transaction on its own
    #: connection (SQLite has one writer: its batches go one after another).
    ingest_concurrency: int = Field(2, ge=1, le=16)

    #: One attempt to send a reply to the channel gives up after this long.
    delivery_timeout_seconds: float = Field(10.0, gt=0)
    #: A claimed delivery is someone else's to retry after this long.
    delivery_lease_seconds: float = Field(30.0, gt=0)
    #: How often the delivery worker looks for replies due (besides being woken).
    delivery_poll_seconds: float = Field(1.0, gt=0)
    #: Replies sent at once by one instance.
    delivery_concurrency: int = Field(32, ge=1)
    #: Backoff: base * 2**(attempt-1), capped, +-jitter; give up after `give_up`.
    retry_base_seconds: float = Field(1.0, gt=0)
    #: Longest wait between two attempts.
    retry_max_delay_seconds: float = Field(600.0, gt=0)
    #: Each wait is varied by up to this fraction, so retries spread out.
    retry_jitter: float = Field(0.2, ge=0, lt=1)
    #: A reply not delivered this long after it was written fails for good.
    retry_give_up_seconds: float = Field(24 * 3600, gt=0)

    #: A console session unused for this long ends.
    session_idle_seconds: float = Field(8 * 3600, gt=0)
    #: A console session ends this long after sign-in, used or not.
    session_max_seconds: float = Field(7 * 24 * 3600, gt=0)
    #: Failed sign-ins per username within the lockout time before it is locked
    #: (four times as many per client address).
    login_max_failures: int = Field(5, ge=1)
    #: How long a locked username or address waits (and the failures' window).
    login_lockout_seconds: float = Field(300, ge=0)

    #: Stream events older than this may be pruned; older cursors get `resync`.
    stream_retention_seconds: float = Field(7 * 24 * 3600, gt=0)
    #: Conversations that never had a ticket (bot-only, Chatlayer Offloading sessions
    #: never handed over) idle this many days are deleted (`domain.retention`); 0: kept.
    retention_bot_only_days: int = Field(30, ge=0, le=36500)
    #: Transcripts of conversations whose tickets were all closed this many days ago are
    #: deleted; the tickets' figures stay for the reports (`domain.retention`); 0: kept.
    retention_resolved_days: int = Field(0, ge=0, le=36500)
    #: Audit trail events older than this many days are deleted (`domain.audit_log`).
    audit_retention_days: int = Field(365, ge=1, le=36500)
    #: Live-stream frames waiting for one console beyond which it is sent `resync`.
    ws_queue_max: int = Field(1000, ge=10)
    #: A ping on every idle live stream this often.
    ws_heartbeat_seconds: float = Field(20.0, gt=0)
    #: A live-stream send not completed within this time (the console stopped reading)
    #: closes the socket with 4008.
    ws_send_timeout_seconds: float = Field(15.0, gt=0)
    #: permessage-deflate on the live stream. Off by default: compressing every message
    #: once per console costs about twice the CPU of sending it (docs/benchmarks.md §2);
    #: turn it on when consoles sit behind slow links and the server has CPU to spare.
    ws_compression: bool = False
    #: The console marks a ticket as waiting long after this.
    waiting_threshold_seconds: float = Field(120.0, gt=0)

    #: `auto`: queued tickets are assigned to available agents (`connector.routing`);
    #: `manual`: agents claim them from the queue.
    routing: Literal["auto", "manual"] = "auto"
    #: A ticket no agent with matching skills could take for this long may go to any.
    routing_fallback_seconds: float = Field(60.0, ge=0)
    #: An assigned ticket whose agent has not answered for this long goes back to
    #: routing (0: never).
    requeue_after_seconds: float = Field(180.0, ge=0)
    #: An assigned conversation nobody wrote in for this long is resolved (0: never).
    auto_resolve_after_seconds: float = Field(0.0, ge=0)
    #: A user whose last console closed this long ago is set `offline`.
    presence_grace_seconds: float = Field(60.0, ge=0)
    #: A satisfaction survey's rating, then its comment, are taken within this long of
    #: the survey being sent (`domain.csat`); at most 30 days.
    csat_window_seconds: float = Field(86400.0, gt=0, le=30 * 24 * 3600)
    #: Open conversations per agent, unless set per user.
    agent_capacity: int = Field(3, ge=1, le=1000)

    #: `/metrics` answers with `Authorization: Bearer <this>` (16 to 1000 characters);
    #: unset: `/metrics` is 404 (docs/operations.md, "Metrics").
    metrics_token: str | None = None
    #: Also serve `GET /metrics`, without a token, on 127.0.0.1 at this port; unset: no.
    metrics_port: int | None = Field(None, ge=1, le=65535)

    @field_validator("public_url")
    @classmethod
    def _check_public_url(cls, value: str) -> str:
        if not value:
            return value  # derived from host and port (`_default_public_url`)
        parts = urlsplit(value)
        if parts.scheme not in {"http", "https"} or not parts.netloc:
            raise ValueError("must be an absolute http(s) URL, e.g. https://connector.example.com")
        return value.rstrip("/")

    @field_validator("trusted_proxies")
    @classmethod
    def _check_trusted_proxies(cls, value: str) -> str:
        return ",".join(str(n) for n in parse_networks(value))

    @field_validator("outbound_allow_networks")
    @classmethod
    def _check_outbound_allow_networks(cls, value: list[str]) -> list[str]:
        return [str(n) for n in parse_networks_list(value)]

    @field_validator("database_url")
    @classmethod
    def _check_database_url(cls, value: str) -> str:
        scheme = value.split("://", 1)[0]
        if value.startswith("sqlite") and value.split(":///", 1)[-1] in ("", ":memory:"):
            raise ValueError("needs a file (the writer, the pool and migrations share it)")
        if scheme not in {"sqlite+aiosqlite", "postgresql+asyncpg"}:
            raise ValueError(
                "must start with sqlite+aiosqlite:// or postgresql+asyncpg:// (got "
                f"{scheme!r})"
            )
        return value

    @field_validator("admin_password")
    @classmethod
    def _check_admin_password(cls, value: str | None) -> str | None:
        if value is not None and not 8 <= len(value) <= 1000:
            raise ValueError("must be 8 to 1000 characters")
        return value

    @field_validator("bus_url")
    @classmethod
    def _check_bus_url(cls, value: str) -> str:
        scheme, sep, _ = value.partition("://")
        if not sep or scheme not in BUSES:
            raise ValueError(f"must start with one of {', '.join(s + '://' for s in BUSES)}")
        BUSES[scheme].check_url(value)
        return value

    @field_validator("metrics_token")
    @classmethod
    def _check_metrics_token(cls, value: str | None) -> str | None:
        if value is not None and not (16 <= len(value) <= 1000 and value.isprintable()
                                      and value.isascii() and " " not in value):
            raise ValueError("must be 16 to 1000 printable ASCII characters, no spaces "
                             "(e.g. the output of `openssl rand -hex 32`)")
        return value

    @field_validator("log_level")
    @classmethod
    def _check_log_level(cls, value: str) -> str:
        if value.lower() not in {"debug", "info", "warning", "error", "critical"}:
            raise ValueError("must be one of debug, info, warning, error, critical")
        return value.lower()

    @model_validator(mode="after")
    def _lease_outlives_a_request(self) -> Settings:
        if self.delivery_lease_seconds <= self.delivery_timeout_seconds:
            raise ValueError("CONNECTOR_DELIVERY_LEASE_SECONDS must exceed "
                             "CONNECTOR_DELIVERY_TIMEOUT_SECONDS, or a slow request could be "
                             "sent twice at once")
        return self

    @model_validator(mode="after")
    def _metrics_port_is_its_own(self) -> Settings:
        if self.metrics_port is not None and self.metrics_port == self.port:
            raise ValueError("CONNECTOR_METRICS_PORT must differ from CONNECTOR_PORT")
        return self

    @model_validator(mode="after")
    def _default_public_url(self) -> Settings:
        if not self.public_url:
            # Listening on every interface: the loopback address reaches it from here.
            host = "127.0.0.1" if self.host in ("0.0.0.0", "::", "") else self.host  # noqa: S104
            host = f"[{host}]" if ":" in host else host
            self.public_url = f"http://{host}:{self.port}"
        return self

    @model_validator(mode="after")
    def _default_origins(self) -> Settings:
        if not self.allowed_origins:
            parts = urlsplit(self.public_url)
            self.allowed_origins = [f"{parts.scheme}://{parts.netloc}"]
        return self

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")

    @property
    def sqlite_path(self) -> Path | None:
        if not self.is_sqlite:
            return None
        path = self.database_url.split(":///", 1)[1]
        return None if path in {"", ":memory:"} else Path(path)

    @cached_property
    def trusted_networks(self) -> tuple[Network, ...]:
        return parse_networks(self.trusted_proxies)

    @cached_property
    def outbound_networks(self) -> tuple[Network, ...]:
        """`outbound_allow_networks` as networks (`connector.outbound.addresses`)."""
        return parse_networks_list(self.outbound_allow_networks)

    @property
    def secure_cookies(self) -> bool:
        return self.public_url.startswith("https://")


def load_settings(**overrides: object) -> Settings:
    """Build settings, turning a validation error into one clear line."""
    try:
        return Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        err = exc.errors()[0]
        msg = err["msg"].removeprefix("Value error, ")
        if not err["loc"]:  # a rule across settings: its message names them
            raise ConfigError(msg) from None
        raise ConfigError(f"CONNECTOR_{str(err['loc'][0]).upper()}: {msg}") from None
    except SettingsError as exc:
        # The environment source could not even decode the value (a list that is not JSON).
        found = re.search(r'field "(\w+)"', str(exc))
        name = found.group(1) if found else "settings"
        example = LIST_EXAMPLES.get(name, '["https://console.example.com"]')
        raise ConfigError(f"CONNECTOR_{name.upper()}: cannot parse the value; write a list "
                          f"as JSON, e.g. {example}") from None


#: An example of each list setting, for the error when one is not JSON.
LIST_EXAMPLES = {"allowed_origins": '["https://console.example.com"]',
                 "outbound_allow_networks": '["10.20.0.0/16"]'}
