"""What one console is sent: its stored events after its cursor, then live ones.

Messages are coalesced (see `connector.realtime.hub` for the protocol and the
ordering guarantees): everything waiting for a console goes out as one
message, within the limits below.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Iterator

from connector.domain.events import HEARTBEAT, heartbeat
from connector.realtime import stream
from connector.realtime.hub import Batch, Client, Hub
from connector.realtime.stream import Event

#: A coalesced message holds at most this many frames...
MESSAGE_MAX_FRAMES = 500
#: ...and takes no further frame once its text would grow beyond this many characters
#: (a single larger frame is sent alone).
MESSAGE_MAX_CHARS = 256 * 1024
#: Stored events read per database query, for the replay and for catch-up.
REPLAY_PAGE = 500

Send = Callable[[str], Awaitable[None]]


async def replay_then_live(hub: Hub, client: Client, after: int, send: Send) -> None:
    """Send every visible event after `after`, then live events, until the client closes.

    The client must already be attached to the hub (see module docstring).
    `send` takes one message as JSON text. Cursors sent only ever increase.
    """
    last_sent = after
    client.behind = True  # the stored events first
    while not client.closed.is_set():
        if client.behind:
            client.behind = False
            last_sent = await _replay(hub, client, last_sent, send)
        elif client.pending:
            last_sent = await _send_live(client, client.take(), last_sent, send)
        else:
            client.wake.clear()
            await client.wake.wait()


async def _replay(hub: Hub, client: Client, last_sent: int, send: Send) -> int:
    """Send the stored events after `last_sent` the client may see; returns the last cursor read."""
    user_id, role = client.principal.user_id, client.principal.role
    while True:
        async with hub.store.read() as conn:
            page = await stream.read_after(conn, last_sent, limit=REPLAY_PAGE)
        if not page:
            return last_sent
        await _send_events(client, [e for e in page if e.visible_to(user_id, role)], send)
        last_sent = page[-1].cursor
        if len(page) < REPLAY_PAGE:
            return last_sent


async def _send_live(client: Client, chunks: list[list[Event]], last_sent: int,
                     send: Send) -> int:
    """Send the events of `chunks` beyond `last_sent`, or a heartbeat if they hold only that."""
    if len(chunks) == 1 and isinstance(batch := chunks[0], Batch) and batch[0].cursor > last_sent:
        # The usual case: one batch, as every console that sees it all gets it.
        if batch.messages is None:
            batch.messages = list(_coalesce(batch))
        for text in batch.messages:
            await _send(client, send, text)
        return batch[-1].cursor
    events = []
    beat = False
    for chunk in chunks:
        for event in chunk:
            if event is HEARTBEAT:
                beat = True
            elif event.cursor > last_sent:
                events.append(event)
                last_sent = event.cursor
    if events:
        await _send_events(client, events, send)
    elif beat:
        await _send(client, send, heartbeat(last_sent))
    return last_sent


async def _send_events(client: Client, events: list[Event], send: Send) -> None:
    """Send `events` in order, in as few messages as the caps allow."""
    for text in _coalesce(events):
        await _send(client, send, text)


def _coalesce(events: list[Event]) -> Iterator[str]:
    """The messages (one frame, or a JSON array of frames) that carry `events`, in order."""
    texts: list[str] = []
    size = 0
    for event in events:
        text = event.text()
        if texts and (len(texts) >= MESSAGE_MAX_FRAMES or size + len(text) > MESSAGE_MAX_CHARS):
            yield _message(texts)
            texts, size = [], 0
        texts.append(text)
        size += len(text) + 1
    if texts:
        yield _message(texts)


def _message(texts: list[str]) -> str:
    return texts[0] if len(texts) == 1 else "[" + ",".join(texts) + "]"


async def _send(client: Client, send: Send, text: str) -> None:
    client.sending_since = client.active_at = time.monotonic()
    try:
        await send(text)
    finally:
        client.sending_since = None


async def resume_point(hub: Hub, after: int | None) -> tuple[int, bool]:
    """Where a client starts: (cursor, resync needed).

    No `after`: from now. An `after` older than the kept stream (pruned), or
    ahead of it (from another database), cannot be resumed: the client is told
    to resync and starts from now.
    """
    async with hub.store.read() as conn:
        last = await stream.last_cursor(conn)
        oldest = await stream.oldest_kept(conn)
    if after is None:
        return last, False
    if after > last:
        return last, True
    first_kept = oldest if oldest is not None else last + 1
    if after < first_kept - 1:
        return last, True
    return after, False
