"""``ClipCache``: one synthesis per text however many ask at once; failures are forgotten; the cache is
the line's ``TextToSpeech`` (a known clip plays from it, any other text goes to the voice)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from bot.providers.clips import STAND_IN_RETRY_S, ClipCache
from bot.providers.tts.fallback import FallbackVoice
from bot.providers.tts.protocol import TextToSpeech, VoiceOptions
from media.errors import ProviderError


class SlowVoice(TextToSpeech):
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


async def test_a_clip_the_fallback_spoke_is_a_stand_in_asked_of_the_primary_a_minute_later() -> None:
    now = [0.0]
    primary, fallback = SlowVoice(), SlowVoice()
    primary.fail.add("Hello.")  # Google's quota is used up
    for voice in (primary, fallback):
        voice.release.set()
    clips = ClipCache(FallbackVoice(primary, fallback, fallback_name="piper"), clock=lambda: now[0])
    await clips.ensure(["Hello."])
    assert clips.get("Hello.") == b"Hello.!" and fallback.requests == ["Hello."]  # it plays meanwhile
    now[0] = STAND_IN_RETRY_S - 1
    await clips.ensure(["Hello."])
    assert primary.requests == ["Hello."]  # not asked again within the minute
    now[0] = STAND_IN_RETRY_S + 1
    await clips.ensure(["Hello."])  # still refused: the fallback speaks it again, kept as a stand-in
    assert primary.requests == ["Hello.", "Hello."] and len(fallback.requests) == 2
    primary.fail.clear()
    now[0] = 2 * STAND_IN_RETRY_S + 2
    await clips.ensure(["Hello."])
    assert len(primary.requests) == 3 and len(fallback.requests) == 2
    now[0] = 10 * STAND_IN_RETRY_S
    await clips.ensure(["Hello."])
    assert len(primary.requests) == 3  # the primary's clip is kept for good
