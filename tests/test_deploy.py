"""The deployment material in deploy/ agrees with the code.

No container engine runs here, so the files are read, not run: the Compose file
(`deploy/compose.yaml`, with `${...}` interpolated the way Compose does, a
placeholder standing in for each required secret), the Caddyfile and the
Dockerfile. What is checked: every `CONNECTOR_*` variable is a setting, the
connector instances' environment builds `Settings`, the instances share one
PostgreSQL database and one Redis bus, the load balancer sends to exactly those
instances and checks `/readyz`, the instances trust exactly the load balancer's
address, the image installs the lock, and no secret is written in the files.
"""

from __future__ import annotations

import os
import re
import shlex
from ipaddress import ip_address, ip_network
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml

from connector.settings import Settings, load_settings

ROOT = Path(__file__).resolve().parent.parent
DEPLOY = ROOT / "deploy"
PREFIX = "CONNECTOR_"

# ${NAME}, ${NAME:-default}, ${NAME-default}, ${NAME:?message}, ${NAME?message}; $$ is a $.
_VARIABLE = re.compile(r"\$\$|\$\{(?P<name>\w+)(?:(?P<op>:?[-?])(?P<arg>[^}]*))?\}")


def interpolate(text: str, env: dict[str, str]) -> str:
    """Compose's interpolation of `text`; a variable that is required (`:?`, `?`) or has
    no default, and is not in `env`, gets the placeholder `placeholder-<name>`."""

    def one(match: re.Match[str]) -> str:
        if match.group(0) == "$$":
            return "$"
        name, op, arg = match.group("name", "op", "arg")
        if env.get(name):
            return env[name]
        if op in (":-", "-"):
            return arg
        return f"placeholder-{name.lower().replace('_', '-')}"

    return _VARIABLE.sub(one, text)


def _interpolated(node: Any, env: dict[str, str]) -> Any:
    if isinstance(node, str):
        return interpolate(node, env)
    if isinstance(node, list):
        return [_interpolated(item, env) for item in node]
    if isinstance(node, dict):
        return {key: _interpolated(value, env) for key, value in node.items()}
    return node


def _text(value: Any) -> str:
    """An environment value as the container gets it."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return "" if value is None else str(value)


def environment(service: dict[str, Any]) -> dict[str, str]:
    env = service.get("environment") or {}
    if isinstance(env, list):  # the `- NAME=value` form
        env = dict(item.split("=", 1) for item in env)
    return {name: _text(value) for name, value in env.items()}


@pytest.fixture(scope="module")
def raw() -> dict[str, Any]:
    return yaml.safe_load((DEPLOY / "compose.yaml").read_text())


@pytest.fixture(scope="module")
def compose(raw: dict[str, Any]) -> dict[str, Any]:
    return _interpolated(raw, {})


@pytest.fixture(scope="module")
def connectors(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The connector instances: the services built from deploy/Dockerfile."""
    found = {name: service for name, service in compose["services"].items()
             if (service.get("build") or {}).get("dockerfile") == "deploy/Dockerfile"}
    assert len(found) >= 2, f"at least two connector instances, found {sorted(found)}"
    return found


def _one(values: set[str], what: str) -> str:
    assert len(values) == 1, f"every instance must have the same {what}: {sorted(values)}"
    return values.pop()


def _caddyfile() -> list[list[str]]:
    """The Caddyfile as lines of tokens, comments and blank lines left out."""
    lines = []
    for line in (DEPLOY / "Caddyfile").read_text().splitlines():
        tokens = shlex.split(line, comments=True)
        if tokens:
            lines.append(tokens)
    return lines


def test_every_connector_variable_is_a_setting(compose: dict[str, Any]) -> None:
    fields = set(Settings.model_fields)
    names = {name for service in compose["services"].values()
             for name in environment(service) if name.upper().startswith(PREFIX)}
    example = (DEPLOY / ".env.example").read_text()
    names |= set(re.findall(r"^#?\s*(CONNECTOR_\w+)=", example, re.MULTILINE))
    assert names
    # pydantic-settings matches the prefix and the name case-insensitively.
    unknown = sorted(n for n in names if n[len(PREFIX):].lower() not in fields)
    assert not unknown, f"not settings of connector.settings.Settings: {unknown}"


def test_each_instance_environment_builds_settings(
        connectors: dict[str, dict[str, Any]], monkeypatch: pytest.MonkeyPatch) -> None:
    for name, service in connectors.items():
        with monkeypatch.context() as patch:
            for variable in [v for v in os.environ if v.upper().startswith(PREFIX)]:
                patch.delenv(variable)
            for variable, value in environment(service).items():
                patch.setenv(variable, value)
            settings = load_settings()  # ConfigError names the setting
        assert settings.host == "0.0.0.0", name
        assert not settings.is_sqlite, name


def test_instances_share_one_postgresql_database(
        compose: dict[str, Any], connectors: dict[str, dict[str, Any]]) -> None:
    url = _one({environment(s).get("CONNECTOR_DATABASE_URL", "") for s in connectors.values()},
               "CONNECTOR_DATABASE_URL")
    parts = urlsplit(url)
    assert parts.scheme == "postgresql+asyncpg", url
    postgres = compose["services"][parts.hostname]
    assert postgres["image"].startswith("postgres:")
    env = environment(postgres)
    assert (parts.username, parts.password, parts.path.lstrip("/")) == (
        env["POSTGRES_USER"], env["POSTGRES_PASSWORD"], env["POSTGRES_DB"])
    assert "pg_isready" in " ".join(postgres["healthcheck"]["test"])
    assert any(volume.split(":")[0] in (compose.get("volumes") or {})
               for volume in postgres.get("volumes", [])), "PostgreSQL's data in a named volume"


def test_instances_share_one_redis_bus(
        compose: dict[str, Any], connectors: dict[str, dict[str, Any]]) -> None:
    url = _one({environment(s).get("CONNECTOR_BUS_URL", "") for s in connectors.values()},
               "CONNECTOR_BUS_URL")
    parts = urlsplit(url)
    assert parts.scheme == "redis", url
    redis = compose["services"][parts.hostname]
    assert redis["image"].startswith("redis:")
    assert parts.port == 6379
    command = redis.get("command") or []
    if "--requirepass" in command:
        assert parts.password == command[command.index("--requirepass") + 1]
    assert redis["healthcheck"]["test"]


def test_load_balancer_sends_to_exactly_the_instances(
        compose: dict[str, Any], connectors: dict[str, dict[str, Any]]) -> None:
    lines = _caddyfile()
    proxies = [tokens for tokens in lines if tokens[0] == "reverse_proxy"]
    assert len(proxies) == 1, proxies
    upstreams = {token for token in proxies[0][1:] if token != "{"}
    port = _one({environment(s).get("CONNECTOR_PORT", "8000") for s in connectors.values()},
                "CONNECTOR_PORT")
    assert upstreams == {f"{name}:{port}" for name in connectors}
    assert ["health_uri", "/readyz"] in lines
    # Caddy serves the public URL the instances know.
    assert lines[0] == ["{$CONNECTOR_PUBLIC_URL}", "{"]
    public = _one({environment(s)["CONNECTOR_PUBLIC_URL"] for s in connectors.values()},
                  "CONNECTOR_PUBLIC_URL")
    assert environment(compose["services"]["caddy"])["CONNECTOR_PUBLIC_URL"] == public
    assert "./Caddyfile:/etc/caddy/Caddyfile:ro" in compose["services"]["caddy"]["volumes"]


def test_instances_trust_exactly_the_load_balancer(
        compose: dict[str, Any], connectors: dict[str, dict[str, Any]]) -> None:
    caddy_networks = compose["services"]["caddy"]["networks"]
    assert len(caddy_networks) == 1
    (network, config), = caddy_networks.items()
    caddy = ip_address(config["ipv4_address"])
    subnet = ip_network(compose["networks"][network]["ipam"]["config"][0]["subnet"])
    assert caddy in subnet
    for name, service in connectors.items():
        assert network in service["networks"], name
        trusted = environment(service)["CONNECTOR_TRUSTED_PROXIES"]
        assert [ip_network(n.strip()) for n in trusted.split(",")] == [ip_network(caddy)], name


def test_image_installs_the_lock_and_runs_serve(
        connectors: dict[str, dict[str, Any]]) -> None:
    for service in connectors.values():
        build = service["build"]
        assert (DEPLOY / build["context"]).resolve() == ROOT
        assert (ROOT / build["dockerfile"]).is_file()
    # Instructions with their continuation lines joined, comments left out.
    text = "\n".join(line for line in (DEPLOY / "Dockerfile").read_text().splitlines()
                     if not line.lstrip().startswith("#"))
    instructions = [" ".join(i.split()) for i in text.replace("\\\n", " ").splitlines()
                    if i.strip()]
    runs = [i for i in instructions if i.startswith("RUN ")]
    assert any("pip install --require-hashes -r requirements/run.lock" in r for r in runs)
    assert any(re.search(r"pip install --no-deps( --no-build-isolation)? \.( |$)", r)
               for r in runs)
    assert instructions[0] == "FROM python:3.11-slim"
    user = [i for i in instructions if i.startswith("USER ")]
    assert user and user[-1].split()[1].split(":")[0] not in ("root", "0")
    assert 'ENTRYPOINT ["connector"]' in instructions and 'CMD ["serve"]' in instructions


def test_no_secret_is_written_in_the_files(raw: dict[str, Any]) -> None:
    required = re.compile(r"\$\{\w+:\?[^}]*\}")
    for name, service in raw["services"].items():
        for variable, value in environment(service).items():
            if "PASSWORD" in variable:
                assert required.fullmatch(value), f"{name}: {variable} must be ${{VAR:?...}}"
            parts = urlsplit(value)
            if parts.scheme and "@" in parts.netloc:
                password = parts.netloc.rsplit("@", 1)[0].partition(":")[2]
                assert required.fullmatch(password), f"{name}: {variable}'s password"
        command = service.get("command") or []
        if "--requirepass" in command:
            assert required.fullmatch(command[command.index("--requirepass") + 1])
    assert (DEPLOY / ".gitignore").read_text().split().count(".env") == 1
