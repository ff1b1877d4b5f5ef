"""`connector.domain.ticket_reports`: ranges, percentiles, CSV cells (the figures and the
CSV through the real app: tests/web/test_api_reports.py)."""

from __future__ import annotations

import csv
import datetime as dt
import io
import statistics

import pytest

from connector.domain import ticket_reports as tr
from connector.domain.errors import FieldError


def test_a_range_is_utc_dates_both_included():
    rng = tr.parse_range("2024-02-28", "2024-03-01")
    assert rng.since == dt.datetime(2024, 2, 28, tzinfo=dt.UTC)
    assert rng.until == dt.datetime(2024, 3, 2, tzinfo=dt.UTC)
    assert [d.isoformat() for d in rng.days()] == ["2024-02-28", "2024-02-29", "2024-03-01"]
    assert rng.filename == "tickets-2024-02-28-to-2024-03-01.csv"
    assert len(tr.parse_range("2024-01-01", "2024-12-31").days()) == tr.MAX_DAYS == 366


@pytest.mark.parametrize(("start", "end", "field"), [
    (None, "2024-01-01", "from"), ("2024-01-01", None, "to"), ("2024-1-1", "2024-01-02", "from"),
    ("2024-01-01", "2024-13-01", "to"), ("2024-01-02", "2024-01-01", "to"),
    ("2023-12-31", "2024-12-31", "to"), ("1969-12-31", "1970-01-01", "from"),
    ("2024-01-01 ", "2024-01-02", "from"), ("\uff12\uff10\uff12\uff14-01-01", "2024-01-02", "from"),
])
def test_a_bad_range_names_its_parameter(start, end, field):
    with pytest.raises(FieldError) as caught:
        tr.parse_range(start, end)
    assert caught.value.field == field


def test_grouping():
    assert tr.parse_by(None) == "day"
    assert [tr.parse_by(b) for b in tr.GROUPINGS] == list(tr.GROUPINGS)
    with pytest.raises(FieldError) as caught:
        tr.parse_by("Day")
    assert caught.value.field == "by"


def test_percentiles_interpolate_between_ranks():
    assert tr.percentile([], 0.5) is None
    assert tr.percentile([7.0], 0.9) == 7.0
    values = [10.0, 1.0, 4.0, 2.0, 3.0]
    assert tr.percentile(values, 0.5) == statistics.median(values) == 3.0
    assert tr.percentile(values, 0.9) == pytest.approx(4.0 + 0.6 * 6.0)
    assert tr.percentile([1.0, 2.0], 0.5) == 1.5
    many = [float(n) for n in range(101)]
    assert tr.percentile(many, 0.9) == 90.0
    assert statistics.quantiles(many, n=10, method="inclusive")[-1] == 90.0


@pytest.mark.parametrize("text", ["=1+1", "+1", "-1", "@SUM(A1)", "\tx", "\rx"])
def test_a_formula_is_defused(text):
    assert tr.defuse(text) == "'" + text


@pytest.mark.parametrize("text", ["", "u-1", "1-1", " =1", "'=1", "<b>", "é=1"])
def test_plain_text_is_kept(text):
    assert tr.defuse(text) == text


def test_csv_is_rfc_4180():
    cells = [["id", "end_user"], ["1", 'a,b "c"\r\nd'], ["2", "plain"]]
    text = tr.csv_text(cells)
    assert text == 'id,end_user\r\n1,"a,b ""c""\r\nd"\r\n2,plain\r\n'
    assert list(csv.reader(io.StringIO(text, newline=""))) == cells


def test_a_row_has_every_column_in_order():
    at = dt.datetime(2025, 3, 1, 10, 0, 0, 500_000, tzinfo=dt.UTC)
    row = {"id": 7, "integration_id": "i1", "end_user_id": "=cmd", "category": None,
           "lang": "fr-fr", "opened_at": at, "claimed_at": None, "first_response_at": None,
           "resolved_at": None, "wait_seconds": 12.34567, "first_response_seconds": None,
           "handling_seconds": None, "requeues": 2, "agent": None, "survey_sent_at": at,
           "csat_score": 4, "csat_comment": "-great"}
    cells = tr.csv_row(row)
    assert len(cells) == len(tr.COLUMNS)
    assert cells == ["7", "i1", "'=cmd", "", "fr-fr", "2025-03-01T10:00:00Z", "", "", "",
                     "12.346", "", "", "2", "", "2025-03-01T10:00:00Z", "4", "'-great"]
