"""`connector.web.jsonin`: the door for JSON from outside, as a property: whatever the bytes,
either a value every part of the system can store and read back, or a clear refusal."""

from __future__ import annotations

import json

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from connector.web import jsonin

anything = st.recursive(
    st.one_of(st.none(), st.booleans(), st.floats(), st.integers(min_value=-(2**80),
                                                                  max_value=2**80),
              st.text(alphabet=st.characters(codec=None), max_size=8)),
    lambda inner: st.one_of(st.lists(inner, max_size=3),
                            st.dictionaries(st.text(max_size=4), inner, max_size=3)),
    max_leaves=12)


def depth(value: object) -> int:
    if isinstance(value, dict):
        return 1 + max(map(depth, value.values()), default=0)
    if isinstance(value, list):
        return 1 + max(map(depth, value), default=0)
    return 0


def storable(value: object) -> None:
    """What the door promises: orjson writes it, and Python's parser reads it back."""
    assert json.loads(orjson.dumps(value)) == json.loads(orjson.dumps(value))
    assert depth(value) <= jsonin.MAX_DEPTH


@settings(max_examples=300, deadline=None, derandomize=True)
@given(st.binary(max_size=64))
def test_any_bytes_are_a_value_or_a_refusal(raw):
    try:
        storable(jsonin.load(raw))
    except (jsonin.Malformed, jsonin.Unstorable):
        pass


@settings(max_examples=300, deadline=None, derandomize=True)
@given(anything)
def test_any_json_text_is_a_storable_value_or_names_its_culprit(value):
    # json.dumps writes lone surrogates as escapes and big integers whole, as a platform may.
    raw = json.dumps(value, allow_nan=True).encode()
    try:
        storable(jsonin.load(raw))
    except jsonin.Malformed:
        assert any(name in raw for name in (b"NaN", b"Infinity"))
    except jsonin.Unstorable as exc:
        assert exc.field and exc.message


@pytest.mark.parametrize(("raw", "field", "message"), [
    (b'{"a": {"b": ["x", "\\ud800"]}}', "a.b.1", "lone surrogate"),
    (b'{"a": 123456789012345678901}', "a", "64 bits"),
    (b'{"a": -9223372036854775809}', "a", "64 bits"),
    (b'{"a":18446744073709551616}', "a", "64 bits"),  # compact, as orjson writes
    (b'{"a":[1,18446744073709551616]}', "a.1", "64 bits"),
    (b'{"a":\n\t-9223372036854775809}', "a", "64 bits"),
    (b'18446744073709551616', "body", "64 bits"),
    (b'[-9223372036854775809]', "0", "64 bits"),
    # found after a run of digits inside a string, however long
    (b'{"a":"x1234567890123456789","b":18446744073709551616}', "b", "64 bits"),
    (b'{"a":"x' + b"7" * 5000 + b'","b":[18446744073709551616]}', "b.0", "64 bits"),
    # after more runs inside strings than the fast check looks at
    (b'{"a":"' + b"x1234567890123456789 " * 100 + b'","b":18446744073709551616}', "b",
     "64 bits"),
    (b'{"a": [1e400]}', "a.0", "out of range"),
    (b'{"k\\udfff": 1}', "k\\udfff", "lone surrogate"),
    (b'{"a": ' + b"[" * 40 + b"]" * 40 + b"}", "a" + ".0" * 31, "nested deeper"),
])
def test_the_refusal_names_the_first_culprit(raw, field, message):
    with pytest.raises(jsonin.Unstorable) as refused:
        jsonin.load(raw)
    assert refused.value.field == field and message in refused.value.message


@pytest.mark.parametrize("raw", [
    b'{"a": 18446744073709551615, "b": -9223372036854775808}',  # the extremes orjson writes
    b'{"id": "123456789012345678901234567890"}',  # a long string of digits is only text
    b'{"a": "a\\u0000b", "b\\u0000": 1}',  # a NUL is shown as U+FFFD in text columns
    b"[" * 32 + b"]" * 32,
])
def test_values_at_the_limits_are_accepted(raw):
    storable(jsonin.load(raw))


@pytest.mark.parametrize("raw", [
    b'{"id": "1234567890123456789", "ref": "order-12345678901234567890"}',
    b'{"ids": ["x1234567890123456789", "1234567890123456789012"]}',
    b'{"id": "x' + b"1" * 100_000 + b'"}',  # a long run, skipped in one step
])
def test_long_digit_runs_inside_strings_take_the_fast_path(raw, monkeypatch):
    def slow_path(raw: bytes) -> None:
        raise AssertionError("walked the whole body for integers")

    monkeypatch.setattr(jsonin, "_check_integers", slow_path)
    assert jsonin.load(raw) == json.loads(raw)
