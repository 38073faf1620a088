"""End to end: provider faults the bot must ride out (the ones ``test_faults.py`` does not cover).

Rules:
- Each test is one whole call on the bench: the bot's real ``openai`` and ``google-cloud-texttospeech``
  SDKs over 127.0.0.1 against the emulators, with the fault scripted in an emulator. Nothing of the bot is
  patched; the STT test shortens the bot's STT deadline through its setting (``STT_TIMEOUT_S``), as a
  deployment would.
- Every test checks the three promises: nothing is lost (the call's recording is finalized and reads
  back), the caller hears something sensible (what was said, then the apology, or the whole answer),
  and the next turn is answered.
"""

from __future__ import annotations

import dataclasses
import json

import grpc

from bot.sim.rig import bench
from bot.sim.store_line import store_line
from bot.tools.registry import MAX_RESULT_CHARS, Tool
from emulators.openai_script import Reply, ScriptedToolCall, TranscriptionReply, echo_responder
from emulators.tts_server import TtsFault
from tests.support.heard import (
    APOLOGY,
    GREETING,
    SALE,
    SALE_BREAKS_AFTER,
    SALE_HEARD,
    SALE_KEPT,
    caller_speech_ends,
    echo_bench,
    greeted_call,
    heard,
    said,
)
from tests.support.phone import ask, finished_call
from tests.support.recordings import assert_finalized, recording_of

TRUNCATION_MARKER = "...(truncated)"  # what bot.tools.registry appends to a cut result


# ---- language model: an event that is not JSON --------------------------------------------------------


async def test_llm_event_that_is_not_json_keeps_what_was_said_apologises_and_history_stays_valid() -> None:
    async with echo_bench() as b:
        async with greeted_call(b) as call:
            b.openai.replies.extend(
                [
                    # Valid JSON that is not a chunk: skipped, the whole answer is said.
                    Reply(text="We open at nine.", garbage_after_chunks=2, garbage="[1, 2]"),
                    Reply(text=SALE, garbage_after_chunks=SALE_BREAKS_AFTER),  # "{not json": the SDK raises
                ]
            )
            await ask(call, "Opening hours?")
            await ask(call, "Any deals?")
            await ask(call, "Again please?")
            await call.hang_up()
        bot_call = await finished_call(b)
        recording = recording_of(b, call.call_sid)
    assert heard(call, bot_call) == [
        GREETING,
        "We open at nine.",
        *SALE_HEARD,
        APOLOGY,
        *said("Again please?"),
    ]
    assert [t.error for t in bot_call.turns] == [None, "openai-chat:bad_chunk", None]
    # The request after the fault carries what the caller heard and was accepted (the emulator checks it).
    after = b.openai.chat_requests[-1].messages
    assert [m["role"] for m in after[-5:]] == ["user", "assistant", "user", "assistant", "user"]
    assert after[-4]["content"] == "We open at nine."
    assert after[-2]["content"] == SALE_KEPT
    assert_finalized(recording, turns=3)
    assert [t["error"] for t in recording.events_of("turn")] == [None, "openai-chat:bad_chunk", None]


# ---- text to speech: a stream that ends early without an error -----------------------------------------


async def test_tts_stream_ended_early_plays_what_arrived_and_the_call_goes_on() -> None:
    """The decision: a stream that ends OK is the phrase's end. The bot cannot tell a short phrase from a
    cut one, and waiting or re-synthesizing would leave the caller in silence; so it plays what arrived,
    marks the phrase, and goes on. No error, no apology, no hang."""
    question = "Paint colours?"
    async with echo_bench(settings={"tts_streaming": True}) as b:
        async with greeted_call(b) as call:
            before = b.tts.rpcs["streaming"]
            b.tts.faults.append(TtsFault(grpc.StatusCode.OK, after_chunks=2))  # 2 x 100 ms, then OK
            await ask(call, question)
            assert not b.tts.faults  # the answer's one stream took the fault
            assert b.tts.rpcs["streaming"] - before == 1  # one request for the answer's two phrases
            await ask(call, "Prices?")
            await call.hang_up()
        bot_call = await finished_call(b)
        recording = recording_of(b, call.call_sid)
    assert heard(call, bot_call) == [GREETING, *said(question), *said("Prices?")]
    assert [t.error for t in bot_call.turns] == [None, None]
    # Both phrases of the answer were on one stream (one request per answer), cut to 200 ms in all:
    # 1600 bytes at 8 kHz, every phrase still marked.
    answer_ids = bot_call.turns[0].response_ids
    sent = sum(e["bytes"] for e in recording.events_of("bot_audio") if e["response_id"] in answer_ids)
    assert sent == 1600, sent
    assert_finalized(recording, turns=2)


async def test_tts_stream_failing_mid_answer_keeps_what_was_heard_apologises_and_the_call_goes_on() -> None:
    """One request per answer: a failure after the first phrase's audio costs only the rest of it."""
    question = "Paint colours?"
    async with echo_bench(settings={"tts_streaming": True}) as b:
        async with greeted_call(b) as call:  # the apology comes from the cache; the clips taught the rate
            # "You said:" lasts 270 ms at 30 ms per character: ~3 responses of 100 ms, then the second
            # phrase's audio starts; the call fails 3 responses into it.
            b.tts.faults.append(TtsFault(grpc.StatusCode.UNAVAILABLE, after_chunks=6))
            await ask(call, question)
            assert not b.tts.faults
            await ask(call, "Prices?")
            await call.hang_up()
        bot_call = await finished_call(b)
        recording = recording_of(b, call.call_sid)
    assert heard(call, bot_call) == [GREETING, said(question)[0], APOLOGY, *said("Prices?")]
    first = bot_call.turns[0]
    assert first.error is not None and first.error.startswith("google-tts:"), first.error
    assert bot_call.turns[1].error is None
    answer_id = min(first.response_ids)
    assert [(p.text, p.state) for p in bot_call.tracker.phrases(answer_id)] == [(said(question)[0], "played")]
    assert_finalized(recording, turns=2)


# ---- speech to text: a transcription that never answers -------------------------------------------------


STT_TIMEOUT_S = 1.0  # the bot's STT deadline, shortened from its default (bot.server.settings: stt_timeout_s)


async def test_stt_timeout_is_given_up_at_the_deadline_apologised_for_and_the_next_turn_works() -> None:
    async with bench(
        responder=echo_responder, greeting=GREETING, settings={"stt_timeout_s": STT_TIMEOUT_S}
    ) as b:
        async with greeted_call(b) as call:
            b.openai.transcription_replies.append(TranscriptionReply(delay_s=60.0))  # hangs past the deadline
            first_audio = await ask(call, "Where exactly?")
            await ask(call, "Which street?")
            await call.hang_up()
        bot_call = await finished_call(b)
        recording = recording_of(b, call.call_sid)
    turn = bot_call.turns[0]
    assert turn.error == "openai-stt:timeout"
    hung = b.openai.transcription_requests[0]
    assert hung["text"] is None  # never answered
    # One request for the failed turn: the deadline covers the SDK's retries, so no second wait.
    assert [r["text"] for r in b.openai.transcription_requests[1:]] == ["Which street?"]
    # The bot gave up at its deadline (bot clock) and the apology followed within 2 s of it.
    assert turn.first_audio_at is not None
    assert STT_TIMEOUT_S - 0.1 <= turn.first_audio_at - hung["received_at"] <= STT_TIMEOUT_S + 2.0
    # The caller's side: from the endpointer firing to the first sound, no more than deadline + 2 s.
    endpointer_fired = caller_speech_ends(call)[0] + bot_call.line.endpointing.end_silence_ms / 1000
    assert first_audio - endpointer_fired <= STT_TIMEOUT_S + 2.0
    answers = heard(call, bot_call)[1:]
    # The silence filler (1.2 s after the caller finished) may come first on a slow machine.
    assert answers in (
        [APOLOGY, *said("Which street?")],
        [bot_call.line.silence_filler_text, APOLOGY, *said("Which street?")],
    ), answers
    # Nothing was understood in the failed turn: the model only ever saw the second question.
    assert [m["content"] for m in bot_call.conversation.messages if m["role"] == "user"] == ["Which street?"]
    assert_finalized(recording, turns=2)


# ---- tools: a result far too big for the prompt ---------------------------------------------------------


async def export_catalog() -> str:
    return "x" * 1_000_000  # 1 MB


CATALOG_TOOL = Tool(
    name="export_catalog",
    description="Export the whole product catalog.",
    parameters={"type": "object", "properties": {}},
    handler=export_catalog,
)


async def test_huge_tool_result_is_cut_before_it_reaches_the_model_and_the_answer_is_heard() -> None:
    line = store_line()
    line = dataclasses.replace(line, tools=(*line.tools, CATALOG_TOOL))
    async with echo_bench(line=line) as b:
        async with greeted_call(b) as call:
            b.openai.replies.extend(
                [
                    Reply(tool_calls=[ScriptedToolCall("export_catalog", {}, call_id="call_catalog")]),
                    Reply(text="The catalog is ready."),
                ]
            )
            await ask(call, "Send the catalog?")
            await ask(call, "Anything else?")
            await call.hang_up()
        bot_call = await finished_call(b)
        recording = recording_of(b, call.call_sid)
    assert heard(call, bot_call) == [GREETING, "The catalog is ready.", *said("Anything else?")]
    first, follow_up, last = b.openai.chat_requests
    assert follow_up.is_follow_up and not first.is_follow_up
    result = follow_up.tool_results["call_catalog"]
    assert result == "x" * MAX_RESULT_CHARS + TRUNCATION_MARKER
    assert len(json.dumps(follow_up.body)) < 4 * MAX_RESULT_CHARS  # the request as sent stayed small
    # Later requests carry the truncated result too: history never held the megabyte.
    assert last.messages[-3]["content"] == result
    assert [t.error for t in bot_call.turns] == [None, None]
    assert_finalized(recording, turns=2)
    recorded = recording.events_of("turn")[0]["llm"][0]  # the round whose tool ran
    assert recorded["tool_results"] == [result]  # the recording did not keep the megabyte either
