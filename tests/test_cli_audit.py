"""`connector integration disable|enable|delete` and the audit trail of CLI changes
(actor `cli`, address `local`, never a secret), through `connector.cli.main`."""

from __future__ import annotations

import json
from typing import Any

import sqlalchemy as sa

from connector.storage.audit_models import AuditEvent
from connector.storage.models import Conversation, Integration
from tests.test_cli import cli  # noqa: F401  (the fixture)


def audited(cli: Any) -> list[dict[str, Any]]:  # noqa: F811
    return cli.table(AuditEvent)


def test_user_commands_are_audited_as_cli_from_local(cli):  # noqa: F811
    assert cli("user", "add", "ann", "--role", "agent", stdin="first long pw\n")[0] == 0
    assert cli("user", "passwd", "ann", stdin="second long pw\n")[0] == 0
    assert cli("user", "disable", "ann")[0] == 0
    assert cli("user", "disable", "ann")[0] == 0  # no change: nothing recorded
    assert cli("user", "enable", "ann")[0] == 0
    found = audited(cli)
    assert [e["action"] for e in found] == ["user.created", "user.password_reset",
                                            "user.disabled", "user.enabled"]
    for e in found:
        assert (e["actor"], e["actor_id"], e["address"]) == ("cli", None, "local")
        text = json.dumps(e, default=str)
        assert "first long pw" not in text and "second long pw" not in text
    assert found[1]["changes"]["password"] == {"changed": True}


def test_integration_commands_are_audited_without_secrets(cli):  # noqa: F811
    _, out, _ = cli("integration", "add", "--name", "bot", "--channel-url",
                    "https://c.example/hook", "--verify-token", "vt-secret-1", "--json")
    created = json.loads(out)
    iid = created["id"]
    _, out, _ = cli("integration", "rotate-key", iid, "--json")
    key = json.loads(out)["key"]
    _, out, _ = cli("integration", "rotate-signing-secret", iid, "--json")
    secret = json.loads(out)["signing_secret"]
    found = audited(cli)
    assert [e["action"] for e in found] == ["integration.created", "integration.key_rotated",
                                            "integration.signing_secret_rotated"]
    assert all(e["target_id"] == iid and e["actor"] == "cli" for e in found)
    text = json.dumps(found, default=str)
    for value in (created["key"], created["signing_secret"], key, secret, "vt-secret-1"):
        assert value not in text


def _add(cli: Any) -> str:  # noqa: F811
    code, out, _ = cli("integration", "add", "--name", "Shop bot", "--channel-url",
                       "https://c.example/hook", "--json")
    assert code == 0
    return str(json.loads(out)["id"])


def test_disable_and_enable(cli):  # noqa: F811
    iid = _add(cli)
    code, out, _ = cli("integration", "disable", iid)
    assert code == 0 and out == f"integration {iid} (Shop bot) disabled\n"
    assert cli.table(Integration)[0]["disabled"] is True
    code, out, _ = cli("integration", "enable", iid)
    assert code == 0 and "enabled" in out
    assert cli.table(Integration)[0]["disabled"] is False
    code, _, err = cli("integration", "disable", "nope")
    assert code == 1 and err == "error: no integration 'nope'\n"
    assert [e["action"] for e in audited(cli)][1:] == ["integration.disabled",
                                                       "integration.enabled"]


async def _converse(store: Any, iid: str) -> None:
    async with store.transaction() as tx:
        await tx.conn.execute(sa.insert(Conversation.__table__).values(
            integration_id=iid, end_user_id="u1"))


def test_delete_asks_first_and_refuses_while_conversations_remain(cli):  # noqa: F811
    iid = _add(cli)
    cli.run(_converse, iid)
    code, out, err = cli("integration", "delete", iid, stdin="no\n")
    assert code == 1 and "Type its id to confirm" in out
    assert err == "error: not confirmed; nothing deleted\n"
    code, _, err = cli("integration", "delete", iid, "--yes")
    assert code == 1 and "1 conversation(s)" in err and "--with-conversations" in err
    assert len(cli.table(Integration)) == 1 and len(cli.table(Conversation)) == 1
    code, out, _ = cli("integration", "delete", iid, "--with-conversations", stdin=f"{iid}\n")
    assert code == 0 and out.endswith(f"integration {iid} (Shop bot) deleted, with 1 "
                                      "conversation(s)\n")
    assert cli.table(Integration) == [] and cli.table(Conversation) == []
    deleted = audited(cli)[-1]
    assert (deleted["action"], deleted["actor"], deleted["address"]) == (
        "integration.deleted", "cli", "local")
    code, _, err = cli("integration", "delete", iid, "--yes")
    assert code == 1 and err == f"error: no integration '{iid}'\n"
