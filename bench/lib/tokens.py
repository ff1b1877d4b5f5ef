"""Benchmark tokens: `<run>x<seq>y` in a text (or an end user's id) tells which request of
which run it came from."""

from __future__ import annotations

import re

from .smartly import encode, turn


def token_text(run: str, seq: int) -> str:
    """A user's input carrying the benchmark token `<run>x<seq>y` (found with `token_re`)."""
    return f"Bonjour, ma commande {run}x{seq}y n'est pas arrivée"


def token_re(run: str) -> re.Pattern[str]:
    """Finds the tokens of `run`; group 1 is the sequence number."""
    return re.compile(re.escape(run) + r"x(\d+)y")


def token_turn(user: str, run: str, seq: int) -> bytes:
    """Turn `seq` of `run` from `user`, whose conversation is in handover: the bot says
    nothing, so it is one message, one `message.created` event for the consoles."""
    return encode(turn(user, token_text(run, seq), answer=None, ref=f"{run}-{seq}"))


def handover_turn(run: str, seq: int) -> bytes:
    """Handover `seq` of `run`: a need_help turn from a new end user whose id is the token
    `<run>x<seq>y`, so every ticket frame about it (its summary's `end_user`) carries it."""
    return encode(turn(f"{run}x{seq}y", "Je voudrais parler à un conseiller", need_help=True,
                       answer="un conseiller va vous contacter", ref=f"{run}-{seq}"))
