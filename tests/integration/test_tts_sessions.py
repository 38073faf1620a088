"""Google per-answer sessions (``GoogleTextToSpeech.open_session``) against the TTS emulator, real SDK.

Checked here: one streaming call carries every phrase of an answer, asked as headerless PCM at 24 kHz
and delivered as 8 kHz mu-law per phrase, in order, each phrase's audio ending up to the margin late;
the call is released on ``cancel``; a session idle for ``idle_s`` ends its input before the service's
5 s abort; a failure mid-answer fails the unfinished phrases only; voices other than Chirp 3 HD (and
streaming off) have no sessions and synthesize unary.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import grpc
import pytest

from bot.providers.tts.google import GoogleTextToSpeech, GoogleVoice
from bot.providers.tts.google_stream import GoogleSession, is_streaming_voice
from bot.providers.tts.protocol import VoiceOptions
from emulators.tts_server import TtsEmulator, TtsFault, synthetic_speech_pcm16
from media.errors import ProviderError
from media.splitter import MARGIN

MS_PER_CHAR = 55.0  # the emulator's default
TEXTS = ["Hello there, welcome to the paint shop.", "We sell paint.", "And brushes, of course!"]


@pytest.fixture
async def emulator() -> AsyncIterator[TtsEmulator]:
    async with TtsEmulator(ms_per_char=MS_PER_CHAR) as emu:
        yield emu


@pytest.fixture
async def google(emulator: TtsEmulator) -> AsyncIterator[GoogleTextToSpeech]:
    tts = GoogleTextToSpeech.for_endpoint(emulator.address, GoogleVoice(streaming=True))
    yield tts
    await tts.aclose()


def ulaw_len(text: str) -> int:
    return len(synthetic_speech_pcm16(text, 8000, MS_PER_CHAR)) // 2


async def speak(session: GoogleSession, texts: list[str]) -> list[bytes]:
    audio = [session.push(text) for text in texts]
    session.end()
    return [b"".join([chunk async for chunk in phrase]) for phrase in audio]


async def test_one_streaming_call_per_answer_audio_per_phrase_in_order(
    google: GoogleTextToSpeech, emulator: TtsEmulator
) -> None:
    for _ in range(2):  # the first answer teaches the rate; the second is split with it
        session = google.open_session()
        assert session is not None
        phrases = await speak(session, TEXTS)
    assert emulator.rpcs == {"streaming": 2}
    assert [r["text"] for r in emulator.synth_requests] == TEXTS * 2
    assert {(r["encoding"], r["sample_rate"]) for r in emulator.synth_requests} == {("PCM", 24000)}
    truth = [ulaw_len(t) for t in TEXTS]
    assert abs(sum(map(len, phrases)) - sum(truth)) <= 2  # resampled 24 -> 8 kHz, nothing lost
    ends = [sum(map(len, phrases[: k + 1])) for k in range(len(TEXTS) - 1)]
    for k, end in enumerate(ends):
        true_end = sum(truth[: k + 1])
        assert true_end - 2 <= end <= true_end + MARGIN * truth[k] + 2, (k, end, true_end)
    assert not any(p.startswith(b"RIFF") for p in phrases)


async def test_audio_of_a_phrase_comes_before_the_answer_is_over(google: GoogleTextToSpeech) -> None:
    session = google.open_session()
    assert session is not None
    await speak(session, TEXTS)  # the rate is learned (the prior's 65 ms/char would give phrase 1 it all)
    session = google.open_session()
    assert session is not None
    first = session.push(TEXTS[0])
    chunk = await asyncio.wait_for(anext(first), 5)  # no end() yet: the answer is still being written
    assert chunk
    second = session.push(TEXTS[1])
    session.end()
    rest = b"".join([c async for c in first])
    assert len(chunk + rest) >= ulaw_len(TEXTS[0]) - 2
    assert [c async for c in second]


async def test_cancel_releases_the_call_and_ends_every_phrase(
    google: GoogleTextToSpeech, emulator: TtsEmulator
) -> None:
    emulator.first_byte_delay_s = 2.0
    session = google.open_session()
    assert session is not None
    phrases = [session.push(t) for t in TEXTS]
    await asyncio.sleep(0.1)
    session.cancel()
    assert not session.accepting
    for phrase in phrases:
        assert [c async for c in phrase] == []
    await asyncio.sleep(0.1)
    assert session._task.cancelled()


async def test_an_idle_session_ends_its_input_before_the_service_would_abort(
    google: GoogleTextToSpeech, emulator: TtsEmulator
) -> None:
    emulator.stream_idle_s = 0.6
    session = google.open_session()
    assert session is not None
    session._idle_s = 0.3  # the real pair is 4 s (ours) under 5 s (the service's)
    phrase = session.push(TEXTS[1])
    audio = b"".join([c async for c in phrase])  # ends once the input has ended and the call is over
    assert len(audio) >= ulaw_len(TEXTS[1]) - 2
    assert not session.accepting
    await asyncio.sleep(0.5)
    assert emulator.rpcs == {"streaming": 1}


async def test_a_call_failing_mid_answer_fails_only_the_unfinished_phrases(
    google: GoogleTextToSpeech, emulator: TtsEmulator
) -> None:
    session = google.open_session()
    assert session is not None
    await speak(session, TEXTS)  # learns the rate, so the first phrase ends where it should
    # ~100 ms responses: the first phrase lasts ~2.1 s (+15% margin), so it is complete after 30.
    emulator.faults.append(TtsFault(grpc.StatusCode.UNAVAILABLE, after_chunks=30))
    session = google.open_session()
    assert session is not None
    first, second = session.push(TEXTS[0]), session.push(TEXTS[1])
    assert len(b"".join([c async for c in first])) >= ulaw_len(TEXTS[0])
    with pytest.raises(ProviderError) as info:
        async for _ in second:
            pass
    assert info.value.kind == "unavailable"
    assert not session.accepting
    session.cancel()


async def test_unavailable_before_any_audio_is_tried_again_with_every_phrase(
    google: GoogleTextToSpeech, emulator: TtsEmulator
) -> None:
    emulator.faults.append(TtsFault(grpc.StatusCode.UNAVAILABLE))
    session = google.open_session()
    assert session is not None
    phrases = await speak(session, TEXTS)
    assert emulator.rpcs == {"streaming": 2}
    assert [r["text"] for r in emulator.synth_requests][-3:] == TEXTS  # all of them, on the second call
    assert sum(map(len, phrases)) >= sum(ulaw_len(t) for t in TEXTS) - 2

    emulator.faults.extend([TtsFault(grpc.StatusCode.UNAVAILABLE)] * 100)  # more than the 1 s budget
    session = google.open_session()
    assert session is not None
    with pytest.raises(ProviderError) as info:
        await speak(session, TEXTS)
    # "refused": on a busy machine every abort can race the client's writes (grpc.aio's own INTERNAL)
    assert info.value.kind in ("unavailable", "refused")
    assert 2 < emulator.rpcs["streaming"] < 100


async def test_no_progress_is_a_timeout(emulator: TtsEmulator) -> None:
    emulator.first_byte_delay_s = 3.0
    client = GoogleTextToSpeech.for_endpoint(emulator.address)._client
    google = GoogleTextToSpeech(client, GoogleVoice(streaming=True), timeout_s=0.3)
    session = google.open_session()
    assert session is not None
    with pytest.raises(ProviderError) as info:
        async for _ in session.push("Hello"):
            pass
    assert info.value.kind == "timeout"
    await google.aclose()


async def test_voices_that_cannot_stream_have_no_sessions_and_synthesize_unary(
    google: GoogleTextToSpeech, emulator: TtsEmulator
) -> None:
    assert is_streaming_voice("en-US-Chirp3-HD-Aoede") and not is_streaming_voice("en-US-Neural2-C")
    neural = VoiceOptions(language="en-US", name="en-US-Neural2-C")
    assert google.open_session(neural) is None
    assert b"".join([c async for c in google.synthesize("Hello.", neural)])
    off = GoogleTextToSpeech(google._client, GoogleVoice(streaming=False))
    assert off.open_session() is None
    assert emulator.rpcs == {"unary": 1}


async def test_a_fixed_line_is_a_session_of_one_phrase(
    google: GoogleTextToSpeech, emulator: TtsEmulator
) -> None:
    audio = b"".join([c async for c in google.synthesize("Goodbye!")])
    assert abs(len(audio) - ulaw_len("Goodbye!")) <= 2
    assert emulator.rpcs == {"streaming": 1}


async def test_a_session_the_quota_refuses_is_spoken_phrase_by_phrase_by_the_fallback() -> None:
    """Per-answer sessions under ``FallbackVoice`` (TTS_FALLBACK): Google refuses the streaming call with
    RESOURCE_EXHAUSTED (Chirp3RequestsPerMinutePerProject used up); the call is retried for QUOTA_RETRY_S,
    then each pushed phrase is spoken whole by the fallback voice (a Neural2 voice, its own quota),
    counted once per phrase."""
    from bot.providers.tts.fallback import FallbackVoice
    from emulators.tts_quota import TtsQuota

    quota = TtsQuota(chirp3_per_minute=0)
    async with TtsEmulator(ms_per_char=MS_PER_CHAR, quota=quota) as emu:
        primary = GoogleTextToSpeech.for_endpoint(emu.address, GoogleVoice(streaming=True))
        fallback = GoogleTextToSpeech.for_endpoint(
            emu.address, GoogleVoice(language_code="en-US", name="en-US-Neural2-C")
        )
        counted: list[str] = []
        voice = FallbackVoice(primary, fallback, fallback_name="en-US-Neural2-C", on_fallback=counted.append)
        try:
            session = voice.open_session()
            assert session is not None
            audio = [session.push(text) for text in TEXTS]
            session.end()
            phrases = [b"".join([chunk async for chunk in phrase]) for phrase in audio]
            assert not session.accepting  # the refused call takes no more text: the next phrase opens another
        finally:
            await primary.aclose()
            await fallback.aclose()
    assert [len(p) for p in phrases] == [ulaw_len(t) for t in TEXTS]  # every phrase whole
    # "refused" when every try's quota refusal reached grpc.aio as its own INTERNAL (the write race:
    # bot.providers.tts.google_stream); the fallback speaks either way.
    assert counted in (["quota"] * len(TEXTS), ["refused"] * len(TEXTS))
    assert quota.refused >= 2 and quota.accepted["other"] == len(TEXTS)  # the stream was retried first
    assert [r["voice_name"] for r in emu.synth_requests] == ["en-US-Neural2-C"] * len(TEXTS)
