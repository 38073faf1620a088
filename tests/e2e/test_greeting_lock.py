"""A greeting the flow marks ``interruptible: false``: the caller's speech does not cut it, and once it has
been heard, speech barges in as usual (``bot.call.utterance``: the greeting locks barge-in until heard).

Through the real server, the phone emulator and the fake providers (``bot.sim.rig.bench``); checked on the
order of what the phone received, never on latencies.
"""

from __future__ import annotations

from bot.sim.rig import bench
from emulators.openai_script import ChatRequest, Reply
from emulators.store_script import StoreScript
from tests.support.phone import dial, events, finished_call, until

# ~3 s of speech at the bench's 30 ms per character: the caller has time to talk over it.
GREETING = "Hello and thank you for calling the hardware store. This call may be recorded. How can I help?"
TALK_OVER = "Hello? Is anyone there?"
# ~7 s of speech: long enough to be talked over.
LONG_ANSWER = (
    "Sure thing, we carry hand tools and power tools and paint and everything you need for the garden. "
    "We also cut keys while you wait. We rent out carpet cleaners by the day. "
    "And there is a workshop every Saturday morning."
)
INTERRUPTION = "Are you open on Sunday?"
STORE = StoreScript(first_token_delay_s=0.0, chunk_delay_s=0.0)


def _long_answer_then_store(request: ChatRequest) -> Reply:
    if request.last_user_text == TALK_OVER:
        return Reply(text=LONG_ANSWER)
    return STORE(request)


async def test_a_greeting_that_may_not_be_cut_plays_out_and_speech_after_it_barges_in() -> None:
    async with bench(responder=_long_answer_then_store, greeting=GREETING, greeting_interruptible=False) as b:
        call, _ = await dial(b)
        async with call:
            await call.wait_for_bot_audio(after=0.0, timeout=10)
            await call.say(TALK_OVER)  # over the greeting: it plays on
            await until("the greeting heard", lambda: len(events(call, "mark_echoed")) >= 1)
            await until("the answer's audio", lambda: len(events(call, "mark_received")) >= 2, 20.0)
            await call.say(INTERRUPTION)  # over the answer: a barge-in
            await until("a clear", lambda: bool(events(call, "clear_received")))
            await call.hang_up()
        call_obj = await finished_call(b)

    assert call.protocol_errors == []
    greeting_heard = events(call, "mark_echoed")[0].t
    talked_over = events(call, "caller_speech_start")[0].t
    assert talked_over < greeting_heard  # the caller really spoke while the greeting played
    (clear,) = events(call, "clear_received")
    assert clear.t > events(call, "caller_speech_start")[-1].t > greeting_heard  # cut the answer, not it
    messages = call_obj.conversation.messages
    assert messages[1] == {"role": "assistant", "content": GREETING}  # said whole, never settled shorter
    assert call_obj.turns[0].transcript == TALK_OVER and call_obj.turns[0].barge_in is True
