"""The Speaker's test bench: a recording wire, frame helpers and a polling wait, shared by the Speaker tests.

Rules:
- Each phrase's fake audio is one distinct byte value (``audio``), so a frame tells which phrase it
  belongs to (``payload(message)[0]``).
- ``Wire`` is the WebSocket: it records every message when the socket takes it, and can hold a phrase's
  media to show what the Speaker does while a send blocks.
"""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import Callable
from typing import Any

from bot.call.events import AudioSent, AudioStarted, MarkSent, SpeakerEvent, SpeechFailed
from bot.call.speaker import Speaker
from bot.core.heard import MarkTracker
from media.errors import ProviderError
from tests.support.fakes import FakeTTS

TIMEOUT_S = 5.0
POLL_S = 0.002
STREAM_SID = "MZ00000000000000000000000000000001"


class Wire:
    """The WebSocket: records every message; media of a held phrase blocks until released."""

    def __init__(self) -> None:
        self.messages: list[dict[str, Any]] = []
        self.holds: dict[int, asyncio.Event] = {}  # phrase byte value -> release
        self.blocked = asyncio.Event()

    async def send(self, text: str) -> None:
        message = json.loads(text)
        self.messages.append(message)  # recorded when committed to the socket
        if message["event"] == "media":
            hold = self.holds.get(payload(message)[0])
            if hold is not None and not hold.is_set():
                self.blocked.set()
                await hold.wait()

    def frames(self) -> list[bytes]:
        return [payload(m) for m in self.messages if m["event"] == "media"]

    def marks(self) -> list[str]:
        return [m["mark"]["name"] for m in self.messages if m["event"] == "mark"]

    def script(self) -> list[str]:
        """The wire in short form: one entry per run of frames of one phrase, per mark, per clear."""
        out: list[str] = []
        for m in self.messages:
            if m["event"] == "media":
                entry = f"audio {payload(m)[0]}"
                if not out or out[-1] != entry:
                    out.append(entry)
            elif m["event"] == "mark":
                out.append("mark")
            else:
                out.append(m["event"])
        return out


def payload(message: dict[str, Any]) -> bytes:
    return base64.b64decode(message["media"]["payload"], validate=True)


async def eventually(condition: Callable[[], bool], timeout_s: float = TIMEOUT_S) -> None:
    """Polls, because what the tests watch changes inside the Speaker's own tasks."""
    for _ in range(int(timeout_s / POLL_S)):
        if condition():
            return
        await asyncio.sleep(POLL_S)
    raise AssertionError(f"condition still false after {timeout_s} s")


def audio(value: int, size: int) -> bytes:
    return bytes([value]) * size


def posting(
    *,
    on_error: Callable[[int, ProviderError], None] | None = None,
    on_audio: Callable[[int], None] | None = None,
    on_sent: Callable[[int, bytes, str, str], None] | None = None,
) -> Callable[[SpeakerEvent], None]:
    """A Speaker's ``post`` that hands the events a test watches to plain functions."""

    def post(event: SpeakerEvent) -> None:
        if isinstance(event, SpeechFailed) and on_error is not None:
            on_error(event.response_id, event.error)
        elif isinstance(event, AudioStarted) and on_audio is not None:
            on_audio(event.response_id)
        elif isinstance(event, AudioSent) and on_sent is not None:
            on_sent(event.response_id, event.audio, "", "")
        elif isinstance(event, MarkSent) and on_sent is not None:
            on_sent(event.response_id, b"", event.mark, event.text)

    return post


def make_speaker(tts: FakeTTS, wire: Wire, **watch: Any) -> tuple[Speaker, MarkTracker]:
    """A started Speaker on ``wire``; ``watch`` as for ``posting``."""
    tracker = MarkTracker()
    speaker = Speaker(tts, wire.send, STREAM_SID, tracker, post=posting(**watch))
    speaker.start()
    return speaker, tracker
