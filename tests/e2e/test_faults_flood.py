"""End to end: caller audio as an attack: faster than Twilio's pace, stamped far ahead, cut again and again.

Rules:
- A hand-driven Media Streams socket (``RawMediaSocket``) on 127.0.0.1; nothing of the bot is patched. Every
  attack is bounded: at most 30 s of audio or 30 frames.
- Audio more than 2 s ahead of the call's clock is dropped (counted as ``audio_ahead`` junk, logged once),
  so neither the endpointer nor the recording sees it; honest audio after it is answered as usual.
- Audio carried from turns cut before their transcript is capped at the utterance limit, so one STT
  upload stays bounded however often the caller cuts in.
- A frame's timestamp never places it further than the call's clock allows: 30 frames stamped 599 s apart
  made a 144 MB caller.ulaw before.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import replace

from bot.core.pacing import LEAD_S
from bot.sim.rig import Bench
from bot.sim.store_line import store_line
from emulators import twilio_wire as wire
from media.codec import pcm16_to_ulaw
from tests.support.heard import echo_bench
from tests.support.phone import finished_call
from tests.support.raw_media import RawMediaSocket
from tests.support.recordings import assert_finalized, recording_of

FLOOD_SID = "CA" + "f" * 32
STAMPED_SID = "CA" + "e" * 32


def _transcripts(b: Bench) -> list[str]:
    return [turn.transcript for call in b.active_calls for turn in call.turns]


async def _hang_up(raw: RawMediaSocket, b: Bench) -> None:
    await raw.stop()
    with contextlib.suppress(ConnectionError):
        async with asyncio.timeout(20):
            while await raw.reader.read(65536):
                pass
    raw.abort()


@contextlib.asynccontextmanager
async def _raw_call(b: Bench, call_sid: str) -> AsyncIterator[RawMediaSocket]:
    """A media socket driven by hand to the warmed-up bench, started; hung up on the way out."""
    await asyncio.wait_for(b.server.warming, 10)
    raw = await RawMediaSocket.connect(b, call_sid)
    try:
        await raw.start()
        yield raw
    finally:
        await _hang_up(raw, b)


async def test_audio_flooded_faster_than_real_time_is_dropped_and_the_call_goes_on() -> None:
    async with echo_bench() as b:
        async with _raw_call(b, FLOOD_SID) as raw:
            loop = asyncio.get_running_loop()
            began = loop.time()
            flood = pcm16_to_ulaw(b.codebook.speak("Tell me everything. " * 31))[: 30 * 8000]
            await raw.send_audio(flood, paced=False)  # 30 s of speech in well under a second
            flood_s = loop.time() - began
            # Then Twilio's pace again, once the call's clock has caught up with the flood: the speech the
            # bot kept ends, and an honest question after it is answered.
            await asyncio.sleep(LEAD_S + 0.5)
            caught_up = loop.time() - began  # the bot had read the whole flood by then, at the latest
            raw.resume_pace()
            await raw.send_audio(b"\xff" * 8000)
            await raw.say(b.codebook, "Still there?")
            async with asyncio.timeout(20):
                while "Still there?" not in _transcripts(b):  # noqa: ASYNC110 (no event to wait on)
                    await asyncio.sleep(0.05)
        bot_call = await finished_call(b)
        recording = recording_of(b, FLOOD_SID)
    dropped = bot_call.invalid["audio_ahead"]
    # 1500 frames (30 s) in well under a few seconds: only the clock's worth plus the lead was kept
    assert flood_s < 10 and dropped >= 1500 - (caught_up + LEAD_S) * 50 - 1, (flood_s, caught_up, dropped)
    [logged] = [e for e in recording.events_of("invalid_frame") if e["kind"] == "audio_ahead"]  # once
    assert recording.events_of("call_ended")[0]["invalid"] == {"audio_ahead": dropped}
    # the recording holds what was kept, never more than the call's clock allows (was all 30 s of the flood)
    caller_bytes = len(recording.caller_ulaw())
    # (frames stamped ahead are placed at the clock's bound; a few arriving together are appended after it)
    assert caller_bytes <= (recording.meta["duration_s"] + LEAD_S) * 8000 + 10 * 160, caller_bytes
    assert logged["detail"] == "more than 2 s ahead of the clock"
    assert bot_call.turns[-1].transcript == "Still there?" and bot_call.turns[-1].said
    print(f"flood: {dropped} of 1500 frames dropped, caller.ulaw {caller_bytes} bytes")
    assert_finalized(recording)


async def test_frames_stamped_far_ahead_do_not_grow_the_recording() -> None:
    async with echo_bench() as b:
        async with _raw_call(b, STAMPED_SID) as raw:
            for i in range(30):  # each 599 s after the previous one: under the 600 s jump rule
                await raw.send_text(
                    wire.media_message(
                        i + 2,
                        stream_sid=raw.stream_sid,
                        chunk=i + 1,
                        timestamp_ms=(i + 1) * 599_000,
                        ulaw=b"\xff" * 160,
                    )
                )
                await asyncio.sleep(0.02)  # Twilio's pace: only the timestamps lie
        bot_call = await finished_call(b)
        recording = recording_of(b, STAMPED_SID)
    size = len(recording.caller_ulaw())
    # silence up to the call's clock + the lead at most, then the 30 frames: ~21 KB (was 143.8 MB)
    assert size <= (recording.meta["duration_s"] + 2.0) * 8000 + 30 * 160, size
    assert recording.meta["caller_audio_ahead"] >= 29
    assert len(recording.events_of("caller_audio_ahead")) == 1
    assert bot_call.invalid.get("audio_ahead", 0) == 0  # paced: nothing dropped, only placed
    assert_finalized(recording)


async def test_turns_cut_again_and_again_carry_at_most_the_utterance_limit_to_stt() -> None:
    """A caller who keeps cutting in while STT is slow: each cut turn's audio went, whole, into the next
    turn's STT upload, everything carried before it included (one upload of 5.4 MB seen)."""
    line = store_line()
    endpointing = replace(line.endpointing, max_utterance_ms=1000)
    async with echo_bench(
        greeting="",
        stt_delay_s=60.0,  # no transcript before the caller speaks again: every turn is cut before it
        endpointing=endpointing,
    ) as b:
        async with await b.phone.dial() as call:
            for _ in range(6):
                await call.say("Hello hello hello hello hello")  # five words: over the 1 s limit
                await asyncio.sleep(1.0)
            uploads = [r.get("file_bytes") for r in b.openai.transcription_requests]
            await call.hang_up()
        await finished_call(b)
    sizes = [size for size in uploads if size is not None]
    assert len(sizes) >= 6, sizes
    # at most what is carried (the limit) plus one utterance (the limit, its pre-roll and end silence)
    bound = 2 * (1000 + endpointing.pre_roll_ms + endpointing.end_silence_ms) * 16 + 1024
    print(f"STT uploads (bytes): {sizes}")
    assert max(sizes) <= bound, (sizes, bound)
