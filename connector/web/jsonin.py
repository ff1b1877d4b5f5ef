"""JSON from outside: parsed strictly, refused at the door if we could not store it.

Contract of `load(raw)`: it returns a value only when every part of it can be
written by the ingest writer and read back by every view, on SQLite and on
PostgreSQL alike:

* the body is UTF-8 and strict JSON (no NaN or Infinity);
* no string or key holds a lone surrogate (not Unicode: no encoder takes it);
  a NUL character is accepted (the writer shows it as U+FFFD in text columns,
  which cannot hold one on PostgreSQL, and the raw body keeps its escape);
* every number fits what orjson writes back: integers from -2**63 to
  2**64-1 (a longer integer is refused, not rounded to a float as orjson
  reads it), floats that are finite;
* containers nest at most `MAX_DEPTH` levels (orjson writes at most 254, and
  Python's own parser, on the read side, stops near 1,000).

Anything else raises `Malformed` (not JSON at all: a client error, 400) or
`Unstorable` (valid JSON we refuse: 422, naming the first offending field).
Neither carries HTTP: the web layer maps them.

The common case costs one `orjson.loads` and a few byte scans; the walk over
the parsed value runs only when a scan says it may find something (for integers:
19 digits in a row where a number may start, not within a word of a string).
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterator
from typing import Any

import orjson

#: Deepest nesting of objects and arrays accepted (a Smartly turn nests about 4 levels,
#: a Chatlayer carousel about 7).
MAX_DEPTH = 32
_INT_MIN, _INT_MAX = -(2**63), 2**64 - 1
#: One pass for two scans (much faster than a regex): every digit becomes a "0", so 19
#: zeros in a row are 19 digits in a row, perhaps an integer beyond 64 bits (the shortest,
#: -9223372036854775809, has 19; or only a long string of digits); every "{" becomes a "[",
#: so one count gives all the brackets.
_SCAN = bytes.maketrans(b"123456789{", b"000000000[")
_LONG_DIGITS = b"0" * 19
#: What may come before a JSON number (after its optional "-"): white space, ":", "," or
#: "[" (or nothing: the body's start).
_BEFORE_NUMBER = frozenset(b" \t\n\r:,[")
#: The end of a run of digits in a scan (in C: a body may be a megabyte of digits).
_NOT_DIGIT = re.compile(rb"[^0]")
#: Runs of digits `_long_number` looks at before it lets the slow path decide.
_RUNS_LOOKED_AT = 32
#: Longest field path named in an error (a key may be as long as the body).
_PATH_MAX = 200


class Malformed(ValueError):
    """Not a JSON document: says what is wrong and where."""


class Unstorable(ValueError):
    """Valid JSON that we refuse to store; `field` is the dotted path of the first culprit."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field, self.message = field, message


def load(raw: bytes) -> Any:
    """The value of `raw`, or `Malformed` / `Unstorable` (see the module docstring)."""
    if not raw.strip():
        raise Malformed("empty body")
    try:
        value = orjson.loads(raw)
    except orjson.JSONDecodeError:
        _refuse(raw)
    scan = raw.translate(_SCAN)
    # Fewer brackets in all than the limit: no need to walk (brackets in strings count too).
    if scan.count(b"[") > MAX_DEPTH:
        _check_depth(value)
    if _LONG_DIGITS in scan and _long_number(raw, scan):
        _check_integers(raw)
    return value


def _refuse(raw: bytes) -> Any:
    """Say why orjson refused `raw`: the stdlib parser is more lenient, and more precise."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise Malformed(f"body is not UTF-8 (byte {exc.start})") from None
    try:
        value = json.loads(text, parse_constant=_no_constant)
    except json.JSONDecodeError as exc:
        raise Malformed(f"{exc.msg} at line {exc.lineno} column {exc.colno}") from None
    except RecursionError:
        raise Unstorable("body", f"nested deeper than {MAX_DEPTH} levels") from None
    except ValueError as exc:
        raise Malformed(str(exc)) from None
    # Valid JSON that orjson would not take: find what.
    _check_depth(value)
    for path, culprit in _walk(value):
        problem = _unstorable(culprit)
        if problem:
            raise Unstorable(path, problem)
    raise Unstorable("body", "cannot be stored")


def _long_number(raw: bytes, scan: bytes) -> bool:
    """Whether a run of 19 digits or more (zeros in `scan`) starts where a number may.

    Digits inside a string usually follow a quote, a letter or "-": an id such as
    "1234567890123456789" does not send the body down the slow path (a string whose
    digits do follow a space only costs that path). After `_RUNS_LOOKED_AT` runs it
    answers yes: the slow path's cost is bounded by the body's size, this loop's by that."""
    at = scan.find(_LONG_DIGITS)
    for _ in range(_RUNS_LOOKED_AT):
        if at < 0:
            return False
        before = at - 1
        if before >= 0 and raw[before] == 0x2D:  # "-"
            before -= 1
        if before < 0 or raw[before] in _BEFORE_NUMBER:
            return True
        rest = _NOT_DIGIT.search(scan, at + len(_LONG_DIGITS))  # the end of this run
        if rest is None:
            return False
        at = scan.find(_LONG_DIGITS, rest.end())
    return at >= 0


def _check_integers(raw: bytes) -> None:
    """orjson reads an integer beyond 64 bits as a float: the stdlib parser keeps it whole."""
    for path, culprit in _walk(json.loads(raw)):
        if isinstance(culprit, int) and not isinstance(culprit, bool) \
                and not _INT_MIN <= culprit <= _INT_MAX:
            raise Unstorable(path, "integer out of range (at most 64 bits)")


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def _unstorable(value: Any) -> str | None:
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return "contains a lone surrogate (not valid Unicode)"
    elif isinstance(value, bool):
        return None
    elif isinstance(value, int):
        if not _INT_MIN <= value <= _INT_MAX:
            return "integer out of range (at most 64 bits)"
    elif isinstance(value, float) and not math.isfinite(value):
        return "number out of range"
    return None


def _check_depth(value: Any) -> None:
    stack: list[tuple[Any, int, str]] = [(value, 1, "")]
    while stack:
        node, depth, path = stack.pop()
        children = (node.items() if isinstance(node, dict)
                    else enumerate(node) if isinstance(node, list) else ())
        for key, child in children:
            if isinstance(child, dict | list):
                where = _join(path, key)
                if depth + 1 > MAX_DEPTH:
                    raise Unstorable(where, f"nested deeper than {MAX_DEPTH} levels")
                stack.append((child, depth + 1, where))


def _walk(value: Any) -> Iterator[tuple[str, Any]]:
    """Every key and value below `value` with its dotted path, depth first."""
    stack: list[tuple[Any, str]] = [(value, "")]
    while stack:
        node, path = stack.pop()
        if isinstance(node, dict):
            for key, child in reversed(node.items()):
                where = _join(path, key)
                stack.append((child, where))
                stack.append((key, where))
        elif isinstance(node, list):
            stack.extend((child, _join(path, i)) for i, child in reversed(list(enumerate(node))))
        else:
            yield path or "body", node


def _join(path: str, key: object) -> str:
    try:
        part = str(key).encode("utf-8", "backslashreplace").decode("utf-8")
    except UnicodeError:  # pragma: no cover - backslashreplace always encodes
        part = "?"
    joined = f"{path}.{part}" if path else part
    return joined if len(joined) <= _PATH_MAX else joined[:_PATH_MAX - 1] + "…"
