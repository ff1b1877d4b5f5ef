"""The Smartly `message_received` turn: the one builder of it for tests and benchmarks.

The tests import it as `bench.lib.smartly` (through tests/builders.py), the
benchmarks as `lib.smartly`; it needs nothing but the standard library.
bench/ingest.lua builds the same body in Lua for wrk and cannot share this.
"""

from __future__ import annotations

import json
import secrets
from typing import Any


def turn(user: str = "user-1", text: str = "hello", *, answer: str | None = "Hi!",
         need_help: bool = False, muted: bool | None = None, ref: str = "",
         **extra: Any) -> dict[str, Any]:
    """A `message_received` body with every field of the documented example.

    `answer=None` is a turn of a conversation in handover: the bot is muted and
    says nothing, so the turn makes exactly one transcript message (the user's
    input). `muted` follows `need_help` unless given. `ref` (random unless
    given) makes `client_session_id` unique, so two turns are never one
    duplicate event. `extra` sets further payload fields, or replaces some.
    """
    ref = ref or secrets.token_hex(6)
    payload = {
        "input": text, "corrected_input": text,
        "intent": "HelpIntent" if need_help else "OrderStatusIntent",
        "intent_slug": "sysHelpIntentfrfr" if need_help else "orderStatusfrfr",
        "intent_id": "123abc", "confidence": 1 if need_help else 0.87,
        "confidence_threshold": 0.2, "custom_entities": {}, "system_entities": {},
        "alternatives": [], "understood": True, "understood_nlu": True,
        "never_trained": False, "state_id": "123abc",
        "state_name": "un conseiller va vous contacter" if need_help else "suivi de commande",
        "answer": answer, "reprompt": None, "end_session": False, "user_id": user,
        "platform": "webchat", "muted": need_help if muted is None else muted,
        "need_help": need_help, "handover_category_name": "", "payload": {},
        "no_reply_prompt": "", "probabilistic_nlu_processing_time": 0.093,
        "rule_based_nlu_processing_time": 0, "dialog_management_processing_time": 0.005,
        "rich_text": [], "show_answer_survey": False, "show_conversation_survey": False,
        "webchat_input_place_holder": "", "webchat_hidden_input": None,
        "has_webhook_integration": True, "lang": "fr-fr", "skill_id": "123abc",
        "input_type": "text", "client_id": user, "master_bot": False,
        "client_session_id": f"sess-{ref}", "first_client_session_id": None,
        "nlu_model": {"name": "SNP 1.06", "version": "1.06 RC3"},
        "number_of_nounderstood": 0, "is_smartly_integration": True, "is_simulator": False,
        "event_name": "NEW_INPUT", "total_processing_time": 0.269,
    }
    payload.update(extra)
    return {"event": "message_received", "payload": payload}


def encode(body: dict[str, Any]) -> bytes:
    """A body as a bot platform sends it: UTF-8 JSON, non-ASCII characters as they are."""
    return json.dumps(body, ensure_ascii=False).encode()
