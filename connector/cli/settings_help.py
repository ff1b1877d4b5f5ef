"""`connector serve --help`: every setting, made from `Settings` itself.

Each field of `connector.settings.Settings` is listed as its environment variable,
its default and its description: the field's `description`, else the `#:` comment
above it in settings.py. A setting added there is listed with no change here.
"""

from __future__ import annotations

import inspect
import io
import json
import textwrap
import tokenize
from functools import cache

from pydantic.fields import FieldInfo
from pydantic_core import PydanticUndefined

from connector.settings import Settings

WIDTH = 79


@cache
def _comments() -> dict[str, str]:
    """Field name → the `#:` comment lines right above it in the class's source."""
    found: dict[str, str] = {}
    pending: list[str] = []
    try:
        source = textwrap.dedent(inspect.getsource(Settings))
    except (OSError, TypeError):  # installed without its sources: descriptions only
        return found
    for tok in tokenize.generate_tokens(io.StringIO(source).readline):
        if tok.type == tokenize.COMMENT and tok.string.startswith("#:"):
            pending.append(tok.string[2:].strip())
        elif tok.type == tokenize.NAME and tok.start[1] == 4 and pending:
            found[tok.string] = " ".join(pending)
            pending = []
        elif tok.type not in (tokenize.NL, tokenize.NEWLINE, tokenize.INDENT,
                              tokenize.DEDENT, tokenize.COMMENT):
            pending = []
    return found


def env_name(name: str) -> str:
    return f"{Settings.model_config.get('env_prefix', '')}{name}".upper()


def default_text(field: FieldInfo) -> str:
    value = field.default
    if value is PydanticUndefined:
        value = field.default_factory() if field.default_factory else None  # type: ignore[call-arg]
    if value is None:
        return "(unset)"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, str):
        return value or '""'
    return json.dumps(value)


def describe(name: str, field: FieldInfo) -> str:
    return field.description or _comments().get(name, "")


def settings_epilog() -> str:
    """One entry per setting: `CONNECTOR_NAME (default: ...)` and its description."""
    lines = []
    for name, field in Settings.model_fields.items():
        lines.append(f"  {env_name(name)}  (default: {default_text(field)})")
        text = describe(name, field)
        if text:
            lines += textwrap.wrap(text, WIDTH, initial_indent="      ",
                                   subsequent_indent="      ")
    return "\n".join(lines)
