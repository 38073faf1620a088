"""MarkTracker: which phrase audio the caller actually heard."""

from __future__ import annotations

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from bot.core.heard import EchoResult, MarkTracker, SpokenPhrase


def test_mark_names_are_unique_and_readable() -> None:
    tracker = MarkTracker()
    names = [tracker.sent("a", 3), tracker.sent("b", 3), tracker.sent("c", 4)]
    assert len(set(names)) == 3
    assert names[0].startswith("r3-p")
    assert names[2].startswith("r4-p")


def test_play_in_order() -> None:
    tracker = MarkTracker()
    first = tracker.sent("Hello there.", 1)
    second = tracker.sent("How can I help?", 1)
    assert tracker.speaking
    assert tracker.pending() == tracker.pending(1) == 2
    assert tracker.echoed(first) is EchoResult.PLAYED
    assert tracker.is_played(first)
    assert not tracker.is_played(second)
    assert tracker.heard_text(1) == "Hello there."
    assert tracker.echoed(second) is EchoResult.PLAYED
    assert not tracker.speaking
    assert tracker.pending() == 0
    assert tracker.heard_text(1) == "Hello there. How can I help?"
    assert tracker.unheard_text(1) == ""


def test_clear_with_two_pending_then_their_echoes_change_nothing() -> None:
    tracker = MarkTracker()
    played = tracker.sent("Your order shipped.", 2)
    cut_1 = tracker.sent("It should arrive", 2)
    cut_2 = tracker.sent("on Tuesday.", 2)
    assert tracker.echoed(played) is EchoResult.PLAYED

    cleared = tracker.clear()

    assert cleared == [
        SpokenPhrase(mark=cut_1, response_id=2, text="It should arrive", state="cleared"),
        SpokenPhrase(mark=cut_2, response_id=2, text="on Tuesday.", state="cleared"),
    ]
    assert not tracker.speaking
    assert tracker.pending(2) == 0
    # Twilio echoes every pending mark after clear.
    assert tracker.echoed(cut_1) is EchoResult.CLEARED
    assert tracker.echoed(cut_2) is EchoResult.CLEARED
    assert not tracker.is_played(cut_1)
    assert not tracker.is_played(cut_2)
    assert tracker.heard_text(2) == "Your order shipped."
    assert tracker.unheard_text(2) == "It should arrive on Tuesday."


def test_clear_with_nothing_pending() -> None:
    tracker = MarkTracker()
    assert tracker.clear() == []
    mark = tracker.sent("Done.", 1)
    tracker.echoed(mark)
    assert tracker.clear() == []
    assert tracker.heard_text(1) == "Done."


def test_unknown_mark() -> None:
    tracker = MarkTracker()
    tracker.sent("Hi.", 1)
    assert tracker.echoed("turn-7") is EchoResult.UNKNOWN
    assert tracker.pending() == 1
    assert not tracker.is_played("turn-7")


def test_duplicate_echo_is_unknown() -> None:
    tracker = MarkTracker()
    mark = tracker.sent("Hi.", 1)
    assert tracker.echoed(mark) is EchoResult.PLAYED
    assert tracker.echoed(mark) is EchoResult.UNKNOWN
    assert tracker.is_played(mark)
    cut = tracker.sent("Bye.", 1)
    tracker.clear()
    assert tracker.echoed(cut) is EchoResult.CLEARED
    assert tracker.echoed(cut) is EchoResult.UNKNOWN


def test_heard_text_after_barge_in_is_exactly_the_played_prefix() -> None:
    tracker = MarkTracker()
    phrases = ["Sure.", "I can transfer you to sales.", "Before I do,", "may I have your name?"]
    marks = [tracker.sent(text, 5) for text in phrases]
    tracker.echoed(marks[0])
    tracker.echoed(marks[1])
    tracker.clear()  # the caller barged in while phrase 3 was playing
    for mark in marks[2:]:
        tracker.echoed(mark)
    assert tracker.heard_text(5) == "Sure. I can transfer you to sales."
    assert tracker.unheard_text(5) == "Before I do, may I have your name?"


def test_responses_are_kept_apart() -> None:
    tracker = MarkTracker()
    old = tracker.sent("Old answer.", 1)
    tracker.echoed(old)
    new = tracker.sent("New answer.", 2)
    assert tracker.pending(1) == 0
    assert tracker.pending(2) == 1
    tracker.echoed(new)
    assert tracker.heard_text(1) == "Old answer."
    assert tracker.heard_text(2) == "New answer."
    assert tracker.heard_text(3) == ""


def test_heard_text_strips_and_skips_empty_phrases() -> None:
    tracker = MarkTracker()
    for text in ["Hello. ", "  ", " there."]:
        tracker.echoed(tracker.sent(text, 1))
    assert tracker.heard_text(1) == "Hello. there."


def test_a_reused_response_id_never_reuses_a_mark_name() -> None:
    tracker = MarkTracker()
    first = tracker.sent("a", 1)
    tracker.echoed(first)
    second = tracker.sent("b", 1)
    assert second != first
    assert tracker.echoed(first) is EchoResult.UNKNOWN
    assert tracker.pending(1) == 1


class MarkTrackerMachine(RuleBasedStateMachine):
    """Random interleavings of sent / echo / clear against a simple model."""

    def __init__(self) -> None:
        super().__init__()
        self.tracker = MarkTracker()
        self.sent_marks: list[str] = []
        self.model: dict[str, str] = {}  # mark -> "pending" | "played" | "cleared"
        self.clear_echoed: set[str] = set()
        self.response_of: dict[str, int] = {}
        self.settle_count: dict[str, int] = {}

    @rule(response_id=st.integers(0, 3), text=st.sampled_from(["a", "b c", "d."]))
    def send(self, response_id: int, text: str) -> None:
        mark = self.tracker.sent(text, response_id)
        assert mark not in self.sent_marks
        self.sent_marks.append(mark)
        self.model[mark] = "pending"
        self.response_of[mark] = response_id
        self.settle_count[mark] = 0

    @precondition(lambda self: bool(self.sent_marks))
    @rule(data=st.data())
    def echo_sent_mark(self, data: st.DataObject) -> None:
        mark = data.draw(st.sampled_from(self.sent_marks))
        result = self.tracker.echoed(mark)
        state = self.model[mark]
        if state == "pending":
            assert result is EchoResult.PLAYED
            self.model[mark] = "played"
            self.settle_count[mark] += 1
        elif state == "cleared" and mark not in self.clear_echoed:
            assert result is EchoResult.CLEARED
            self.clear_echoed.add(mark)
        else:
            assert result is EchoResult.UNKNOWN

    @rule(name=st.text(max_size=8))
    def echo_unknown_mark(self, name: str) -> None:
        if name not in self.model:
            assert self.tracker.echoed(name) is EchoResult.UNKNOWN

    @rule()
    def clear(self) -> None:
        cleared = self.tracker.clear()
        expected = [m for m in self.sent_marks if self.model[m] == "pending"]
        assert [p.mark for p in cleared] == expected
        assert all(p.state == "cleared" for p in cleared)
        for mark in expected:
            self.model[mark] = "cleared"
            self.settle_count[mark] += 1

    @invariant()
    def each_phrase_settles_at_most_once(self) -> None:
        assert all(count <= 1 for count in self.settle_count.values())

    @invariant()
    def played_cleared_pending_add_up_to_sent(self) -> None:
        states = [self.model[m] for m in self.sent_marks]
        assert states.count("played") + states.count("cleared") + states.count("pending") == len(
            self.sent_marks
        )
        assert self.tracker.pending() == states.count("pending")
        assert self.tracker.speaking == ("pending" in states)
        for response_id in range(4):
            assert self.tracker.pending(response_id) == sum(
                1
                for m in self.sent_marks
                if self.response_of[m] == response_id and self.model[m] == "pending"
            )

    @invariant()
    def tracker_agrees_with_model(self) -> None:
        for mark in self.sent_marks:
            assert self.tracker.is_played(mark) == (self.model[mark] == "played")
        for response_id in range(4):
            remembered = [m for m in self.sent_marks if self.response_of[m] == response_id]
            phrases = self.tracker.phrases(response_id)
            assert [p.mark for p in phrases] == remembered
            assert [p.state for p in phrases] == [self.model[m] for m in remembered]
            played_texts = [p.text for p in phrases if p.state == "played"]
            assert self.tracker.heard_text(response_id) == " ".join(played_texts)


MarkTrackerMachine.TestCase.settings = settings(max_examples=150, stateful_step_count=30, deadline=None)
test_mark_tracker_state_machine = MarkTrackerMachine.TestCase
