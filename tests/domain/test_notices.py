"""What the end user is told: placeholders, the wait in words, business hours (checks and
whether a moment falls within them). Pure functions; the end-to-end behaviour is in
tests/web/test_api_integration_notices.py."""

from __future__ import annotations

import datetime as dt
import zoneinfo

import pytest

from connector.domain import notices
from connector.domain.errors import FieldError

PARIS = zoneinfo.ZoneInfo("Europe/Paris")


def at(text: str, zone: zoneinfo.ZoneInfo = PARIS) -> dt.datetime:
    return dt.datetime.fromisoformat(text).replace(tzinfo=zone)


# --- render -----------------------------------------------------------------------------------

@pytest.mark.parametrize(("template", "expected"), [
    ("You are number {position}, wait {wait}.", "You are number 2, wait about 3 minutes."),
    ("{position}{position}", "22"),
    ("{unknown} stays", "{unknown} stays"),
    ("{0} {} {position!r} {position:>5} {wait.__class__}",
     "{0} {} {position!r} {position:>5} {wait.__class__}"),
    ("{{position}}", "{2}"),
    ("no placeholder {", "no placeholder {"),
    ("<b>{position}</b>", "<b>2</b>"),
])
def test_render_replaces_known_placeholders_only_and_never_raises(template, expected):
    assert notices.render(template, {"position": "2", "wait": "about 3 minutes"}) == expected


def test_a_value_is_inserted_as_is_and_not_substituted_again():
    assert notices.render("{agent}", {"agent": "{wait}", "wait": "x"}) == "{wait}"


def test_the_sent_text_is_cut_at_the_reply_limit():
    assert len(notices.render("{agent}" * 1000, {"agent": "A" * 100})) == notices.MAX_SENT


# --- the wait in words ------------------------------------------------------------------------

@pytest.mark.parametrize(("seconds", "words"), [
    (None, "a few minutes"), (0, "less than a minute"), (59.9, "less than a minute"),
    (60, "about a minute"), (89, "about a minute"), (90, "about 2 minutes"),
    (180, "about 3 minutes"), (59 * 60, "about 59 minutes"), (59.5 * 60, "about an hour"),
    (89 * 60, "about an hour"), (150 * 60, "about 2 hours"), (5 * 3600, "about 5 hours"),
])
def test_wait_words(seconds, words):
    assert notices.wait_words(seconds) == words


# --- business hours: checks -------------------------------------------------------------------

WEEKDAYS = {d: [["09:00", "18:00"]] for d in ("mon", "tue", "wed", "thu", "fri")}


def test_good_hours_are_kept_in_a_normal_form():
    hours = notices.check_business_hours({
        "weekly": {"sat": [["10:00", "12:00"]], "mon": [["09:00", "12:00"], ["14:00", "24:00"]]},
        "timezone": "America/New_York", "closed_dates": ["2026-12-25", "2026-01-01",
                                                         "2026-12-25"]})
    assert hours == {"timezone": "America/New_York",
                     "weekly": {"mon": [["09:00", "12:00"], ["14:00", "24:00"]],
                                "sat": [["10:00", "12:00"]]},
                     "closed_dates": ["2026-01-01", "2026-12-25"]}
    assert notices.check_business_hours(None) is None
    assert notices.check_business_hours({"timezone": "UTC", "weekly": {}})["closed_dates"] == []


@pytest.mark.parametrize(("hours", "field"), [
    ([], "business_hours"),
    ({"timezone": "Europe/Paris", "weekly": {}, "holidays": []}, "business_hours.holidays"),
    ({"weekly": WEEKDAYS}, "business_hours.timezone"),
    ({"timezone": "Europe/Nowhere", "weekly": WEEKDAYS}, "business_hours.timezone"),
    ({"timezone": "../../etc/passwd", "weekly": WEEKDAYS}, "business_hours.timezone"),
    ({"timezone": "", "weekly": WEEKDAYS}, "business_hours.timezone"),
    ({"timezone": 1, "weekly": WEEKDAYS}, "business_hours.timezone"),
    ({"timezone": "Europe/Paris"}, "business_hours.weekly"),
    ({"timezone": "Europe/Paris", "weekly": []}, "business_hours.weekly"),
    ({"timezone": "Europe/Paris", "weekly": {"monday": []}}, "business_hours.weekly.monday"),
    ({"timezone": "Europe/Paris", "weekly": {"mon": "09:00-18:00"}},
     "business_hours.weekly.mon"),
    ({"timezone": "Europe/Paris", "weekly": {"mon": [["09:00"]]}},
     "business_hours.weekly.mon.0"),
    ({"timezone": "Europe/Paris", "weekly": {"mon": [[9, 18]]}}, "business_hours.weekly.mon.0"),
    ({"timezone": "Europe/Paris", "weekly": {"mon": [["9:00", "18:00"]]}},
     "business_hours.weekly.mon.0.0"),
    ({"timezone": "Europe/Paris", "weekly": {"mon": [["24:00", "24:00"]]}},
     "business_hours.weekly.mon.0.0"),
    ({"timezone": "Europe/Paris", "weekly": {"tue": [["09:00", "25:00"]]}},
     "business_hours.weekly.tue.0.1"),
    ({"timezone": "Europe/Paris", "weekly": {"tue": [["09:00", "18:60"]]}},
     "business_hours.weekly.tue.0.1"),
    ({"timezone": "Europe/Paris", "weekly": {"wed": [["08:00", "12:00"], ["18:00", "18:00"]]}},
     "business_hours.weekly.wed.1.1"),
    ({"timezone": "Europe/Paris", "weekly": {"wed": [["18:00", "09:00"]]}},
     "business_hours.weekly.wed.0.1"),
    ({"timezone": "Europe/Paris", "weekly": {}, "closed_dates": "2026-12-25"},
     "business_hours.closed_dates"),
    ({"timezone": "Europe/Paris", "weekly": {}, "closed_dates": ["2026-02-30"]},
     "business_hours.closed_dates.0"),
    ({"timezone": "Europe/Paris", "weekly": {}, "closed_dates": ["2026-12-25", "25/12/2026"]},
     "business_hours.closed_dates.1"),
    ({"timezone": "Europe/Paris", "weekly": {}, "closed_dates": ["2026-12-25T00:00"]},
     "business_hours.closed_dates.0"),
])
def test_bad_hours_are_refused_naming_the_field(hours, field):
    with pytest.raises(FieldError) as caught:
        notices.check_business_hours(hours)
    assert caught.value.field == field


@pytest.mark.parametrize(("name", "value"), [
    ("queue_message", "x" * 1001), ("assigned_message", 3), ("offline_message", "a\x00b")])
def test_bad_messages_are_refused(name, value):
    with pytest.raises(FieldError) as caught:
        notices.check_message(name, value)
    assert caught.value.field == name


def test_an_empty_or_blank_message_is_none():
    assert [notices.check_message("queue_message", v) for v in (None, "", "  \n")] == [None] * 3
    assert notices.check_message("queue_message", " hi ") == " hi "


@pytest.mark.parametrize("value", [0, 86401, -1, 1.5, True, "120"])
def test_bad_targets_are_refused(value):
    with pytest.raises(FieldError):
        notices.check_target(value)


def test_a_null_target_is_the_default():
    assert notices.check_target(None) == 120
    assert notices.check_target(86400) == 86400


# --- business hours: open or not --------------------------------------------------------------

HOURS = notices.check_business_hours({
    "timezone": "Europe/Paris", "weekly": {**WEEKDAYS, "sat": [["10:00", "12:00"]],
                                           "sun": [["22:00", "24:00"]]},
    "closed_dates": ["2026-12-25"]})


@pytest.mark.parametrize(("moment", "open_"), [
    ("2026-12-21 09:00", True),    # a Monday, the first minute
    ("2026-12-21 08:59", False),
    ("2026-12-21 17:59", True),
    ("2026-12-21 18:00", False),   # the end is not included
    ("2026-12-25 10:00", False),   # a Friday, but a closed date
    ("2026-12-26 11:00", True),    # Saturday morning
    ("2026-12-26 12:30", False),
    ("2026-12-27 23:59", True),    # until midnight ("24:00")
    ("2026-12-27 12:00", False),
])
def test_open_in_the_zone_of_the_hours(moment, open_):
    assert notices.is_open(HOURS, at(moment)) is open_


def test_the_moment_is_read_in_the_zone_of_the_hours_whatever_its_own():
    # 08:30 UTC on a Monday in winter is 09:30 in Paris (open), 03:30 in New York.
    monday = dt.datetime(2026, 12, 21, 8, 30, tzinfo=dt.UTC)
    assert notices.is_open(HOURS, monday)
    assert notices.is_open(HOURS, monday.astimezone(zoneinfo.ZoneInfo("America/New_York")))
    assert not notices.is_open(HOURS, monday - dt.timedelta(hours=1))
    # Summer time: 07:30 UTC on Monday 2026-06-22 is 09:30 in Paris.
    assert notices.is_open(HOURS, dt.datetime(2026, 6, 22, 7, 30, tzinfo=dt.UTC))


def test_no_hours_is_always_open_and_broken_hours_do_not_raise():
    now = dt.datetime.now(dt.UTC)
    assert notices.is_open(None, now)
    assert notices.is_open({}, now)
    assert notices.is_open({"timezone": "Mars/Olympus", "weekly": {}}, now)
    assert notices.is_open({"timezone": "UTC", "weekly": {d: [[1, 2]] for d in notices.DAYS}},
                           now)
