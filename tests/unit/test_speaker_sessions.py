"""Speaker with a voice that has per-answer sessions (one TTS request per answer).

Rules checked here: an answer's phrases go on one session, each pushed as soon as it is said (beyond the
per-phrase lookahead), and go out in order, each with its own mark; the session ends on ``end_answer`` or
when a phrase of another response is said; fixed lines and voices without sessions are synthesized per
phrase; ``clear`` and ``close`` cancel every session still speaking; a session failing mid-answer is
reported once, cancels the session and drops the queue.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

from bot.providers.tts.protocol import VoiceOptions
from media.errors import ProviderError
from tests.support.fakes import FakeTTS
from tests.support.speaker import Wire, audio, eventually, make_speaker


class FakeSession:
    def __init__(self, tts: SessionTTS) -> None:
        self.tts = tts
        self.pushed: list[str] = []
        self.accepting = True
        self.ended = False
        self.cancelled = False

    def push(self, text: str) -> AsyncIterator[bytes]:
        assert self.accepting, "pushed on a session that takes no more text"
        self.pushed.append(text)
        return self.tts.synthesize(text)

    def end(self) -> None:
        self.ended = True
        self.accepting = False

    def cancel(self) -> None:
        self.cancelled = True
        self.accepting = False


class SessionTTS(FakeTTS):
    def __init__(self, audio: dict[str, bytes]) -> None:
        super().__init__(audio)
        self.sessions: list[FakeSession] = []

    def open_session(self, voice: VoiceOptions | None = None) -> FakeSession:
        session = FakeSession(self)
        self.sessions.append(session)
        return session


async def test_an_answer_goes_on_one_session_every_phrase_pushed_when_said_and_out_in_order() -> None:
    texts = ["one", "two", "three", "four", "five"]  # more than the per-phrase lookahead
    tts = SessionTTS({t: audio(i + 1, 160) for i, t in enumerate(texts)})
    tts.gates["one"] = asyncio.Event()
    wire = Wire()
    speaker, tracker = make_speaker(tts, wire)
    for text in texts:
        speaker.say(text, 1, answer=True)
    (session,) = tts.sessions
    assert session.pushed == texts  # all pushed at once: the service synthesizes them in order
    tts.gates["one"].set()
    speaker.end_answer()
    assert session.ended
    await eventually(lambda: len(wire.marks()) == 5)
    assert wire.script() == [entry for i in range(1, 6) for entry in (f"audio {i}", "mark")]
    assert [p.text for p in tracker.phrases(1)] == texts
    await speaker.close()


async def test_a_phrase_of_another_response_ends_the_session_and_the_next_answer_opens_another() -> None:
    tts = SessionTTS({"a": audio(1, 160), "b": audio(2, 160), "c": audio(3, 160)})
    wire = Wire()
    speaker, _ = make_speaker(tts, wire)
    speaker.say("a", 1, answer=True)
    speaker.say("b", 1, answer=True)
    speaker.say("One moment.", 2, audio=audio(9, 160))  # a filler clip between two rounds
    assert tts.sessions[0].ended
    speaker.say("c", 3, answer=True)
    assert [s.pushed for s in tts.sessions] == [["a", "b"], ["c"]]
    await eventually(lambda: len(wire.marks()) == 4)
    assert wire.script() == ["audio 1", "mark", "audio 2", "mark", "audio 9", "mark", "audio 3", "mark"]
    await speaker.close()


async def test_a_session_that_takes_no_more_text_is_replaced_for_the_same_answer() -> None:
    tts = SessionTTS({"a": audio(1, 160), "b": audio(2, 160)})
    speaker, _ = make_speaker(tts, Wire())
    speaker.say("a", 1, answer=True)
    tts.sessions[0].accepting = False  # e.g. it ended its input after the service's idle limit
    speaker.say("b", 1, answer=True)
    assert [s.pushed for s in tts.sessions] == [["a"], ["b"]]
    await speaker.close()


async def test_fixed_lines_and_voices_without_sessions_are_synthesized_per_phrase() -> None:
    tts = SessionTTS({"Goodbye.": audio(1, 160)})
    wire = Wire()
    speaker, _ = make_speaker(tts, wire)
    speaker.say("Goodbye.", 1)  # a fixed line not yet cached
    await eventually(lambda: len(wire.marks()) == 1)
    assert tts.sessions == [] and tts.started == ["Goodbye."]
    await speaker.close()

    plain = FakeTTS({"a": audio(1, 160), "b": audio(2, 160)})  # piper: no open_session
    wire = Wire()
    speaker, _ = make_speaker(plain, wire)
    speaker.say("a", 1, answer=True)
    speaker.say("b", 1, answer=True)
    await eventually(lambda: len(wire.marks()) == 2)
    assert wire.script() == ["audio 1", "mark", "audio 2", "mark"]
    await speaker.close()


async def test_clear_cancels_every_session_still_speaking() -> None:
    tts = SessionTTS({"a": audio(1, 160), "b": audio(2, 160), "c": audio(3, 160)})
    tts.gates["b"] = asyncio.Event()
    tts.gates["c"] = asyncio.Event()
    wire = Wire()
    speaker, tracker = make_speaker(tts, wire)
    speaker.say("a", 1, answer=True)
    speaker.say("b", 1, answer=True)
    speaker.say("c", 2, answer=True)  # ends the first session, which still owes "b"
    await eventually(lambda: len(wire.marks()) == 1)
    cut = await speaker.clear()
    assert cut == {1, 2}
    assert [(s.ended, s.cancelled) for s in tts.sessions] == [(True, True), (False, True)]
    assert wire.script() == ["audio 1", "mark", "clear"]
    assert tracker.pending() == 0
    await eventually(lambda: set(tts.cancelled) == {"b", "c"})
    await speaker.close()


async def test_hang_up_cancels_the_open_session() -> None:
    tts = SessionTTS({"a": audio(1, 160)})
    tts.gates["a"] = asyncio.Event()
    speaker, _ = make_speaker(tts, Wire())
    speaker.say("a", 1, answer=True)
    await speaker.close()
    assert tts.sessions[0].cancelled


async def test_a_session_failing_mid_answer_is_reported_once_and_cancels_it() -> None:
    tts = SessionTTS({"a": audio(1, 160), "b": b"", "c": audio(3, 160)})
    tts.errors["b"] = ProviderError("google-tts", "unavailable")
    tts.errors["c"] = ProviderError("google-tts", "unavailable")  # a failed call fails every phrase left
    tts.gates["b"] = asyncio.Event()
    wire = Wire()
    errors: list[tuple[int, str]] = []
    speaker, tracker = make_speaker(tts, wire, on_error=lambda rid, e: errors.append((rid, e.kind)))
    for text in "abc":
        speaker.say(text, 1, answer=True)
    await eventually(lambda: len(wire.marks()) == 1)
    tts.gates["b"].set()
    await eventually(lambda: bool(errors))
    await asyncio.sleep(0.05)
    assert errors == [(1, "unavailable")]
    assert tts.sessions[0].cancelled
    assert wire.script() == ["audio 1", "mark"]
    assert not speaker.queued(1)
    speaker.say("Sorry, something went wrong.", 2, audio=audio(7, 160))  # the apology still plays
    await eventually(lambda: len(wire.marks()) == 2)
    assert [p.text for p in tracker.phrases(1)] == ["a"]
    await speaker.close()


async def test_end_answer_of_another_response_leaves_the_open_session_alone() -> None:
    tts = SessionTTS({"a": audio(1, 160)})
    speaker, _ = make_speaker(tts, Wire())
    speaker.say("a", 2, answer=True)
    speaker.end_answer(1)  # e.g. a speculative response with no text, ended before this one was said
    assert not tts.sessions[0].ended
    speaker.end_answer(2)
    assert tts.sessions[0].ended
    await speaker.close()
