"""``ClipCache``: one synthesis per text however many ask at once; failures are forgotten; the cache is
the line's ``TextToSpeech`` (a known clip plays from it, any other text goes to the voice)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from bot.clips import ClipCache
from media.errors import ProviderError
from media.tts.protocol import VoiceOptions


class SlowVoice:
    """Counts requests; each takes until ``release`` is set; ``fail`` texts raise a quota error."""

    def __init__(self) -> None:
        self.requests: list[str] = []
        self.release = asyncio.Event()
        self.fail: set[str] = set()

    async def synthesize(self, text: str, voice: VoiceOptions | None = None) -> AsyncIterator[bytes]:
        self.requests.append(text)
        await self.release.wait()
        if text in self.fail:
            raise ProviderError("google-tts", "quota")
        yield text.encode()
        yield b"!"

    async def aclose(self) -> None:
        pass


async def play(clips: ClipCache, text: str) -> bytes:
    return b"".join([chunk async for chunk in clips.synthesize(text)])


async def test_concurrent_asks_share_one_synthesis_per_text() -> None:
    voice = SlowVoice()
    clips = ClipCache(voice)
    warm = asyncio.create_task(clips.ensure(["Hello.", "Sorry.", "Hello."]))
    first_call = asyncio.create_task(clips.ensure(["Hello.", "Sorry."]))
    await asyncio.sleep(0)
    greeting = asyncio.create_task(play(clips, "Hello."))  # the Speaker saying the greeting meanwhile
    await asyncio.sleep(0.01)
    voice.release.set()
    await asyncio.gather(warm, first_call)
    assert await greeting == b"Hello.!"
    assert sorted(voice.requests) == ["Hello.", "Sorry."]
    assert clips.get("Sorry.") == b"Sorry.!"
    await clips.ensure(["Hello.", "Sorry."])
    assert await play(clips, "Sorry.") == b"Sorry.!"
    assert len(voice.requests) == 2  # cached: no more requests


async def test_a_caller_who_leaves_does_not_cancel_the_shared_synthesis() -> None:
    voice = SlowVoice()
    clips = ClipCache(voice)
    first_call = asyncio.create_task(clips.ensure(["Hello."]))
    await asyncio.sleep(0.01)
    first_call.cancel()  # the call hung up
    second_call = asyncio.create_task(clips.ensure(["Hello."]))
    await asyncio.sleep(0.01)
    voice.release.set()
    await second_call
    assert clips.get("Hello.") == b"Hello.!"
    assert voice.requests == ["Hello."]


async def test_a_failed_clip_is_tried_again_and_its_waiters_hear_the_error() -> None:
    voice = SlowVoice()
    voice.fail.add("Hello.")
    clips = ClipCache(voice)
    warm = asyncio.create_task(clips.ensure(["Hello."]))
    await asyncio.sleep(0)
    greeting = asyncio.create_task(play(clips, "Hello."))
    await asyncio.sleep(0.01)
    voice.release.set()
    await warm  # ensure logs and swallows the error
    with pytest.raises(ProviderError) as caught:
        await greeting  # the Speaker gets it (and apologises, or plays nothing, as for any phrase)
    assert caught.value.kind == "quota"
    assert clips.get("Hello.") is None
    voice.fail.clear()
    await clips.ensure(["Hello."])
    assert clips.get("Hello.") == b"Hello.!"
    assert voice.requests == ["Hello.", "Hello."]


async def test_other_texts_and_other_voices_go_to_the_voice_uncached() -> None:
    voice = SlowVoice()
    voice.release.set()
    clips = ClipCache(voice)
    assert await play(clips, "An answer.") == b"An answer.!"
    assert await play(clips, "An answer.") == b"An answer.!"
    assert voice.requests == ["An answer.", "An answer."]
    assert clips.get("An answer.") is None
