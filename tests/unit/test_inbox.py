"""``bot.call.inbox``: one queue for the stream's messages and the stages' news, in arrival order.

Checked on the event loop with hand-made frames and a fake clock: the order items come out in, the time
each carries, the end of the stream (last, with the reader's error), and the reader's backpressure.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator

import pytest

from bot.call.events import AudioSent, SocketFailed
from bot.call.inbox import READ_AHEAD, Inbox, StreamEnded
from bot.core.twilio_messages import Invalid, Mark

TIMEOUT_S = 5.0


def mark(name: str) -> str:
    return json.dumps({"event": "mark", "streamSid": "MZ1", "mark": {"name": name}})


async def frames_of(*raw: str) -> AsyncIterator[str]:
    for frame in raw:
        yield frame


async def test_messages_and_news_come_out_in_the_order_they_arrived_with_their_time() -> None:
    now = [10.0]
    inbox = Inbox(lambda: now[0], max_frame_chars=64 * 1024)
    inbox.post(AudioSent(1, b"\xff"))
    now[0] = 11.0
    reader = asyncio.create_task(inbox.read(frames_of(mark("m1"), "not json")))
    async with asyncio.timeout(TIMEOUT_S):
        items = []
        while not items or not isinstance(items[-1][1], StreamEnded):
            items.append(await inbox.get())
            inbox.done()
    await reader
    assert [type(item) for _, item in items] == [AudioSent, Mark, Invalid, StreamEnded]
    assert [at for at, _ in items] == [10.0, 11.0, 11.0, 11.0]
    assert items[1][1] == Mark("MZ1", "m1")
    assert items[-1][1] == StreamEnded(None)


async def test_an_error_reading_the_socket_ends_the_stream_and_is_carried_to_the_loop() -> None:
    async def failing() -> AsyncIterator[str]:
        yield mark("m1")
        raise ConnectionResetError("gone")

    inbox = Inbox(lambda: 0.0, max_frame_chars=64 * 1024)
    await asyncio.wait_for(inbox.read(failing()), TIMEOUT_S)
    _, first = await inbox.get()
    _, last = await inbox.get()
    assert isinstance(first, Mark)
    assert isinstance(last, StreamEnded) and isinstance(last.error, ConnectionResetError)


async def test_the_reader_waits_for_the_loop_once_it_is_read_ahead_of_it() -> None:
    read = 0

    async def endless() -> AsyncIterator[str]:
        nonlocal read
        while True:
            read += 1
            yield mark(f"m{read}")

    inbox = Inbox(lambda: 0.0, max_frame_chars=64 * 1024)
    reader = asyncio.create_task(inbox.read(endless()))
    try:
        for _ in range(5):
            await asyncio.sleep(0)
        assert read == READ_AHEAD  # nothing handled yet: it stopped reading the socket
        for _ in range(READ_AHEAD):
            await inbox.get()
            inbox.done()
        for _ in range(5):
            await asyncio.sleep(0)
        assert read == 2 * READ_AHEAD  # the loop caught up: it read again, as far again
    finally:
        reader.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await reader


@pytest.mark.parametrize("left", [0, 3])
async def test_news_left_after_the_loop_is_handed_back_without_the_unread_frames(left: int) -> None:
    inbox = Inbox(lambda: 2.0, max_frame_chars=64 * 1024)
    await inbox.read(frames_of(*(mark(f"m{i}") for i in range(left))))
    inbox.post(SocketFailed("send_timeout", None))
    assert inbox.leftover_news() == [(2.0, SocketFailed("send_timeout", None))]
    assert inbox.leftover_news() == []
