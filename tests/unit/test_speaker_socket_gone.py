"""Speaker: once a send finds the socket gone, nothing more is sent or recorded as sent.

Rules checked here: the frames reported through ``on_sent`` (what a recording keeps as the bot's audio)
are exactly the frames the socket took, whatever message the socket dies on (a media frame, a mark, a
``clear``); after the failure the Speaker sends nothing, reports nothing, ignores new phrases, is not
``speaking`` and is idle; its own errors never reach the call.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from bot.call.speaker import OUT_CHUNK_BYTES, Speaker
from bot.core.heard import MarkTracker
from tests.support.fakes import FakeTTS
from tests.support.speaker import STREAM_SID, TIMEOUT_S, audio, eventually, payload, posting


class DyingSocket:
    """Takes ``alive`` messages, then raises ``ConnectionResetError`` on every send, as ``Call._send``
    does once the socket is gone. Counts every send attempted."""

    def __init__(self, alive: int) -> None:
        self.alive = alive
        self.taken: list[dict[str, Any]] = []
        self.attempts = 0
        self.died = asyncio.Event()

    async def send(self, text: str) -> None:
        self.attempts += 1
        if len(self.taken) >= self.alive:
            self.died.set()
            raise ConnectionResetError("the socket is gone")
        self.taken.append(json.loads(text))

    def frames(self) -> bytes:
        return b"".join(payload(m) for m in self.taken if m["event"] == "media")

    def marks(self) -> list[str]:
        return [m["mark"]["name"] for m in self.taken if m["event"] == "mark"]


class Recorded:
    """What ``on_sent`` reported: the audio a recording would keep as sent, and the marks."""

    def __init__(self) -> None:
        self.audio = b""
        self.marks: list[str] = []

    def on_sent(self, response_id: int, chunk: bytes, mark: str, text: str) -> None:
        self.audio += chunk
        if mark:
            self.marks.append(mark)


def make_speaker(tts: FakeTTS, socket: DyingSocket) -> tuple[Speaker, Recorded]:
    recorded = Recorded()
    speaker = Speaker(tts, socket.send, STREAM_SID, MarkTracker(), post=posting(on_sent=recorded.on_sent))
    speaker.start()
    return speaker, recorded


async def settled(socket: DyingSocket) -> int:
    """Lets the Speaker's tasks run on after the failure; the sends attempted by then."""
    await asyncio.wait_for(socket.died.wait(), TIMEOUT_S)
    for _ in range(50):
        await asyncio.sleep(0)
    return socket.attempts


async def test_a_send_failing_mid_phrase_stops_the_speaker_and_only_what_went_out_is_recorded() -> None:
    tts = FakeTTS({"one": audio(1, 8000), "two": audio(2, 1600), "three": audio(3, 800)})
    socket = DyingSocket(alive=4)  # four messages of "one" go out, the fifth finds the socket gone
    speaker, recorded = make_speaker(tts, socket)
    try:
        for rid, text in enumerate(("one", "two", "three"), start=1):
            speaker.say(text, rid)
        attempts = await settled(socket)
        assert attempts == 5  # one failed send, then nothing more was tried
        assert recorded.audio == socket.frames() == audio(1, 4 * OUT_CHUNK_BYTES)
        assert recorded.marks == [] and socket.marks() == []
        assert speaker.gone and not speaker.speaking
        await asyncio.wait_for(speaker.wait_idle(), TIMEOUT_S)
        speaker.say("three", 4, audio=audio(3, 800))  # later phrases are dropped, not queued
        assert await speaker.clear() == set()  # a barge-in after the failure neither raises nor sends
        for _ in range(50):
            await asyncio.sleep(0)
        assert socket.attempts == attempts and recorded.audio == audio(1, 4 * OUT_CHUNK_BYTES)
        assert not speaker.speaking
    finally:
        await speaker.close()


async def test_a_socket_gone_on_the_mark_keeps_the_audio_that_went_out_and_reports_no_mark() -> None:
    tts = FakeTTS({"one": audio(1, 2 * OUT_CHUNK_BYTES), "two": audio(2, 320)})
    socket = DyingSocket(alive=2)  # both messages of "one" go out, its mark does not
    speaker, recorded = make_speaker(tts, socket)
    try:
        speaker.say("one", 1)
        speaker.say("two", 2)
        assert await settled(socket) == 3
        assert recorded.audio == socket.frames() == audio(1, 2 * OUT_CHUNK_BYTES)
        assert recorded.marks == [] and socket.marks() == []
        assert not speaker.speaking
    finally:
        await speaker.close()


async def test_a_clear_that_finds_the_socket_gone_stops_the_speaker_without_raising() -> None:
    tts = FakeTTS({"one": audio(1, 160)})
    gate = asyncio.Event()
    tts.gates["one"] = gate  # nothing is sent before the clear
    socket = DyingSocket(alive=0)
    speaker, recorded = make_speaker(tts, socket)
    try:
        speaker.say("one", 1)
        assert await speaker.clear() == {1}
        gate.set()
        assert await settled(socket) == 1
        assert speaker.gone and recorded.audio == b"" and not speaker.speaking
    finally:
        await speaker.close()


@settings(max_examples=30, deadline=None)
@given(
    sizes=st.lists(st.integers(min_value=1, max_value=900), min_size=1, max_size=4),
    chunk_bytes=st.integers(min_value=1, max_value=500),
    alive=st.integers(min_value=0, max_value=30),
)
def test_whatever_message_the_socket_dies_on_only_what_it_took_is_recorded_as_sent(
    sizes: list[int], chunk_bytes: int, alive: int
) -> None:
    async def run() -> tuple[DyingSocket, Recorded, int, bool]:
        tts = FakeTTS({f"p{i}": audio(i + 1, n) for i, n in enumerate(sizes)}, chunk_bytes=chunk_bytes)
        socket = DyingSocket(alive)
        speaker, recorded = make_speaker(tts, socket)
        try:
            for i in range(len(sizes)):
                speaker.say(f"p{i}", i + 1)
            # media messages and marks of every phrase
            total = sum(-(-n // OUT_CHUNK_BYTES) for n in sizes) + len(sizes)
            if alive < total:
                attempts = await settled(socket)
            else:  # the socket outlived the speech: everything went out
                await eventually(lambda: len(socket.marks()) == len(sizes))
                attempts = socket.attempts
            return socket, recorded, attempts, speaker.speaking
        finally:
            await speaker.close()

    socket, recorded, attempts, speaking = asyncio.run(run())
    assert recorded.audio == socket.frames()
    assert recorded.marks == socket.marks()
    if socket.died.is_set():
        assert attempts == alive + 1 and not speaking  # exactly one failed send, then silence
    else:
        assert attempts == len(socket.taken)
