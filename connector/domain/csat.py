"""Satisfaction surveys (CSAT): the question sent on resolve, and what its answer is.

On `POST /api/tickets/{id}/resolve {"survey": true}` (`tickets.resolve_sync`, a
ticket an agent took only) `send_sync` queues, after the closing message and in
the same transaction, a `bot` message with the integration's question as
Chatlayer quick replies: five labels whose payloads are `CSAT_1`..`CSAT_5`
(`PAYLOAD_PREFIX`). The ticket records `survey_sent_at`, and the conversation
row carries the marker the ingest writer already reads (`survey_ticket_id`,
`survey_until` = sent + `CONNECTOR_CSAT_WINDOW_SECONDS`), so turns of other
conversations cost nothing more (`ingest.survey` takes the answer).

Question and labels are per integration (`survey_question`, `survey_labels`);
unset, the defaults follow the ticket's language (`DEFAULT_QUESTIONS`, by its
first two letters, English otherwise) and the labels are "1 ★" .. "5 ★" in every
language. A rating (`rating`) is our payload, a figure "1".."5", or one of the
labels as written (case and surrounding spaces do not matter).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa

from connector.domain import notices
from connector.domain.errors import FieldError
from connector.storage.db import UTCDateTime, utcnow
from connector.storage.models import Conversation, Integration, Ticket
from connector.storage.store import SyncTx

_t = Ticket.__table__
_i = Integration.__table__
_conv = Conversation.__table__

SCORES = (1, 2, 3, 4, 5)
#: Our quick replies' payloads: `CSAT_1` .. `CSAT_5`.
PAYLOAD_PREFIX = "CSAT_"
MAX_QUESTION = 500
#: A quick reply's title (Messenger's limit, which Chatlayer passes on).
MAX_LABEL = 20
MAX_COMMENT = 1000
DEFAULT_LABELS = tuple(f"{n} ★" for n in SCORES)
DEFAULT_QUESTIONS = {
    "en": "How would you rate this conversation?",
    "fr": "Comment évaluez-vous cette conversation ?",
    "nl": "Hoe beoordeelt u dit gesprek?",
    "de": "Wie bewerten Sie dieses Gespräch?",
    "es": "¿Cómo valoraría esta conversación?",
}


# --- the integration's settings -------------------------------------------------------------

def check_question(value: Any) -> str | None:
    """`survey_question` as stored: None for null, empty or blank (the default)."""
    if value is None:
        return None
    if not isinstance(value, str) or len(value) > MAX_QUESTION or "\x00" in value:
        raise FieldError("survey_question",
                         f"must be a text of at most {MAX_QUESTION} characters, or null")
    return value.strip() or None


def check_labels(value: Any) -> list[str] | None:
    """`survey_labels` as stored: None for null (the defaults), else exactly five distinct
    non-blank titles of at most `MAX_LABEL` characters, for the ratings 1 to 5 in order."""
    if value is None:
        return None
    if not isinstance(value, list) or len(value) != len(SCORES):
        raise FieldError("survey_labels", "must be a list of 5 labels (ratings 1 to 5), "
                                          "or null")
    out: list[str] = []
    for n, label in enumerate(value):
        where = f"survey_labels.{n}"
        if not isinstance(label, str) or not label.strip() or "\x00" in label:
            raise FieldError(where, "must be a non-empty text")
        label = label.strip()
        if len(label) > MAX_LABEL:
            raise FieldError(where, f"must be at most {MAX_LABEL} characters")
        if label.casefold() in (o.casefold() for o in out):
            raise FieldError(where, "must differ from the other labels")
        out.append(label)
    return out


def question_for(lang: str | None, configured: str | None) -> str:
    """The integration's question, else the default in the ticket's language."""
    if configured:
        return configured
    return DEFAULT_QUESTIONS.get((lang or "")[:2].lower(), DEFAULT_QUESTIONS["en"])


def labels_for(configured: Sequence[str] | None) -> list[str]:
    """The integration's five labels, else `DEFAULT_LABELS`."""
    if configured and len(configured) == len(SCORES):
        return list(configured)
    return list(DEFAULT_LABELS)


def prompt(question: str, labels: Sequence[str]) -> dict[str, Any]:
    """The Chatlayer message: the question with a quick reply per rating."""
    return {"text": question, "quick_replies": [
        {"content_type": "text", "title": label, "payload": f"{PAYLOAD_PREFIX}{n}"}
        for n, label in zip(SCORES, labels, strict=True)]}


def rating(text: str | None, payload: str | None, labels: Sequence[str] | None) -> int | None:
    """The score 1..5 that an end user's turn gives, or None: our quick reply's payload,
    else the text as a figure "1".."5" or one of the labels (`labels_for(labels)`)."""
    if payload and payload.startswith(PAYLOAD_PREFIX):
        tail = payload[len(PAYLOAD_PREFIX):]
        if tail in ("1", "2", "3", "4", "5"):
            return int(tail)
    if not text:
        return None
    said = text.strip()
    if said in ("1", "2", "3", "4", "5"):
        return int(said)
    folded = said.casefold()
    for n, label in zip(SCORES, labels_for(labels), strict=True):
        if folded == label.casefold():
            return n
    return None


# --- sending --------------------------------------------------------------------------------

_INTEGRATION = sa.select(_i.c.channel_url, _i.c.verify_token, _i.c.survey_question,
                         _i.c.survey_labels).where(_i.c.id == sa.bindparam("iid"))
_AT = sa.bindparam("at", type_=UTCDateTime)
_SENT = sa.update(_t).where(_t.c.id == sa.bindparam("tid")).values(survey_sent_at=_AT)
_MARK = sa.update(_conv).where(_conv.c.id == sa.bindparam("cid")).values(
    survey_ticket_id=sa.bindparam("tid"),
    survey_until=sa.bindparam("until", type_=UTCDateTime))


def send_sync(tx: SyncTx, ticket: dict[str, Any], window: dt.timedelta) -> None:
    """Queue the survey of `ticket` (just resolved, in this transaction, its closing
    message already queued), record `survey_sent_at` and mark the conversation: a rating
    is taken until `window` from now."""
    integ = tx.conn.execute(_INTEGRATION, {"iid": ticket["integration_id"]}).one()
    message = prompt(question_for(ticket["lang"], integ.survey_question),
                     labels_for(integ.survey_labels))
    notices.bot_message(tx, ticket, integ, message["text"], message, {"event": "survey"})
    now = utcnow()
    tx.conn.execute(_SENT, {"tid": ticket["id"], "at": now})
    tx.conn.execute(_MARK, {"cid": ticket["conversation_id"], "tid": ticket["id"],
                            "until": now + window})


# --- showing --------------------------------------------------------------------------------

def of(ticket: dict[str, Any]) -> dict[str, Any] | None:
    """`csat` of a ticket's JSON: null when no survey was sent."""
    sent = ticket.get("survey_sent_at")
    if sent is None:
        return None
    at = ticket.get("csat_at")
    return {"score": ticket.get("csat_score"), "comment": ticket.get("csat_comment"),
            "at": at.isoformat() if at else None, "sent_at": sent.isoformat()}


@dataclass
class Tally:
    """Satisfaction figures of a group of tickets (`ticket_reports`)."""

    sent: int = 0
    scores: list[int] = field(default_factory=lambda: [0] * len(SCORES))

    def add(self, sent_at: dt.datetime | None, score: int | None) -> None:
        if sent_at is None:
            return
        self.sent += 1
        if score in SCORES:
            self.scores[score - 1] += 1

    def out(self) -> dict[str, Any]:
        """`surveys` sent, `answers`, `average` (2 decimals), `distribution` (count per
        score "1".."5") and `response_rate` (answers / surveys, 3 decimals); the two
        ratios null with no answer or no survey."""
        answers = sum(self.scores)
        total = sum(n * count for n, count in zip(SCORES, self.scores, strict=True))
        return {"surveys": self.sent, "answers": answers,
                "average": round(total / answers, 2) if answers else None,
                "distribution": {str(n): c for n, c in zip(SCORES, self.scores, strict=True)},
                "response_rate": round(answers / self.sent, 3) if self.sent else None}
