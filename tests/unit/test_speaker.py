"""Speaker: phrases in, mu-law media messages of up to 100 ms and marks out, in order, with lookahead.

Rules checked here: every message is a whole number of 20 ms frames, at most ``OUT_CHUNK_BYTES``;
each phrase ends with a mark registered in the MarkTracker; phrases go out in the order said whatever
their synthesis speed; synthesis runs ahead of sending; ``clear`` drops and settles everything unheard;
a synthesis error is reported and drops the queue; pre-synthesized audio needs no TTS; ``wait_idle``
waits for the echoes.

Each phrase's fake audio is one distinct byte value, so a frame tells which phrase it belongs to.
"""

from __future__ import annotations

import asyncio

from hypothesis import given, settings
from hypothesis import strategies as st

from bot.call.speaker import LOOKAHEAD, OUT_CHUNK_BYTES
from bot.core.heard import EchoResult
from media.codec import ULAW_FRAME_BYTES, ULAW_SILENCE
from media.errors import ProviderError
from tests.support.fakes import FakeTTS
from tests.support.speaker import STREAM_SID, TIMEOUT_S, Wire, audio, eventually, make_speaker, payload


async def test_messages_are_100_ms_padded_to_20_ms_and_each_phrase_ends_with_a_registered_mark() -> None:
    tts = FakeTTS({"Hello there.": audio(1, 1250), "How can I help?": audio(2, 160)})
    wire = Wire()
    speaker, tracker = make_speaker(tts, wire)
    try:
        speaker.say("Hello there.", 1)
        speaker.say("How can I help?", 1)
        await eventually(lambda: len(wire.marks()) == 2)

        assert all(m["streamSid"] == STREAM_SID for m in wire.messages)
        assert [len(f) for f in wire.frames()] == [OUT_CHUNK_BYTES, 3 * ULAW_FRAME_BYTES, ULAW_FRAME_BYTES]
        assert wire.script() == ["audio 1", "mark", "audio 2", "mark"]
        first_phrase = b"".join(wire.frames()[:2])
        # 1250 bytes = one 800-byte message + 450 bytes padded with mu-law silence to 3 whole frames.
        assert first_phrase == audio(1, 1250) + ULAW_SILENCE * 30
        assert wire.frames()[2] == audio(2, 160)
        assert [(p.mark, p.text, p.state) for p in tracker.phrases(1)] == [
            (wire.marks()[0], "Hello there.", "pending"),
            (wire.marks()[1], "How can I help?", "pending"),
        ]
        assert speaker.speaking  # sent but not yet heard
    finally:
        await speaker.close()


async def test_phrases_go_out_in_order_even_when_a_later_one_synthesizes_faster() -> None:
    tts = FakeTTS({"slow one": audio(1, 320), "fast two": audio(2, 320), "three": audio(3, 100)})
    tts.gates["slow one"] = asyncio.Event()
    wire = Wire()
    speaker, _ = make_speaker(tts, wire)
    try:
        speaker.say("slow one", 1)
        speaker.say("fast two", 1)
        speaker.say("three", 2)
        await eventually(lambda: tts.finished == ["fast two", "three"])
        assert wire.messages == []  # nothing may overtake the first phrase
        tts.gates["slow one"].set()
        await eventually(lambda: len(wire.marks()) == 3)
        assert wire.script() == ["audio 1", "mark", "audio 2", "mark", "audio 3", "mark"]
    finally:
        await speaker.close()


async def test_the_next_phrases_are_synthesized_while_one_is_being_sent() -> None:
    texts = ["one", "two", "three", "four"]
    tts = FakeTTS({t: audio(i + 1, 400) for i, t in enumerate(texts)})
    wire = Wire()
    wire.holds[1] = asyncio.Event()  # the socket stalls on phrase one's first frame
    speaker, _ = make_speaker(tts, wire)
    try:
        for text in texts:
            speaker.say(text, 1)
        await eventually(wire.blocked.is_set)
        # Phrase one is not fully sent, yet the next LOOKAHEAD phrases are already synthesized.
        await eventually(lambda: tts.finished == texts[: LOOKAHEAD + 1])
        assert len(wire.frames()) == 1
        assert "four" not in tts.started  # lookahead is bounded
        wire.holds[1].set()
        await eventually(lambda: len(wire.marks()) == 4)
        assert wire.script() == ["audio 1", "mark", "audio 2", "mark", "audio 3", "mark", "audio 4", "mark"]
        assert tts.started == texts
    finally:
        await speaker.close()


async def test_clear_drops_queued_phrases_sends_clear_and_settles_pending_marks() -> None:
    tts = FakeTTS(
        {"played": audio(1, 160), "cut": audio(2, 480), "queued": audio(3, 160), "after": audio(4, 160)}
    )
    wire = Wire()
    wire.holds[2] = asyncio.Event()  # the socket stalls inside phrase "cut"
    speaker, tracker = make_speaker(tts, wire)
    try:
        speaker.say("played", 1)
        speaker.say("cut", 2)
        speaker.say("queued", 3)
        await eventually(wire.blocked.is_set)
        assert speaker.queued(2) and speaker.queued(3)

        cut = await speaker.clear()

        assert cut == {1, 2, 3}  # 1: sent but not echoed; 2: mid-send; 3: queued
        assert wire.messages[-1] == {"event": "clear", "streamSid": STREAM_SID}
        assert tracker.pending() == 0
        assert tracker.unheard_text(1) == "played"
        assert not speaker.queued(2) and not speaker.queued(3)
        # Twilio echoes the cleared mark; that is not "played".
        assert speaker.on_mark(wire.marks()[0]) is EchoResult.CLEARED

        wire.holds[2].set()  # the stalled frame completes; the rest of "cut" must not follow
        speaker.say("after", 4)
        await eventually(lambda: len(wire.marks()) == 2)
        clear_at = wire.script().index("clear")
        assert wire.script()[clear_at:] == ["clear", "audio 4", "mark"]
        assert "audio 3" not in wire.script()
        assert [p.text for p in tracker.phrases(4)] == ["after"]
    finally:
        await speaker.close()


async def test_clear_with_nothing_playing_still_sends_clear() -> None:
    wire = Wire()
    speaker, _ = make_speaker(FakeTTS({}), wire)
    try:
        assert await speaker.clear() == set()
        assert wire.script() == ["clear"]
        async with asyncio.timeout(TIMEOUT_S):
            await speaker.wait_idle()
    finally:
        await speaker.close()


async def test_speaker_still_speaks_after_a_clear_during_synthesis() -> None:
    # Regression: the sender waited forever on the audio of a phrase whose synthesis clear() had
    # cancelled, so the bot stayed mute for the rest of the call.
    tts = FakeTTS({"slow": audio(1, 160), "next turn": audio(2, 160)})
    tts.gates["slow"] = asyncio.Event()  # synthesis still in progress at barge-in
    wire = Wire()
    speaker, tracker = make_speaker(tts, wire)
    try:
        speaker.say("slow", 1)
        await eventually(lambda: tts.started == ["slow"])
        assert await speaker.clear() == {1}
        await eventually(lambda: tts.cancelled == ["slow"])
        speaker.say("next turn", 2)
        await eventually(lambda: len(wire.marks()) == 1)
        assert wire.script() == ["clear", "audio 2", "mark"]
        assert speaker.on_mark(wire.marks()[0]) is EchoResult.PLAYED
        async with asyncio.timeout(TIMEOUT_S):
            await speaker.wait_idle()
        assert not speaker.speaking
        assert tracker.heard_text(2) == "next turn"
    finally:
        await speaker.close()


async def test_a_synthesis_error_is_reported_and_drops_the_queue() -> None:
    errors: list[tuple[int, ProviderError]] = []
    tts = FakeTTS({"fine": audio(1, 160), "broken": b"", "dropped": audio(3, 160), "later": audio(4, 160)})
    tts.errors["broken"] = ProviderError("google-tts", "unavailable")
    tts.gates["dropped"] = asyncio.Event()  # still synthesizing when the error drops it
    wire = Wire()
    speaker, tracker = make_speaker(tts, wire, on_error=lambda rid, exc: errors.append((rid, exc)))
    try:
        speaker.say("fine", 1)
        speaker.say("broken", 2)
        speaker.say("dropped", 3)
        await eventually(lambda: bool(errors))
        [(rid, error)] = errors
        assert rid == 2
        assert error.kind == "unavailable"
        assert not speaker.queued(3)
        await eventually(lambda: tts.cancelled == ["dropped"])
        assert wire.script() == ["audio 1", "mark"]
        assert [p.text for p in tracker.phrases(2)] == []  # no mark for a phrase never sent

        speaker.say("later", 4)  # the speaker keeps working after the error
        await eventually(lambda: len(wire.marks()) == 2)
        assert wire.script() == ["audio 1", "mark", "audio 4", "mark"]
    finally:
        await speaker.close()


async def test_an_unexpected_tts_exception_becomes_a_provider_error() -> None:
    errors: list[tuple[int, ProviderError]] = []
    tts = FakeTTS({"buggy": b""})
    tts.errors["buggy"] = KeyError("internal")
    wire = Wire()
    speaker, _ = make_speaker(tts, wire, on_error=lambda rid, exc: errors.append((rid, exc)))
    try:
        speaker.say("buggy", 5)
        await eventually(lambda: bool(errors))
        assert errors[0][0] == 5
        assert isinstance(errors[0][1], ProviderError)
        assert wire.messages == []
    finally:
        await speaker.close()


async def test_a_pre_synthesized_clip_needs_no_tts() -> None:
    tts = FakeTTS({})
    wire = Wire()
    speaker, tracker = make_speaker(tts, wire)
    try:
        speaker.say("One moment.", 7, audio=audio(9, 200))
        await eventually(lambda: len(wire.marks()) == 1)
        assert tts.started == []
        assert wire.frames() == [audio(9, 200) + ULAW_SILENCE * 120]
        assert [p.text for p in tracker.phrases(7)] == ["One moment."]
    finally:
        await speaker.close()


async def test_wait_idle_resolves_once_every_mark_is_echoed() -> None:
    tts = FakeTTS({"a": audio(1, 160), "b": audio(2, 160)})
    wire = Wire()
    speaker, tracker = make_speaker(tts, wire)
    try:
        speaker.say("a", 1)
        speaker.say("b", 2)
        idle = asyncio.create_task(speaker.wait_idle())
        await eventually(lambda: len(wire.marks()) == 2)
        await asyncio.sleep(0.01)
        assert not idle.done()
        assert speaker.on_mark(wire.marks()[0]) is EchoResult.PLAYED
        await asyncio.sleep(0.01)
        assert not idle.done()
        assert speaker.on_mark("r99-p99") is EchoResult.UNKNOWN
        assert speaker.on_mark(wire.marks()[1]) is EchoResult.PLAYED
        async with asyncio.timeout(TIMEOUT_S):
            await idle
        assert not speaker.speaking
        assert tracker.heard_text(1) == "a"
        assert tracker.heard_text(2) == "b"
    finally:
        await speaker.close()


async def test_on_audio_fires_once_per_response_at_its_first_frame() -> None:
    started: list[int] = []
    tts = FakeTTS({"a": audio(1, 400), "b": audio(2, 400), "c": audio(3, 10)})
    wire = Wire()
    speaker, _ = make_speaker(tts, wire, on_audio=started.append)
    try:
        speaker.say("a", 1)
        speaker.say("b", 1)
        speaker.say("c", 2)
        await eventually(lambda: len(wire.marks()) == 3)
        assert started == [1, 2]
    finally:
        await speaker.close()


@settings(max_examples=25, deadline=None)
@given(
    sizes=st.lists(st.integers(min_value=1, max_value=700), min_size=1, max_size=4),
    chunk_bytes=st.integers(min_value=1, max_value=400),
)
def test_any_audio_becomes_whole_frames_that_carry_it_exactly(sizes: list[int], chunk_bytes: int) -> None:
    async def run() -> Wire:
        tts = FakeTTS({f"p{i}": audio(i + 1, n) for i, n in enumerate(sizes)}, chunk_bytes=chunk_bytes)
        wire = Wire()
        speaker, _ = make_speaker(tts, wire)
        try:
            for i in range(len(sizes)):
                speaker.say(f"p{i}", 1)
            await eventually(lambda: len(wire.marks()) == len(sizes))
        finally:
            await speaker.close()
        return wire

    wire = asyncio.run(run())
    frames = wire.frames()
    assert all(len(f) % ULAW_FRAME_BYTES == 0 and 0 < len(f) <= OUT_CHUNK_BYTES for f in frames)
    # Split the wire at the marks: each phrase's frames hold its audio then silence padding only.
    phrase_audio: list[bytes] = []
    current = b""
    for message in wire.messages:
        if message["event"] == "media":
            current += payload(message)
        elif message["event"] == "mark":
            phrase_audio.append(current)
            current = b""
    assert len(phrase_audio) == len(sizes)
    for i, (data, n) in enumerate(zip(phrase_audio, sizes, strict=True)):
        assert data[:n] == audio(i + 1, n)
        assert data[n:] == ULAW_SILENCE * (len(data) - n)
        assert len(data) - n < ULAW_FRAME_BYTES
