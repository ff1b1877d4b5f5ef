"""A channel in memory, for tests of what sends (httpx's MockTransport, for channels).

End-to-end tests use a real HTTP server instead (tests/fakes.py `FakeChannel`).
"""

from __future__ import annotations

from connector.channels.base import Channel, Envelope, Outcome


class MemoryChannel(Channel):
    """Keeps every job it is given, in order, in `sent`, and answers from a script.

    `script` is consumed one outcome per job; when it is empty, `default`
    answers (delivered, 200, unless set otherwise).
    """

    def __init__(self, *script: Outcome, default: Outcome | None = None) -> None:
        self.script = list(script)
        self.default = default or Outcome.delivered(200)
        self.sent: list[Envelope] = []
        #: The jobs that were answered delivered, in order.
        self.delivered: list[Envelope] = []

    async def deliver(self, job: Envelope) -> Outcome:
        self.sent.append(job)
        outcome = self.script.pop(0) if self.script else self.default
        if outcome.state == "delivered":
            self.delivered.append(job)
        return outcome
