"""Every call is recorded: a whole call through the real stack, read back with ``Recording.load``."""

from __future__ import annotations

import asyncio
import io
import wave
from pathlib import Path

from bot.recording import Recording
from bot.sim.rig import AUTH_TOKEN, OPENAI_KEY, Bench, bench
from bot.sim.store_line import store_line
from tests.support.phone import a_call_ended, ask_after_greeting

BYTES_PER_S = 8000


def only_recording(b: Bench) -> Recording:
    folders = [p.parent for p in Path(b.settings.recordings_dir).glob("*/*/meta.json")]
    assert len(folders) == 1, folders
    return Recording.load(folders[0])


async def test_a_call_is_recorded_with_both_sides_and_what_was_said() -> None:
    async with bench(stt_delay_s=0.05, llm_first_token_s=0.05) as b:
        async with await b.phone.dial() as call:
            await ask_after_greeting(call, "What are your opening hours on Saturday?")
            await call.hang_up()
        await a_call_ended(b)
        rec = only_recording(b)
        files = {p.name: p.read_bytes() for p in rec.path.iterdir()}

    assert rec.complete and not rec.torn_tail and rec.skipped == (), rec.skipped
    assert rec.meta["call_sid"] == call.call_sid and rec.meta["flow"] == "store"
    assert rec.meta["ended_by"] == "caller"
    # The longest the call could last (the line's max_call_s + 60 s): bounds it if it is killed mid-call.
    assert rec.meta["max_duration_s"] == store_line().timeouts.max_call_s + 60
    turns = rec.events_of("turn")
    assert [t["transcript"] for t in turns] == ["What are your opening hours on Saturday?"]
    rounds = turns[0]["llm"]
    assert rounds[0]["tool_calls"][0]["name"] == "check_hours"  # each model request and its answer
    assert "10 am to 4 pm" in rounds[1]["text"]
    assert "10 am to 4 pm" in " ".join(turns[0]["said"].values())
    echoed = {e["mark"] for e in rec.events_of("mark_echoed")}
    assert echoed and echoed <= {e["mark"] for e in rec.events_of("mark_sent")}
    # Both sides, on one timeline: the caller as sent, the bot as the caller heard it.
    caller, phone_caller = rec.caller_ulaw(), call.caller_sent_ulaw().rstrip(b"\xff")
    assert abs(len(caller) - len(phone_caller)) <= BYTES_PER_S // 2
    played = rec.bot_played_ulaw()
    heard = sum(1 for byte in call.bot_played_ulaw() if byte != 0xFF)
    assert abs(sum(1 for byte in played if byte != 0xFF) - heard) <= BYTES_PER_S // 2
    with wave.open(io.BytesIO(rec.stereo_wav())) as wav:
        assert (wav.getnchannels(), wav.getframerate()) == (2, 8000)
        assert wav.getnframes() >= len(caller)
    for data in files.values():  # secrets never reach a recording
        assert AUTH_TOKEN.encode() not in data and OPENAI_KEY.encode() not in data


async def test_a_barge_in_is_recorded_and_the_cut_audio_was_not_played() -> None:
    async with bench(stt_delay_s=0.05, llm_first_token_s=0.05) as b:
        async with await b.phone.dial() as call:
            await call.wait_for_bot_audio(after=0.0, timeout=10)
            await call.wait_for_bot_silence(quiet=0.6, timeout=15)
            await call.say("What can you help me with?")
            await call.wait_for_bot_audio(timeout=10)
            await call.silence(0.8)
            await call.say("Are you open on Sunday?")  # over the long answer
            await call.wait_for_bot_audio(timeout=10)
            await call.wait_for_bot_silence(quiet=0.6, timeout=15)
            await call.hang_up()
        await a_call_ended(b)
        rec = only_recording(b)

    assert len(rec.events_of("clear")) == 1 and len(rec.events_of("barge_in")) == 1
    assert len(rec.bot_played_ulaw().rstrip(b"\xff")) <= len(rec.caller_ulaw()) + BYTES_PER_S
    played = sum(len(s.audio) for s in rec.bot_played_segments())
    assert played < len(rec.bot_sent_ulaw())  # what the clear dropped was sent, never played
    assert [t["barge_in"] for t in rec.events_of("turn")] == [True, False]


CALLER = "+15557654321"
PIN = "4271"


async def _call_with_keys(b: Bench) -> Recording:
    async with await b.phone.dial(from_=CALLER) as call:
        await call.wait_for_bot_silence(quiet=0.3, timeout=10)
        for key in PIN:
            await call.send_dtmf(key)
        await asyncio.sleep(0.3)
        await call.hang_up()
    await a_call_ended(b)
    return only_recording(b)


async def test_the_caller_s_number_and_keys_are_redacted_by_default() -> None:
    """The attack: whoever reads recordings (the inspector, a bucket) learns callers' numbers and PINs."""
    async with bench(stt_delay_s=0.05, llm_first_token_s=0.05) as b:
        rec = await _call_with_keys(b)
        text = b"".join((rec.path / name).read_bytes() for name in ("meta.json", "events.jsonl"))
    keys = [e["digit"] for e in rec.events_of("dtmf")]
    assert keys == ["[redacted]"] * len(PIN)  # that keys were pressed, and when, is kept
    assert rec.meta["parameters"]["from"] == "[redacted]"
    assert rec.meta["parameters"]["to"] == "+15550100"  # routes the flow: replay needs it
    assert CALLER.encode() not in text and CALLER[2:].encode() not in text


async def test_keeping_the_caller_s_number_and_keys_is_an_opt_in() -> None:
    async with bench(
        stt_delay_s=0.05,
        llm_first_token_s=0.05,
        settings={"recording_keep_caller_number_and_keys": True},
    ) as b:
        rec = await _call_with_keys(b)
    assert "".join(e["digit"] for e in rec.events_of("dtmf")) == PIN
    assert rec.meta["parameters"]["from"] == CALLER
