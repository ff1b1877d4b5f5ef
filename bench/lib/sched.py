"""How the client processes run: their scheduling policy and their event loop."""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import Iterator

CLIENT_SCHED_HELP = (
    "scheduling policy of the client processes (consoles, load generator): 'normal' "
    "(default: the plain policy, the figure the targets are about) or 'batch', which keeps "
    "them from preempting the server each time it writes to them, as clients on other "
    "machines never do (reported beside the default figure, never instead of it)")


def set_client_policy(policy: str) -> None:
    """Put the calling thread (and what it forks later) in `policy`: "batch" or "normal".

    Here the clients share 2 vCPUs with the server they measure. Under the
    default policy each write the server makes to a console or an HTTP client
    wakes that process, and the kernel may switch to it at once, in the middle of
    the server's fan-out or request; in production the clients are browsers and
    bot platforms on other machines and never do that. SCHED_BATCH (no privilege
    needed) turns off that wake-up preemption for the clients only; they still
    take their share of CPU. It applies to every target of a run alike.
    """
    if policy == "batch":
        os.sched_setscheduler(0, os.SCHED_BATCH, os.sched_param(0))
    elif policy == "normal":
        os.sched_setscheduler(0, os.SCHED_OTHER, os.sched_param(0))
    else:
        raise ValueError(f"unknown scheduling policy {policy!r}")


@contextlib.contextmanager
def client_policy(policy: str) -> Iterator[None]:
    """`set_client_policy` for the calling thread while the block runs (servers this
    process starts afterwards must not inherit it)."""
    set_client_policy(policy)
    try:
        yield
    finally:
        set_client_policy("normal")


def use_uvloop() -> str:
    """Make uvloop the event loop of later `asyncio.run` calls, when installed; its name."""
    try:
        import uvloop
    except ImportError:
        return "asyncio"
    asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    return "uvloop"
