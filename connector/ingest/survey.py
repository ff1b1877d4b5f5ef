"""The end user's answer to a satisfaction survey, taken in the ingest batch.

`domain.csat` sends the survey and marks the conversation row (`survey_ticket_id`,
`survey_until`), which the writer reads and locks for every event anyway: a turn of
a conversation without the marker costs nothing here. With the marker, no open
ticket and a user message before `survey_until`:

* no score yet: a rating (`csat.rating`: our quick reply's payload, "1".."5" or a
  label) is recorded (`csat_score`, `csat_at`). The turn is kept in the transcript,
  on the surveyed ticket, and never opens a ticket: a handover the bot asks for on
  that turn (`need_help`, most often the bot not understanding "4") is ignored.
  Any other text is no rating: the turn goes on as usual and the survey still waits;
* a score, no comment: the message is the comment (`csat_comment`, once, cut at
  `csat.MAX_COMMENT`), on the surveyed ticket, and the marker is cleared. That turn
  is otherwise an ordinary one: its handover, if any, opens a ticket as usual.

A marker past its time is cleared when its conversation next writes. Each recording
is a `ticket.updated` event for the consoles, and a `ticket.rated` event webhook.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any, Literal

import sqlalchemy as sa

from connector.domain import csat, events, tickets, webhook_events, webhooks
from connector.ingest.inbound import Inbound
from connector.storage.db import UTCDateTime
from connector.storage.models import Conversation, Integration, Ticket
from connector.storage.store import SyncTx

_t = Ticket.__table__
_i = Integration.__table__
_conv = Conversation.__table__

_SURVEYED = (sa.select(_t.c.csat_score, _t.c.csat_comment, _i.c.survey_labels)
             .join(_i, _i.c.id == _t.c.integration_id).where(_t.c.id == sa.bindparam("tid")))
_AT = sa.bindparam("at", type_=UTCDateTime)
_SCORE = sa.update(_t).where(_t.c.id == sa.bindparam("tid"), _t.c.csat_score.is_(None)).values(
    csat_score=sa.bindparam("score"), csat_at=_AT)
_COMMENT = sa.update(_t).where(_t.c.id == sa.bindparam("tid"),
                               _t.c.csat_comment.is_(None)).values(
    csat_comment=sa.bindparam("comment"))
_UNMARK = sa.update(_conv).where(_conv.c.id == sa.bindparam("cid")).values(
    survey_ticket_id=None, survey_until=None)


@dataclass(slots=True)
class Answer:
    """What a turn was to the survey of ticket `ticket_id`."""

    kind: Literal["rating", "comment"]
    ticket_id: int


def pending(conv: Any, stamp: Any) -> bool:
    """Whether `conv` (the writer's row) has a survey waiting, not past its time;
    `stamp` is now as the driver gives times back (`Writer.stamp`)."""
    if conv.survey_ticket_id is None or conv.survey_until is None:
        return False
    # Both as the driver has them: ISO text on SQLite (text order is time order),
    # aware datetimes elsewhere.
    return bool(conv.survey_until > stamp)


def take(tx: SyncTx, conv: Any, inbound: Inbound, stamp: Any,
         now: dt.datetime) -> Answer | None:
    """Record the turn's answer to the conversation's survey, if it is one (see the
    module); `conv` is updated in place when the marker is cleared."""
    if conv.survey_ticket_id is None or conv.open_ticket_id is not None:
        return None
    text = next((t for kind, t, _ in inbound.messages or () if kind == "user"), None)
    if text is None and inbound.reply is None:
        return None
    ticket_id = conv.survey_ticket_id
    if not pending(conv, stamp):
        _unmark(tx, conv)
        return None
    row = tx.conn.execute(_SURVEYED, {"tid": ticket_id}).first()
    if row is None:
        _unmark(tx, conv)
        return None
    if row.csat_score is None:
        score = csat.rating(text, inbound.reply, row.survey_labels)
        if score is None:
            return None
        tx.conn.execute(_SCORE, {"tid": ticket_id, "score": score, "at": now})
        _updated(tx, ticket_id, "rating")
        return Answer("rating", ticket_id)
    if row.csat_comment is None and text and text.strip():
        tx.conn.execute(_COMMENT, {"tid": ticket_id,
                                   "comment": text.strip()[:csat.MAX_COMMENT]})
        _unmark(tx, conv)
        _updated(tx, ticket_id, "comment")
        return Answer("comment", ticket_id)
    _unmark(tx, conv)
    return None


def _unmark(tx: SyncTx, conv: Any) -> None:
    tx.conn.execute(_UNMARK, {"cid": conv.id})
    conv.survey_ticket_id = conv.survey_until = None


def _updated(tx: SyncTx, ticket_id: int, what: str) -> None:
    ticket = tickets.reload(tx, ticket_id)
    tx.emit(events.ticket_updated(tickets.summary(ticket)))
    if webhooks.wanted(tx, "ticket.rated"):
        webhook_events.ticket_rated(tx, tickets.summary(ticket), what)
