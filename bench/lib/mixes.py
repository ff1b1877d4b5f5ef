"""The workloads of the ingest benchmark: how many conversations are in handover.

A turn of a conversation in handover costs more than a bot-only turn (its open
ticket, the ticket's audience, a stream event for the consoles), and a turn
that opens a ticket costs more still. The mixes, each measured on its own:

* `few`: about 5% of the end users in handover, no new handover;
* `handover`: 800 of the 1,000 end users in handover, no new handover;
* `escalating`: 5% of turns ask for a human, each from a new end user, so a
  ticket opens with every one of them (5% of the users are in handover
  besides).

The users in handover are put there before the mix's runs (`preseed`: one
`need_help` turn each, answered before the run starts); their turns in the run
are a muted bot's, as Smartly sends them during a handover.
"""

from __future__ import annotations

import concurrent.futures
import json
import urllib.request
from dataclasses import dataclass

from .smartly import encode, turn


@dataclass(frozen=True)
class Mix:
    name: str
    in_handover: int  # end users "user-0" ... with an open ticket during the runs
    help_percent: float  # of the turns, each asking for a human
    fresh_escalations: bool  # the asking turns come from new end users
    target: dict[str, float]  # connector/bare ratio to reach, per database

    def describe(self, users: int) -> str:
        parts = [f"{self.in_handover} of {users} end users in handover"]
        if self.help_percent:
            who = "each from a new end user" if self.fresh_escalations else "from those users"
            parts.append(f"{self.help_percent:g}% of turns asking for a human ({who})")
        return ", ".join(parts)


def mixes(users: int) -> dict[str, Mix]:
    few = max(1, users * 5 // 100)
    return {
        "few": Mix("few", few, 0.0, False, {"sqlite": 0.45, "postgresql": 0.25}),
        "escalating": Mix("escalating", few, 5.0, True, {"sqlite": 0.35, "postgresql": 0.20}),
        "handover": Mix("handover", users * 80 // 100, 0.0, False,
                        {"sqlite": 0.35, "postgresql": 0.20}),
    }


def preseed(url: str, first: int, last: int, salt: str, workers: int = 8) -> int:
    """Open a ticket for end users `user-{first}` ... `user-{last - 1}`: one need_help turn
    each, every one answered (2xx) before this returns. Returns how many were sent."""
    def one(n: int) -> None:
        body = encode(turn(f"user-{n}", "Je veux parler à un conseiller", need_help=True,
                           answer="Nous allons vérifier si un agent est disponible",
                           ref=f"seed-{salt}-{n}"))
        req = urllib.request.Request(url, data=body, method="POST",  # noqa: S310 (loopback)
                                     headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=60) as resp:  # noqa: S310
            answer = json.loads(resp.read())
            if resp.status >= 300 or not answer.get("ticket_id"):
                raise SystemExit(f"preseed of user-{n}: {resp.status} {answer}")

    with concurrent.futures.ThreadPoolExecutor(workers) as pool:
        list(pool.map(one, range(first, last)))
    return max(0, last - first)
