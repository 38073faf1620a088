"""Old call versus replayed call, turn by turn, and the report a developer (or CI) reads.

Rules:
- Turns are paired by position: turn n of the recording with turn n of the replay. A turn only one side
  has is a change.
- A pair changed when its tool calls differ (names or arguments, in order), or its answers' word
  distance (``bot.sim.replay.words.word_distance``) is above the tolerance, or one side failed and the other
  did not. What was heard and the latency are shown, but are not themselves a change: a different
  hearing matters through the answer it leads to.
- An answer the caller cut off (on either side) that differs only in where it stopped (one side's words
  are the other's first words) was "cut at another point": a timing difference, shown as ``timing``,
  not a change (the caller spoke at another moment of the same answer).
- The call's outcome (how it ended, where it was transferred) differing is a change too.
- Pure: no I/O; ``render`` returns the lines to print.
"""

from __future__ import annotations

from dataclasses import dataclass

from bot.sim.replay.recorded import RecordedTurn
from bot.sim.replay.words import word_distance, words


@dataclass(frozen=True)
class TurnDiff:
    number: int
    old: RecordedTurn | None
    new: RecordedTurn | None
    answer_distance: float
    heard_changed: bool
    tools_changed: bool
    error_changed: bool
    cut_elsewhere: bool = False  # only where the caller cut the answer differs (module rules)

    def changed(self, tolerance: float) -> bool:
        if self.old is None or self.new is None:
            return True
        if self.tools_changed or self.error_changed:
            return True
        return not self.cut_elsewhere and self.answer_distance > tolerance

    @property
    def latency_delta_ms(self) -> int | None:
        if self.old is None or self.new is None:
            return None
        if self.old.voice_to_voice_ms is None or self.new.voice_to_voice_ms is None:
            return None
        return self.new.voice_to_voice_ms - self.old.voice_to_voice_ms


@dataclass(frozen=True)
class CallDiff:
    turns: tuple[TurnDiff, ...]
    old_outcome: str
    new_outcome: str

    def changed_turns(self, tolerance: float) -> list[TurnDiff]:
        return [t for t in self.turns if t.changed(tolerance)]

    def changed(self, tolerance: float) -> bool:
        return bool(self.changed_turns(tolerance)) or self.old_outcome != self.new_outcome

    def timing_changes(self) -> int:
        """Turns cut off by the caller at another point (a timing difference, not a change)."""
        return sum(1 for t in self.turns if t.cut_elsewhere)

    def heard_changes(self) -> int:
        return sum(1 for t in self.turns if t.heard_changed)

    def latency_deltas(self) -> list[int]:
        return [d for t in self.turns if (d := t.latency_delta_ms) is not None]


def compare(
    old: list[RecordedTurn], new: list[RecordedTurn], *, old_outcome: str = "", new_outcome: str = ""
) -> CallDiff:
    pairs = []
    for i in range(max(len(old), len(new))):
        a = old[i] if i < len(old) else None
        b = new[i] if i < len(new) else None
        pairs.append(
            TurnDiff(
                number=i + 1,
                old=a,
                new=b,
                answer_distance=word_distance(a.answer, b.answer) if a and b else 1.0,
                heard_changed=bool(a and b and a.heard != b.heard),
                tools_changed=bool(a and b and a.tools != b.tools),
                error_changed=bool(a and b and (a.error is None) != (b.error is None)),
                cut_elsewhere=bool(a and b and cut_elsewhere(a, b)),
            )
        )
    return CallDiff(tuple(pairs), old_outcome, new_outcome)


def cut_elsewhere(old: RecordedTurn, new: RecordedTurn) -> bool:
    """The caller cut the answer off on at least one side, and the answers differ only in where they
    stopped: one's words are the other's first words."""
    if not (old.barge_in or new.barge_in):
        return False
    a, b = words(old.answer), words(new.answer)
    shorter, longer = (a, b) if len(a) <= len(b) else (b, a)
    return a != b and longer[: len(shorter)] == shorter


def _quote(text: str, limit: int = 160) -> str:
    text = " ".join(text.split())
    return repr(text if len(text) <= limit else text[: limit - 1] + "…")


def _ms(value: int | None) -> str:
    return "n/a" if value is None else f"{value} ms"


def render(diff: CallDiff, tolerance: float) -> list[str]:
    lines = []
    for turn in diff.turns:
        changed = turn.changed(tolerance)
        verdict = "CHANGED" if changed else "timing " if turn.cut_elsewhere else "same   "
        label = f"turn {turn.number:<3} {verdict}"
        pad = " " * len(label)
        if turn.old is None or turn.new is None:
            side, present = ("only in the replay", turn.new) if turn.old is None else ("missing", turn.old)
            assert present is not None
            lines.append(f"{label}  {side}: heard {_quote(present.heard)}, answered {_quote(present.answer)}")
            continue
        old, new = turn.old, turn.new
        heard = _quote(old.heard) + ("" if not turn.heard_changed else f" -> {_quote(new.heard)}")
        lines.append(f"{label}  heard:   {heard}")
        if turn.answer_distance > 0:
            lines.append(f"{pad}  answer:  {_quote(old.answer)}")
            why = (
                "cut at another point: a timing difference"
                if turn.cut_elsewhere
                else f"word distance {turn.answer_distance:.2f}"
            )
            lines.append(f"{pad}       ->  {_quote(new.answer)}  ({why})")
        else:
            lines.append(f"{pad}  answer:  {_quote(old.answer)}")
        if old.tools or new.tools:
            tools = ", ".join(old.tools) or "none"
            if turn.tools_changed:
                tools += f" -> {', '.join(new.tools) or 'none'}"
            lines.append(f"{pad}  tools:   {tools}")
        if turn.error_changed:
            lines.append(f"{pad}  error:   {old.error or 'none'} -> {new.error or 'none'}")
        delta = turn.latency_delta_ms
        lines.append(
            f"{pad}  latency: {_ms(old.voice_to_voice_ms)} -> {_ms(new.voice_to_voice_ms)}"
            + ("" if delta is None else f" ({delta:+d} ms)")
            + ("; cut off by the caller" if new.barge_in else "")
        )
    if diff.old_outcome != diff.new_outcome:
        lines.append(
            f"call     CHANGED  ended: {diff.old_outcome or 'unknown'} -> {diff.new_outcome or 'unknown'}"
        )
    return lines
