"""The routing loops of the live apps in these tests run at short periods: the router's
tick and the sweep are module constants read on every turn of their loops."""

from __future__ import annotations

import pytest

from connector.routing import router, timers

TICK_SECONDS = 0.1
SWEEP_SECONDS = 0.2


@pytest.fixture(autouse=True)
def fast_loops(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(router, "TICK_SECONDS", TICK_SECONDS)
    monkeypatch.setattr(timers, "SWEEP_SECONDS", SWEEP_SECONDS)
