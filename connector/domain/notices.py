"""What the end user is told while a human takes over, in the integration's words.

Per integration, each optional (None or empty: nothing is sent):

* `queue_message` when the handover starts. Placeholders: `{position}`, the
  ticket's place in the queue (1 = next: queued tickets are routed oldest
  handover first), and `{wait}`, the estimate `wait_words(estimate_wait_sync())`:
  the median wait (handover to first assignment) of the tickets first assigned
  in the last hour, among the latest `RECENT` handovers, in words ("about 3
  minutes"); "a few minutes" when no ticket was assigned in that hour.
* `offline_message` instead of the queue message when the handover starts
  outside the integration's `business_hours` (see `is_open`) or while no agent
  is online with a console (`agents.anyone_online_sync`; agents at capacity are
  present). With no offline message, the queue message is sent as usual.
* `assigned_message` when an agent takes the conversation (routing, a claim, a
  transfer). Placeholder `{agent}`: the agent's display name.

Placeholders are replaced by `render`, never by `str.format`: anything else in
braces stays as written. Each notice is a `bot` message in the transcript,
delivered through the outbox (`outbox.enqueue`) like an agent's reply: same
guarantees, same order within the conversation, and a `message.created` event.
"""

from __future__ import annotations

import datetime as dt
import re
import statistics
import zoneinfo
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa

from connector.domain import agents, events, outbox, transcript
from connector.domain.errors import FieldError
from connector.domain.transcript import NewMessage
from connector.storage.db import UTCDateTime, utcnow
from connector.storage.models import Integration, Ticket, User
from connector.storage.store import SyncTx

_i = Integration.__table__
_t = Ticket.__table__
_u = User.__table__

#: Longest message text an admin may set (the columns' size).
MAX_MESSAGE = 1000
#: Longest text sent once placeholders are replaced (an agent reply's limit).
MAX_SENT = 4000
DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
#: The wait estimate looks at this many of the latest handovers...
RECENT = 500
#: ... first assigned within this long.
RECENT_FOR = dt.timedelta(hours=1)
#: `{wait}` when no ticket was assigned within `RECENT_FOR`.
UNKNOWN_WAIT = "a few minutes"
DEFAULT_TARGET = 120
MAX_TARGET = 86400

_PLACEHOLDER = re.compile(r"\{([A-Za-z_]+)\}")
_TIME = re.compile(r"^([01][0-9]|2[0-3]):([0-5][0-9])$")
_DATE = re.compile(r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$")


# --- the integration's settings -------------------------------------------------------------

def check_message(name: str, value: Any) -> str | None:
    """A notice text as stored: None for null, empty or blank (nothing is sent)."""
    if value is None:
        return None
    if not isinstance(value, str) or len(value) > MAX_MESSAGE or "\x00" in value:
        raise FieldError(name, f"must be a text of at most {MAX_MESSAGE} characters, or null")
    return value if value.strip() else None


def check_target(value: Any) -> int:
    """`first_response_target_seconds`; null is the default (120)."""
    if value is None:
        return DEFAULT_TARGET
    if not isinstance(value, int) or isinstance(value, bool) or not 1 <= value <= MAX_TARGET:
        raise FieldError("first_response_target_seconds",
                         f"must be a whole number from 1 to {MAX_TARGET}")
    return value


def check_business_hours(value: Any) -> dict[str, Any] | None:
    """Business hours as stored, or None (always open). Shape:

        {"timezone": "Europe/Paris",
         "weekly": {"mon": [["09:00", "18:00"]], ...},
         "closed_dates": ["2026-12-25"]}

    `timezone` is an IANA zone (`zoneinfo`); `weekly` maps day keys `mon`..`sun` to
    lists of [start, end) intervals "HH:MM" in that zone, end after start ("24:00"
    is the end of the day); a day not listed is closed. `closed_dates` (optional)
    are closed all day. Anything else is refused, naming the field at fault.
    """
    if value is None:
        return None
    base = "business_hours"
    if not isinstance(value, dict):
        raise FieldError(base, "must be an object with timezone and weekly, or null")
    unknown = sorted(set(value) - {"timezone", "weekly", "closed_dates"})
    if unknown:
        raise FieldError(f"{base}.{unknown[0]}", "unknown field")
    zone = value.get("timezone")
    if not isinstance(zone, str) or not _zone_exists(zone):
        raise FieldError(f"{base}.timezone", _zone_problem(zone))
    weekly = value.get("weekly")
    if not isinstance(weekly, dict):
        raise FieldError(f"{base}.weekly", "must be an object of day keys (mon..sun)")
    out_weekly: dict[str, list[list[str]]] = {}
    for day, spans in weekly.items():
        where = f"{base}.weekly.{day}"
        if day not in DAYS:
            raise FieldError(where, f"unknown day: day keys are {', '.join(DAYS)}")
        if not isinstance(spans, list) or len(spans) > 24:
            raise FieldError(where, "must be a list of at most 24 [start, end] pairs")
        out_weekly[day] = [_check_span(f"{where}.{n}", span) for n, span in enumerate(spans)]
    dates = value.get("closed_dates", [])
    if not isinstance(dates, list) or len(dates) > 1000:
        raise FieldError(f"{base}.closed_dates", "must be a list of at most 1000 dates")
    for n, date in enumerate(dates):
        if not isinstance(date, str) or not _DATE.match(date) or not _is_date(date):
            raise FieldError(f"{base}.closed_dates.{n}", "must be a date YYYY-MM-DD")
    return {"timezone": zone, "weekly": {d: out_weekly[d] for d in DAYS if d in out_weekly},
            "closed_dates": sorted(set(dates))}


def _check_span(where: str, span: Any) -> list[str]:
    if not (isinstance(span, list) and len(span) == 2 and all(isinstance(s, str) for s in span)):
        raise FieldError(where, 'must be a pair of times ["HH:MM", "HH:MM"]')
    start, end = span
    if not _TIME.match(start):
        raise FieldError(f"{where}.0", "must be a time HH:MM from 00:00 to 23:59")
    if end != "24:00" and not _TIME.match(end):
        raise FieldError(f"{where}.1", "must be a time HH:MM from 00:01 to 24:00")
    if _minutes(end) <= _minutes(start):
        raise FieldError(f"{where}.1", "must be after the start")
    return [start, end]


def _minutes(hhmm: str) -> int:
    hours, minutes = hhmm.split(":")
    return int(hours) * 60 + int(minutes)


def _is_date(text: str) -> bool:
    try:
        dt.date.fromisoformat(text)
    except ValueError:
        return False
    return True


def _zone_exists(name: str) -> bool:
    if not name or len(name) > 100:
        return False
    try:
        zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError, OSError):
        return False
    return True


def _zone_problem(name: Any) -> str:
    if isinstance(name, str) and not zoneinfo.available_timezones():
        return ("unknown time zone: no time zone database on this machine (install the "
                "system's tzdata, or the tzdata Python package)")
    return "must be an IANA time zone name such as Europe/Paris"


def is_open(hours: dict[str, Any] | None, now: dt.datetime) -> bool:
    """Whether `now` (aware) falls within the business hours (None: always open)."""
    if not hours:
        return True
    try:
        local = now.astimezone(zoneinfo.ZoneInfo(hours["timezone"]))
        if local.date().isoformat() in hours.get("closed_dates", ()):
            return False
        minute = local.hour * 60 + local.minute
        spans = hours.get("weekly", {}).get(DAYS[local.weekday()], ())
        return any(_minutes(start) <= minute < _minutes(end) for start, end in spans)
    except (LookupError, TypeError, ValueError, AttributeError, OSError):
        # Hours stored by other means than the API (checked there), or a time zone
        # database gone since: open, so that the end user still hears the queue
        # message; a notice never stops a handover from being stored.
        return True


# --- the texts --------------------------------------------------------------------------------

def render(template: str, values: dict[str, str]) -> str:
    """`template` with each `{name}` of `values` replaced; any other braces left as they
    are (the text is the integration's: no format specs, no attribute access)."""
    def one(match: re.Match[str]) -> str:
        return values.get(match.group(1), match.group(0))

    return _PLACEHOLDER.sub(one, template)[:MAX_SENT]


def wait_words(seconds: float | None) -> str:
    """A wait in words: "less than a minute", "about 3 minutes", "about an hour"."""
    if seconds is None:
        return UNKNOWN_WAIT
    if seconds < 60:
        return "less than a minute"
    minutes = round(seconds / 60)
    if minutes < 60:
        return "about a minute" if minutes == 1 else f"about {minutes} minutes"
    hours = round(seconds / 3600)
    return "about an hour" if hours == 1 else f"about {hours} hours"


_RECENT = (sa.select(_t.c.opened_at, _t.c.claimed_at).order_by(_t.c.id.desc())
           .limit(RECENT).subquery())
_RECENT_WAITS = sa.select(_RECENT.c.opened_at, _RECENT.c.claimed_at).where(
    _RECENT.c.claimed_at >= sa.bindparam("since", type_=UTCDateTime))


def estimate_wait_sync(conn: sa.Connection, now: dt.datetime) -> float | None:
    """Seconds: the median wait from handover to first assignment of the tickets first
    assigned within `RECENT_FOR`, among the latest `RECENT` handovers (read by primary
    key: the cost does not grow with the table); None when there are none."""
    waits = [(r.claimed_at - r.opened_at).total_seconds()
             for r in conn.execute(_RECENT_WAITS, {"since": now - RECENT_FOR})]
    return statistics.median(waits) if waits else None


def position_sync(conn: sa.Connection, ticket: dict[str, Any]) -> int:
    """The ticket's place in the queue, 1 = next (routing takes the oldest handover
    first: `opened_at`, then id)."""
    opened = ticket["opened_at"]
    return conn.execute(sa.select(sa.func.count()).select_from(_t).where(
        _t.c.state == "queued",
        sa.or_(_t.c.opened_at < opened, sa.and_(_t.c.opened_at == opened,
                                                _t.c.id <= ticket["id"])))).scalar_one()


# --- sending ----------------------------------------------------------------------------------

_SETTINGS = sa.select(_i.c.id, _i.c.channel_url, _i.c.verify_token, _i.c.queue_message,
                      _i.c.assigned_message, _i.c.offline_message, _i.c.business_hours)


@dataclass(slots=True)
class Cache:
    """What a batch of handovers (the ingest writer's transaction) reads once: each
    integration's settings, and the wait estimate and whether anyone is online,
    when a notice needs them."""

    integrations: dict[str, Any] = field(default_factory=dict)
    now: dt.datetime = field(default_factory=utcnow)
    wait: str | None = None
    online: bool | None = None


def _settings(tx: SyncTx, integration_id: str, cache: Cache | None) -> Any:
    if cache is not None and integration_id in cache.integrations:
        return cache.integrations[integration_id]
    row = tx.conn.execute(_SETTINGS.where(_i.c.id == integration_id)).first()
    if cache is not None:
        cache.integrations[integration_id] = row
    return row


def queued_sync(tx: SyncTx, ticket: dict[str, Any], cache: Cache | None = None) -> None:
    """The handover of `ticket` (just opened, in the ingest transaction) started: send
    the offline or the queue message, if the integration has one (see the module).

    `cache` (one per transaction) keeps the reads to one per integration per batch;
    an integration with no queue or offline message costs that read alone.
    """
    cache = cache or Cache()
    integ = _settings(tx, ticket["integration_id"], cache)
    if integ is None or not (integ.queue_message or integ.offline_message):
        return
    if integ.offline_message:
        if cache.online is None:
            cache.online = agents.anyone_online_sync(tx.conn, cache.now)
        if not cache.online or not is_open(integ.business_hours, cache.now):
            _send(tx, ticket, integ, integ.offline_message, {}, "offline")
            return
    if not integ.queue_message:
        return
    if cache.wait is None:
        cache.wait = wait_words(estimate_wait_sync(tx.conn, cache.now))
    values = {"position": str(position_sync(tx.conn, ticket)), "wait": cache.wait}
    _send(tx, ticket, integ, integ.queue_message, values, "queue")


def assigned_sync(tx: SyncTx, ticket: dict[str, Any], agent_id: int,
                  cache: Cache | None = None) -> None:
    """`ticket` was just assigned to `agent_id` (routing, a claim, a transfer): send the
    assigned message, if the integration has one. `cache`: as for `queued_sync` (a
    routing pass assigns many)."""
    integ = _settings(tx, ticket["integration_id"], cache)
    if integ is None or not integ.assigned_message:
        return
    agent = tx.conn.execute(sa.select(_u.c.username, _u.c.display_name)
                            .where(_u.c.id == agent_id)).first()
    name = agents.display_name(agent) if agent is not None else ""
    _send(tx, ticket, integ, integ.assigned_message, {"agent": name}, "assigned")


def _send(tx: SyncTx, ticket: dict[str, Any], integ: Any, template: str,
          values: dict[str, str], notice: str) -> None:
    """A bot message in the transcript, queued for delivery to the end user like an
    agent's reply, and shown live on the consoles."""
    text = render(template, values)
    bot_message(tx, ticket, integ, text, {"text": text}, {"event": "notice", "notice": notice})


def bot_message(tx: SyncTx, ticket: dict[str, Any], integ: Any, text: str,
                body: dict[str, Any], context: dict[str, Any]) -> None:
    """Append a `bot` message (`body`: the Chatlayer message object) to the ticket's
    transcript and queue it for the end user through the outbox, in the conversation's
    order; `integ` has the integration's `channel_url` and `verify_token`. Also used for
    the satisfaction survey (`csat`)."""
    (row,) = transcript.append(tx, ticket["conversation_id"], ticket["id"], [NewMessage(
        "bot", text, body=body, context=context)])
    message = transcript.message_dict(row)
    message["delivery"] = outbox.enqueue(
        tx, message, ticket_id=ticket["id"], integration_id=ticket["integration_id"],
        recipient_id=ticket["end_user_id"], channel_url=integ.channel_url,
        verify_token=integ.verify_token)
    tx.emit(events.message_created(ticket, message))
