"""Plain builder functions for webhook bodies."""

from __future__ import annotations

import itertools
from typing import Any

_turns = itertools.count(1)


def turn(user: str = "user-1", text: str = "hello", *, answer: str | None = "Hi!",
         need_help: bool = False, **extra: Any) -> dict[str, Any]:
    """A Smartly `message_received` body shaped like the documented example."""
    n = next(_turns)
    payload = {
        "input": text, "corrected_input": text, "intent": "HelpIntent" if need_help else "Chat",
        "intent_slug": "sysHelpIntentfrfr", "intent_id": "123abc", "confidence": 0.93,
        "confidence_threshold": 0.2, "custom_entities": {}, "system_entities": {},
        "alternatives": [], "understood": True, "state_id": "s1",
        "state_name": "un conseiller va vous contacter" if need_help else "chat",
        "answer": answer, "reprompt": None, "end_session": False, "user_id": user,
        "platform": "webchat", "muted": need_help, "need_help": need_help,
        "handover_category_name": "", "payload": {}, "rich_text": [], "lang": "fr-fr",
        "skill_id": "skill-1", "input_type": "text", "client_id": user,
        "client_session_id": "62bb0fd93d3bc322becc39e6", "nlu_model": {"name": "SNP 1.06"},
        "event_name": "NEW_INPUT", "total_processing_time": 0.269 + n / 1e6,
    }
    payload.update(extra)
    return {"event": "message_received", "payload": payload}


def escalation(client: str = "user-1", *, lang: str = "fr-fr", plateform: str = "webchat",
               **extra: Any) -> dict[str, Any]:
    return {"event": "escalation_requested",
            "payload": {"skill_id": "123", "lang": lang, "plateform": plateform,
                        "client_id": client, **extra}}


def chatlayer(user: str, token: str, message: dict[str, Any] | None = None,
              id_field: str = "recipient") -> dict[str, Any]:
    body: dict[str, Any] = {"verifyToken": token, "message": message or {"text": "bot says"}}
    if id_field == "recipient":
        body["recipient"] = {"id": user}
    elif id_field == "sender":
        body["sender"] = {"id": user}
    else:
        body["senderId"] = user
    return body
