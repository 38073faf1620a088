"""End to end: the call flows of issue 5 — hang-up, transfer, keypad, silence and the call-length limit.

Rules:
- Each test is one whole call on the bench (real SDKs over 127.0.0.1, the Twilio REST emulator as
  ``b.rest``) on the built-in store line with a short greeting; timeouts are shortened through
  ``LineConfig`` overrides (``timeouts=``, ``dtmf=``). Nothing of the bot is patched.
- What the caller heard is read from the phone: the bot's ``MarkTracker`` names the phrase behind every
  mark the phone received, and a phrase whose state is "played" had its audio played out at the phone.
- When a REST request reached Twilio is pinned against the phone's timeline with the emulator's
  ``on_update`` hook (it runs as a successful request arrives): it notes how many phone events existed.
- Timing asserts are orderings and loose bounds (lower bounds where the bot must wait), never latencies.
- Every test that is not about silence pushes the silence reprompt out of its way (``NO_REPROMPT``).
"""

from __future__ import annotations

import math
import time
import xml.etree.ElementTree as ET

from bot.call.call import Call
from bot.core.heard import SpokenPhrase
from bot.flows.line import DtmfConfig, EndCallConfig, TimeoutConfig, TransferConfig
from bot.sim.rig import Bench, bench
from bot.sim.store_line import store_line
from emulators.openai_script import ChatRequest, Reply, ScriptedToolCall
from emulators.phone import PhoneCall
from emulators.store_script import StoreScript
from emulators.twilio_rest import RestRequest
from media.vad import EndpointerConfig
from tests.support.phone import dial, finished_call, greeted, until
from tests.support.phone import events as _events
from tests.support.phone import last_speech_end as _last_speech_end

GREETING = "Hi, how can I help?"
LINE = store_line()
STORE = StoreScript(first_token_delay_s=0.0, chunk_delay_s=0.0)
NO_REPROMPT = TimeoutConfig(silence_reprompt_s=60.0)  # keeps reprompts out of tests about something else
SILENCE_LIMIT_S = 2.0  # README, "What it does" 7: the caller never waits in silence longer than this
QUIET_S = 0.6
GREETING_QUIET_S = 0.3  # the greeting has played out after this much silence

BYE = "Thank you, goodbye!"
ASK_PERSON = "A person, please."
KEYPAD_1001 = "(typed on the keypad: 1001)"
ORDER_1001_ANSWER = "Your order 1001, the cordless drill, is shipped, and the estimate is Thursday."
# ~7 s of speech at the bench's 30 ms per character: long enough to be cut mid-answer.
LONG_ANSWER = (
    "Sure thing, we carry hand tools and power tools and paint and everything you need for the garden. "
    "We also cut keys while you wait. We rent out carpet cleaners by the day. "
    "And there is a workshop every Saturday morning."
)


def _end_call(line_end_call: EndCallConfig | None) -> EndCallConfig:
    assert line_end_call is not None
    return line_end_call


GOODBYE = _end_call(LINE.end_call).goodbye
FRONT_DESK: TransferConfig = LINE.transfers[0]


# ---- helpers -------------------------------------------------------------------------------------------


def _note_rest_arrivals(b: Bench, call: PhoneCall) -> list[int]:
    """For each REST request answered 2xx, the number of phone events recorded when it arrived."""
    arrivals: list[int] = []

    async def on_update(request: RestRequest) -> None:
        arrivals.append(len(call.events))

    b.rest.on_update = on_update
    return arrivals


async def _say_then_hung_up_on(b: Bench, words: str) -> tuple[PhoneCall, Call, list[int]]:
    """Dial, be greeted, say ``words`` and wait until the bot closes the socket: the phone's call, the bot's
    call and the REST requests' arrivals (``_note_rest_arrivals``)."""
    call, _ = await dial(b)
    async with call:
        arrivals = _note_rest_arrivals(b, call)
        await greeted(call, quiet=GREETING_QUIET_S)
        await call.say(words)
        await call.wait_closed(timeout=15)
    return call, await finished_call(b), arrivals


async def _all_turns_done(b: Bench, turns: int, timeout_s: float = 15.0) -> None:
    """Until the live call has ``turns`` turns and every one has finished (answered, cut or failed)."""
    (live,) = b.active_calls
    await until(
        f"{turns} finished turns",
        lambda: len(live.turns) >= turns and all(t.finished for t in live.turns),
        timeout_s,
    )


def _index(call: PhoneCall, kind: str, detail: str | None = None) -> int:
    """Index in ``call.events`` of the only event of ``kind`` (and ``detail``)."""
    found = [i for i, e in enumerate(call.events) if e.kind == kind and detail in (None, e.detail)]
    assert len(found) == 1, (kind, detail, call.events)
    return found[0]


def _sent(call: PhoneCall, call_obj: Call) -> list[SpokenPhrase]:
    """Every phrase the bot sent, in the order its mark reached the phone, with its final state."""
    phrases: list[SpokenPhrase] = []
    for event in _events(call, "mark_received"):
        response_id = int(event.detail[1 : event.detail.index("-")])  # marks are named r<response>-p<n>
        phrases += [p for p in call_obj.tracker.phrases(response_id) if p.mark == event.detail]
    return phrases


def _said_once(call: PhoneCall, call_obj: Call, text: str) -> SpokenPhrase:
    """The only phrase with ``text`` the bot sent (fixed lines go out as one phrase)."""
    found = [p for p in _sent(call, call_obj) if p.text == text]
    assert len(found) == 1, (text, _sent(call, call_obj))
    return found[0]


def _echo_time(call: PhoneCall, phrase: SpokenPhrase) -> float:
    return call.events[_index(call, "mark_echoed", phrase.mark)].t


def _played_in_full(call: PhoneCall, call_obj: Call, text: str) -> SpokenPhrase:
    phrase = _said_once(call, call_obj, text)
    assert phrase.state == "played", phrase
    assert phrase.mark in call.marks_echoed
    return phrase


def _answer_played_in_full(call: PhoneCall, call_obj: Call, turn_index: int, text: str) -> SpokenPhrase:
    """The model's spoken answer of a turn is ``text`` (in one or more phrases) and every phrase of it
    played; returns its last phrase."""
    phrases = [p for rid in sorted(call_obj.turns[turn_index].said) for p in call_obj.tracker.phrases(rid)]
    assert " ".join(p.text for p in phrases) == text, phrases
    assert all(p.state == "played" and p.mark in call.marks_echoed for p in phrases), phrases
    return phrases[-1]


def _longest_silence(call: PhoneCall, start: float, end: float) -> float:
    """The longest stretch of phone time within [start, end] with no bot audio playing."""
    spans: list[tuple[float, float]] = []
    opened: float | None = None
    for event in call.events:
        if event.kind == "bot_audio_start":
            opened = event.t
        elif event.kind == "bot_audio_end" and opened is not None:
            spans.append((opened, event.t))
            opened = None
    if opened is not None:
        spans.append((opened, math.inf))
    longest, cursor = 0.0, start
    for span_start, span_end in sorted(spans):
        if span_end <= cursor:
            continue
        if span_start >= end:
            break
        longest = max(longest, span_start - cursor)
        cursor = max(cursor, span_end)
    return max(longest, end - cursor)


def _assert_hang_up_request(b: Bench, call: PhoneCall) -> None:
    (request,) = b.rest.requests
    assert request.method == "POST"
    assert request.path == f"/2010-04-01/Accounts/{b.phone.account_sid}/Calls/{call.call_sid}.json"
    assert (request.account_sid, request.call_sid) == (b.phone.account_sid, call.call_sid)
    assert request.form == {"Status": "completed"}
    assert request.authorized is True


def _assert_dial_request(request: RestRequest, b: Bench, call: PhoneCall, number: str) -> None:
    assert request.method == "POST"
    assert request.path == f"/2010-04-01/Accounts/{b.phone.account_sid}/Calls/{call.call_sid}.json"
    assert request.authorized is True
    assert list(request.form) == ["Twiml"]
    response = ET.fromstring(request.form["Twiml"])
    assert response.tag == "Response"
    (dial,) = list(response)
    assert (dial.tag, dial.text, dial.attrib, list(dial)) == ("Dial", number, {}, [])


def _closed_by_bot_after(call: PhoneCall, event_count: int) -> None:
    """The bot closed the socket, and only after the phone had recorded ``event_count`` events."""
    assert call.closed_by_bot is True
    closed = _index(call, "ws_closed")
    assert closed >= event_count, (closed, event_count, call.events)
    assert "closed by the bot" in call.events[closed].detail


# ---- 1. end_call: the goodbye in full, then REST, then the socket ------------------------------------------


async def test_goodbye_is_heard_in_full_then_one_rest_hang_up_then_the_bot_closes_the_socket() -> None:
    async with bench(responder=STORE, greeting=GREETING, timeouts=NO_REPROMPT) as b:
        call, call_obj, arrivals = await _say_then_hung_up_on(b, BYE)

    assert call.protocol_errors == []
    _assert_hang_up_request(b, call)
    (arrived,) = arrivals
    welcome = _played_in_full(call, call_obj, "You're welcome.")
    goodbye = _played_in_full(call, call_obj, GOODBYE)
    # The goodbye came after the model's words and played out (its mark echoed, then playback stopped)
    # before the hang-up request reached Twilio; then the bot closed the socket.
    goodbye_echo = _index(call, "mark_echoed", goodbye.mark)
    assert _index(call, "mark_echoed", welcome.mark) < goodbye_echo < arrived
    assert any(e.kind == "bot_audio_end" for e in call.events[goodbye_echo:arrived])
    assert not any(e.kind == "bot_audio_start" for e in call.events[goodbye_echo:])
    _closed_by_bot_after(call, arrived)
    assert _events(call, "clear_received") == []
    assert _longest_silence(call, _last_speech_end(call), _echo_time(call, goodbye)) < SILENCE_LIMIT_S
    assert call_obj.ending == "end_call"
    assert call_obj.conversation.messages[-1] == {"role": "assistant", "content": GOODBYE}


# ---- 2. the goodbye is not interruptible ----------------------------------------------------------------


async def test_caller_talking_over_the_goodbye_does_not_cut_it_and_the_call_still_hangs_up() -> None:
    talk_over = "Wait, one more thing."
    async with bench(responder=STORE, greeting=GREETING, timeouts=NO_REPROMPT) as b:
        call, _ = await dial(b)
        async with call:
            arrivals = _note_rest_arrivals(b, call)
            await greeted(call, quiet=GREETING_QUIET_S)
            await call.say(BYE)
            # "You're welcome." is the first phrase after the caller's words; the goodbye plays right after.
            asked = _last_speech_end(call)
            await until(
                "the first answer phrase echoed",
                lambda: any(e.t > asked for e in _events(call, "mark_echoed")),
            )
            await call.silence(0.2)
            await call.say(talk_over)  # returns early if the bot hangs up meanwhile
            await call.wait_closed(timeout=15)
        call_obj = await finished_call(b)

    assert call.protocol_errors == []
    assert _events(call, "clear_received") == []
    welcome = _played_in_full(call, call_obj, "You're welcome.")
    goodbye = _played_in_full(call, call_obj, GOODBYE)
    # The caller really talked over the goodbye: they started before it had played out.
    (talk_start,) = [e.t for e in _events(call, "caller_speech_start") if e.t > asked]
    assert _echo_time(call, welcome) < talk_start < _echo_time(call, goodbye)
    _assert_hang_up_request(b, call)
    (arrived,) = arrivals
    assert _index(call, "mark_echoed", goodbye.mark) < arrived
    _closed_by_bot_after(call, arrived)
    # Nothing the caller said during the goodbye was answered.
    assert len(b.openai.chat_requests) == 1
    assert call_obj.ending == "end_call"


# ---- 3. transfer: the line, then REST <Dial>, then the socket ----------------------------------------------


async def test_transfer_says_its_line_then_redirects_the_call_to_the_number_with_dial_twiml() -> None:
    async with bench(responder=STORE, greeting=GREETING, timeouts=NO_REPROMPT) as b:
        call, call_obj, arrivals = await _say_then_hung_up_on(b, ASK_PERSON)

    assert call.protocol_errors == []
    (request,) = b.rest.requests
    _assert_dial_request(request, b, call, FRONT_DESK.number)
    (arrived,) = arrivals
    line = _played_in_full(call, call_obj, FRONT_DESK.say)
    assert _index(call, "mark_echoed", line.mark) < arrived
    _closed_by_bot_after(call, arrived)
    assert _events(call, "clear_received") == []
    assert _longest_silence(call, _last_speech_end(call), _echo_time(call, line)) < SILENCE_LIMIT_S
    assert call_obj.transferred_to == FRONT_DESK.number
    assert call_obj.ending == "transfer"
    assert {"role": "assistant", "content": FRONT_DESK.say} in call_obj.conversation.messages


# ---- 4. a second transfer in the same answer is refused ------------------------------------------------


def _two_transfers(request: ChatRequest) -> Reply:
    if not request.is_follow_up and request.last_user_text == ASK_PERSON:
        return Reply(tool_calls=[ScriptedToolCall("transfer_call", {}) for _ in range(2)])
    return STORE(request)


async def test_two_transfer_calls_in_one_answer_make_one_rest_request_and_the_second_gets_an_error() -> None:
    async with bench(responder=_two_transfers, greeting=GREETING, timeouts=NO_REPROMPT) as b:
        call, call_obj, _ = await _say_then_hung_up_on(b, ASK_PERSON)

    assert call.protocol_errors == []
    (request,) = b.rest.requests
    _assert_dial_request(request, b, call, FRONT_DESK.number)
    _played_in_full(call, call_obj, FRONT_DESK.say)
    # One assistant message with both calls, then one result each: the first transfers, the second is refused.
    messages = call_obj.conversation.messages
    (round_at,) = [i for i, m in enumerate(messages) if m.get("tool_calls")]
    first, second = messages[round_at]["tool_calls"]
    results = messages[round_at + 1 : round_at + 3]
    assert [r["tool_call_id"] for r in results] == [first["id"], second["id"]]
    assert "already" not in results[0]["content"]
    assert FRONT_DESK.number in results[0]["content"]
    assert "error" in results[1]["content"]
    assert "already being transferred" in results[1]["content"]
    assert len(b.openai.chat_requests) == 1  # a transfer ends the answer: no follow-up request
    assert call_obj.transferred_to == FRONT_DESK.number


# ---- 5. the caller interrupts the transfer line: no transfer, a note, and a later one works ---------------


async def test_caller_interrupting_the_transfer_line_cancels_the_transfer_until_asked_again() -> None:
    interruption = "Hold on, not yet."
    async with bench(responder=STORE, greeting=GREETING, timeouts=NO_REPROMPT) as b:
        call, _ = await dial(b)
        async with call:
            arrivals = _note_rest_arrivals(b, call)
            await greeted(call, quiet=GREETING_QUIET_S)
            await call.say(ASK_PERSON)
            await call.wait_for_bot_audio(timeout=10)  # the transfer line starts
            await call.silence(0.4)
            await call.say(interruption)
            await call.wait_for_bot_audio(timeout=10)
            await call.wait_for_bot_silence(quiet=QUIET_S, timeout=15)
            rest_before_asking_again = list(b.rest.requests)
            await call.say(ASK_PERSON)
            await call.wait_closed(timeout=15)
        call_obj = await finished_call(b)

    assert call.protocol_errors == []
    assert rest_before_asking_again == []
    # The first transfer line was cut by a clear while the caller talked; it was not heard in full.
    (clear,) = _events(call, "clear_received")
    starts = [e.t for e in _events(call, "caller_speech_start")]
    assert starts[1] < clear.t < starts[2]
    first_line, second_line = [p for p in _sent(call, call_obj) if p.text == FRONT_DESK.say]
    assert first_line.state == "cleared"
    assert second_line.state == "played"
    assert call_obj.turns[0].barge_in is True
    # The model was told, before answering the interruption, that the transfer did not happen.
    (answering,) = [r for r in b.openai.chat_requests if r.last_user_text == interruption]
    notes = [m["content"] for m in answering.messages[1:] if m["role"] == "system"]
    assert [n[:26] for n in notes] == ["The transfer was NOT made:"], notes
    assert notes[0] in [m["content"] for m in call_obj.conversation.messages]
    # Asked again, the transfer went through: exactly one REST request, after the full line.
    (request,) = b.rest.requests
    _assert_dial_request(request, b, call, FRONT_DESK.number)
    (arrived,) = arrivals
    assert _index(call, "mark_echoed", second_line.mark) < arrived
    _closed_by_bot_after(call, arrived)
    assert call_obj.transferred_to == FRONT_DESK.number


# ---- 6. the transfer REST request fails: the caller hears so and the call goes on ------------------------


async def test_failed_transfer_request_says_the_failure_line_and_the_call_goes_on() -> None:
    question = "Are you open on Saturday?"
    async with bench(responder=STORE, greeting=GREETING, timeouts=NO_REPROMPT) as b:
        b.rest.faults.append(500)
        call, _ = await dial(b)
        async with call:
            await greeted(call, quiet=GREETING_QUIET_S)
            await call.say(ASK_PERSON)
            transfer_asked = _last_speech_end(call)
            # The transfer line and then the failure line are one phrase (one mark) each.
            await until(
                "two phrases played after the request",
                lambda: len([e for e in _events(call, "mark_echoed") if e.t > transfer_asked]) >= 2,
            )
            await call.wait_for_bot_silence(quiet=QUIET_S, timeout=15)
            asked_at = _last_speech_end(call)
            await call.say(question)
            await call.wait_for_bot_audio(timeout=10)
            await call.wait_for_bot_silence(quiet=QUIET_S, timeout=15)
            open_after_failure = not call.closed_by_bot
            await call.hang_up()
        call_obj = await finished_call(b)

    assert call.protocol_errors == []
    assert open_after_failure and call.closed_by_bot is False
    (request,) = b.rest.requests
    _assert_dial_request(request, b, call, FRONT_DESK.number)
    assert not b.rest.faults  # the one fault answered that request
    line = _played_in_full(call, call_obj, FRONT_DESK.say)
    failure = _played_in_full(call, call_obj, LINE.transfer_failed_text)
    assert _echo_time(call, line) <= _echo_time(call, failure)
    assert _longest_silence(call, _echo_time(call, line), _echo_time(call, failure)) < SILENCE_LIMIT_S
    assert _events(call, "clear_received") == []
    # The next turn was answered in speech, and the model knew the transfer had failed.
    assert call_obj.turns[-1].transcript == question
    answer = _answer_played_in_full(call, call_obj, -1, "On Saturday, we're open from 10 am to 4 pm.")
    assert _echo_time(call, answer) > asked_at
    (answering,) = [r for r in b.openai.chat_requests if r.last_user_text == question and not r.is_follow_up]
    assert any(
        m["role"] == "system" and m["content"].startswith("The transfer failed") for m in answering.messages
    )
    assert call_obj.transferred_to is None
    assert call_obj.ending is None


# ---- 7. the hang-up REST request fails: the socket is still closed ---------------------------------------


async def test_failed_hang_up_request_still_closes_the_socket_after_the_goodbye() -> None:
    async with bench(responder=STORE, greeting=GREETING, timeouts=NO_REPROMPT) as b:
        b.rest.faults.append(500)
        call, call_obj, _ = await _say_then_hung_up_on(b, BYE)

    assert call.protocol_errors == []
    (request,) = b.rest.requests
    assert request.form == {"Status": "completed"}
    assert not b.rest.faults
    goodbye = _played_in_full(call, call_obj, GOODBYE)
    _closed_by_bot_after(call, _index(call, "mark_echoed", goodbye.mark) + 1)
    assert call_obj.ending == "end_call"


# ---- 8. the keypad ---------------------------------------------------------------------------------------

KEYPAD = DtmfConfig(timeout_s=1.0)


async def _type_then_hear_the_order_answer(b: Bench, call: PhoneCall, keys: str) -> float:
    """Press ``keys``, then wait until the order answer has played; when the last key was sent (monotonic)."""
    for key in keys[:-1]:
        await call.send_dtmf(key)
    last_key_sent = time.monotonic()
    await call.send_dtmf(keys[-1])
    await until(
        "the order answer's end sent to TTS",
        lambda: any(r["text"].endswith("the estimate is Thursday.") for r in b.tts.synth_requests),
    )
    await call.wait_for_bot_silence(quiet=QUIET_S, timeout=15)
    return last_key_sent


async def test_digits_ended_with_hash_become_a_typed_turn_that_is_answered() -> None:
    slow_keypad = DtmfConfig(timeout_s=5.0)  # far from what '#' takes, so the two cannot be confused
    async with bench(responder=STORE, greeting=GREETING, timeouts=NO_REPROMPT, dtmf=slow_keypad) as b:
        call, clock = await dial(b)
        async with call:
            await greeted(call, quiet=GREETING_QUIET_S)
            hash_sent = await _type_then_hear_the_order_answer(b, call, "1001#")
        call_obj = await finished_call(b)

    assert call.protocol_errors == []
    (turn,) = call_obj.turns
    assert turn.typed == KEYPAD_1001
    assert turn.transcript == KEYPAD_1001
    assert b.openai.transcription_requests == []  # nothing to transcribe
    first, follow_up = b.openai.chat_requests
    assert first.last_user_text == KEYPAD_1001
    assert {"role": "user", "content": KEYPAD_1001} in call_obj.conversation.messages
    assert follow_up.is_follow_up
    answer = _answer_played_in_full(call, call_obj, 0, ORDER_1001_ANSWER)
    assert first.received_at < hash_sent + slow_keypad.timeout_s - 1.0  # '#' ended it, not the timeout
    assert (
        _longest_silence(call, clock.phone_time_at_least(hash_sent), _echo_time(call, answer))
        < SILENCE_LIMIT_S
    )
    assert _events(call, "clear_received") == []


async def test_digits_without_the_finish_key_end_after_the_keypad_timeout() -> None:
    async with bench(responder=STORE, greeting=GREETING, timeouts=NO_REPROMPT, dtmf=KEYPAD) as b:
        call, _ = await dial(b)
        async with call:
            await greeted(call, quiet=GREETING_QUIET_S)
            last_key_sent = await _type_then_hear_the_order_answer(b, call, "1001")
        call_obj = await finished_call(b)

    assert call.protocol_errors == []
    (turn,) = call_obj.turns
    assert turn.typed == KEYPAD_1001
    first = b.openai.chat_requests[0]
    assert first.last_user_text == KEYPAD_1001
    # The entry ended only once timeout_s had passed since the last key reached the bot.
    assert first.received_at >= last_key_sent + KEYPAD.timeout_s
    _answer_played_in_full(call, call_obj, -1, ORDER_1001_ANSWER)


async def test_a_key_pressed_while_the_bot_talks_barges_in() -> None:
    question = "What else can you help me with?"
    async with bench(responder=STORE, greeting=GREETING, timeouts=NO_REPROMPT, dtmf=KEYPAD) as b:
        call, _ = await dial(b)
        async with call:
            await greeted(call, quiet=GREETING_QUIET_S)
            await call.say(question)
            answer_start = await call.wait_for_bot_audio(timeout=10)
            await call.silence(0.5)
            await call.send_dtmf("1")
            await until("a clear", lambda: _events(call, "clear_received"))
            await _type_then_hear_the_order_answer(b, call, "001#")
        call_obj = await finished_call(b)

    assert call.protocol_errors == []
    (clear,) = _events(call, "clear_received")
    assert clear.t > answer_start
    asked, typed = call_obj.turns
    assert asked.transcript == question and asked.barge_in is True
    (answer_id,) = asked.said
    assert any(p.state == "cleared" for p in call_obj.tracker.phrases(answer_id))
    assert typed.typed == KEYPAD_1001  # the key that barged in is the entry's first digit
    _answer_played_in_full(call, call_obj, -1, ORDER_1001_ANSWER)


async def _type(call: PhoneCall, keys: str) -> None:
    for key in keys:
        await call.send_dtmf(key)


async def test_words_cut_by_a_key_before_they_were_transcribed_still_reach_the_model() -> None:
    spoken = "My order number is"
    # Transcription takes 2.5 s, so the first key lands while the spoken turn still waits for its text.
    async with bench(
        responder=STORE, greeting=GREETING, timeouts=NO_REPROMPT, dtmf=KEYPAD, stt_delay_s=2.5
    ) as b:
        call, _ = await dial(b)
        async with call:
            await greeted(call, quiet=GREETING_QUIET_S)
            await call.say(spoken)
            await call.silence(1.2)  # the turn began 0.5 s after the words; its transcript is 2.5 s away
            await _type(call, "1001#")
            await _all_turns_done(b, 2)
            await call.wait_for_bot_silence(quiet=QUIET_S, timeout=15)
        call_obj = await finished_call(b)

    assert call.protocol_errors == []
    assert len(_events(call, "clear_received")) == 1  # the key barged in (the bot was thinking)
    assert call_obj.turns[-1].typed == KEYPAD_1001
    users = [m["content"] for m in call_obj.conversation.messages if m["role"] == "user"]
    assert any(spoken in str(u) for u in users), users


async def test_entry_finished_while_the_bot_waits_to_confirm_speech_is_still_answered() -> None:
    # A long end-of-turn silence keeps the speculation (started after pause_ms) alive for 1.3 s.
    endpointing = EndpointerConfig(end_silence_ms=1500, pause_ms=200)
    async with bench(
        responder=STORE,
        greeting=GREETING,
        timeouts=NO_REPROMPT,
        dtmf=KEYPAD,
        endpointing=endpointing,
        llm_first_token_s=0.3,
    ) as b:
        call, _ = await dial(b)
        async with call:
            await greeted(call, quiet=GREETING_QUIET_S)
            await call.say("Hold on.")
            await call.silence(0.7)  # past pause_ms, well before end_silence_ms: a speculation runs
            await _type(call, "1001#")
            await _all_turns_done(b, 2)
            await call.wait_for_bot_silence(quiet=QUIET_S, timeout=15)
        call_obj = await finished_call(b)

    assert call.protocol_errors == []
    (typed_index,) = [i for i, t in enumerate(call_obj.turns) if t.typed is not None]
    assert {"role": "user", "content": KEYPAD_1001} in call_obj.conversation.messages
    _answer_played_in_full(call, call_obj, typed_index, ORDER_1001_ANSWER)


# ---- 9. a silent caller: reprompt, then the no-answer goodbye --------------------------------------------

QUICK_SILENCE = TimeoutConfig(silence_reprompt_s=1.0, max_reprompts=1)


async def test_silent_caller_is_reprompted_then_hears_the_no_answer_goodbye_and_is_hung_up() -> None:
    timeouts = QUICK_SILENCE
    async with bench(responder=STORE, greeting=GREETING, timeouts=timeouts) as b:
        call, _ = await dial(b)
        async with call:
            arrivals = _note_rest_arrivals(b, call)
            greeting_end = await greeted(call, quiet=GREETING_QUIET_S)
            await call.wait_closed(timeout=15)
        call_obj = await finished_call(b)

    assert call.protocol_errors == []
    assert [p.text for p in _sent(call, call_obj)] == [
        GREETING,
        timeouts.reprompt_text,
        timeouts.no_answer_goodbye,
    ]
    reprompt = _played_in_full(call, call_obj, timeouts.reprompt_text)
    goodbye = _played_in_full(call, call_obj, timeouts.no_answer_goodbye)
    # The reprompt came after about silence_reprompt_s of silence (the supervisor ticks every 0.2 s).
    reprompt_start = min(e.t for e in _events(call, "bot_audio_start") if e.t > greeting_end)
    assert 0.7 <= reprompt_start - greeting_end < 5.0, (greeting_end, reprompt_start)
    goodbye_start = min(e.t for e in _events(call, "bot_audio_start") if e.t > _echo_time(call, reprompt))
    assert goodbye_start - _echo_time(call, reprompt) >= 0.7
    _assert_hang_up_request(b, call)
    (arrived,) = arrivals
    assert _index(call, "mark_echoed", goodbye.mark) < arrived
    _closed_by_bot_after(call, arrived)
    assert {"role": "assistant", "content": timeouts.reprompt_text} in call_obj.conversation.messages
    assert call_obj.ending == "no_answer"
    assert b.openai.chat_requests == []


SHORT_ANSWER = "Good to hear."  # one phrase


def _short_answers(request: ChatRequest) -> Reply:
    return Reply(text=SHORT_ANSWER)


async def test_caller_answering_a_reprompt_resets_the_count_so_the_call_is_not_hung_up() -> None:
    timeouts = QUICK_SILENCE
    here = "Yes, I'm here."
    async with bench(responder=_short_answers, greeting=GREETING, timeouts=timeouts) as b:
        call, _ = await dial(b)
        async with call:
            quiet_from = await greeted(call, quiet=GREETING_QUIET_S)
            for _ in range(2):
                # Silence until the reprompt (the same one, not the goodbye), then answer it.
                await call.wait_for_bot_audio(after=quiet_from + 0.01, timeout=10)
                await call.wait_for_bot_silence(quiet=0.2, timeout=10)
                await call.say(here)
                await call.wait_for_bot_audio(timeout=10)
                quiet_from = await call.wait_for_bot_silence(quiet=0.2, timeout=10)
            still_open = not call.closed_by_bot
            await call.hang_up()
        call_obj = await finished_call(b)

    assert call.protocol_errors == []
    assert still_open and call.closed_by_bot is False
    texts = [p.text for p in _sent(call, call_obj)]
    assert texts[:5] == [
        GREETING,
        timeouts.reprompt_text,
        SHORT_ANSWER,
        timeouts.reprompt_text,
        SHORT_ANSWER,
    ], texts
    assert timeouts.no_answer_goodbye not in texts
    assert b.rest.requests == []
    assert [t.transcript for t in call_obj.turns] == [here, here]
    assert call_obj.ending is None


async def test_caller_talking_over_a_reprompt_does_not_mark_the_previous_turn_as_cut() -> None:
    timeouts = TimeoutConfig(
        silence_reprompt_s=1.0,
        max_reprompts=3,
        reprompt_text="Are you still there? I am waiting for your answer.",
    )
    async with bench(responder=_short_answers, greeting=GREETING, timeouts=timeouts) as b:
        call, _ = await dial(b)
        async with call:
            await greeted(call, quiet=GREETING_QUIET_S)
            await call.say("Yes, I'm here.")
            await call.wait_for_bot_audio(timeout=10)
            answered = await call.wait_for_bot_silence(quiet=0.2, timeout=10)
            await call.wait_for_bot_audio(after=answered + 0.01, timeout=10)  # the reprompt starts
            await call.say("Sorry, go on.")
            await call.wait_for_bot_audio(timeout=10)
            await call.wait_for_bot_silence(quiet=0.2, timeout=10)
        call_obj = await finished_call(b)

    assert call.protocol_errors == []
    assert len(_events(call, "clear_received")) == 1  # the reprompt was cut, as it should be
    reprompt = _said_once(call, call_obj, timeouts.reprompt_text)
    assert reprompt.state == "cleared"
    first = call_obj.turns[0]
    _answer_played_in_full(call, call_obj, 0, SHORT_ANSWER)  # its answer was heard in full ...
    assert first.barge_in is False  # ... so it was not cut


# ---- 10. the call-length limit ---------------------------------------------------------------------------


def _long_answer(request: ChatRequest) -> Reply:
    return Reply(text=LONG_ANSWER)


async def test_call_length_limit_cuts_the_answer_says_the_goodbye_and_hangs_up() -> None:
    timeouts = TimeoutConfig(silence_reprompt_s=60.0, max_call_s=4.5)
    async with bench(responder=_long_answer, greeting=GREETING, timeouts=timeouts) as b:
        call, _ = await dial(b)
        async with call:
            arrivals = _note_rest_arrivals(b, call)
            await greeted(call, quiet=GREETING_QUIET_S)
            await call.say("Tell me everything.")
            answer_start = await call.wait_for_bot_audio(timeout=10)
            await call.wait_closed(timeout=15)
        call_obj = await finished_call(b)

    assert call.protocol_errors == []
    # The answer was playing when the limit struck: cleared mid-way, then the goodbye in full.
    (clear,) = _events(call, "clear_received")
    assert clear.t > answer_start
    (answer_id,) = call_obj.turns[0].said
    states = [p.state for p in call_obj.tracker.phrases(answer_id)]
    assert "cleared" in states, states
    goodbye = _played_in_full(call, call_obj, timeouts.max_call_goodbye)
    assert _index(call, "clear_received") < _index(call, "mark_received", goodbye.mark)
    assert _longest_silence(call, clear.t, _echo_time(call, goodbye)) < SILENCE_LIMIT_S
    _assert_hang_up_request(b, call)
    (arrived,) = arrivals
    assert _index(call, "mark_echoed", goodbye.mark) < arrived
    _closed_by_bot_after(call, arrived)
    assert call_obj.ending == "max_duration"
    messages = call_obj.conversation.messages
    assert messages[-1] == {"role": "assistant", "content": timeouts.max_call_goodbye}
    assert not any("workshop" in str(m.get("content")) for m in messages)  # the unheard tail is not history
