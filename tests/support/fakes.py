"""Fakes of the product's providers and sinks, for unit tests that run one stage without the emulators.

Rules:
- Each fake implements the product's protocol (checked by mypy at the bottom of this module); what the
  test scripts is data on the fake (audio per phrase, gates, errors), and what happened is read back
  from its lists.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

from bot.providers.tts.protocol import TextToSpeech, VoiceOptions
from bot.recording.store import RecordingSink


class FakeTTS(TextToSpeech):
    """Yields each phrase's audio in ``chunk_bytes`` pieces (small odd sizes by default); a phrase may wait
    on a gate first, or fail with a scripted error. ``voice`` is taken and ignored: the audio is the
    phrase's, whatever the voice."""

    def __init__(self, audio: dict[str, bytes], *, chunk_bytes: int = 70) -> None:
        self.audio = audio
        self.chunk_bytes = chunk_bytes
        self.gates: dict[str, asyncio.Event] = {}
        self.errors: dict[str, BaseException] = {}
        self.started: list[str] = []
        self.finished: list[str] = []
        self.cancelled: list[str] = []

    async def synthesize(self, text: str, voice: VoiceOptions | None = None) -> AsyncIterator[bytes]:
        self.started.append(text)
        try:
            if text in self.gates:
                await self.gates[text].wait()
            if text in self.errors:
                raise self.errors[text]
            data = self.audio[text]
            for i in range(0, len(data), self.chunk_bytes):
                yield data[i : i + self.chunk_bytes]
        except asyncio.CancelledError:
            self.cancelled.append(text)
            raise
        self.finished.append(text)


class MemorySink:
    """In-memory ``RecordingSink``: what the recorder wrote, without a disk, and whether it was closed."""

    def __init__(self) -> None:
        self.files: dict[str, bytearray] = {}
        self.closed = False

    @property
    def id(self) -> str:
        return "mem/1"

    def append(self, name: str, data: bytes) -> None:
        self.files.setdefault(name, bytearray()).extend(data)

    def replace(self, name: str, data: bytes) -> None:
        self.files[name] = bytearray(data)

    def close(self) -> None:
        self.closed = True


# Each fake implements its protocol (mypy checks these lines).
_tts: TextToSpeech = FakeTTS({})
_sink: RecordingSink = MemorySink()
