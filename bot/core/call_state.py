"""The call's state table: which phase a call is in, and what each phase allows.

Rules:
- A call is in one phase at a time, read from the facts its stages own (this module stores nothing, so
  it cannot drift from them). In order of precedence: ``ENDING`` once a goodbye, a hang-up, a transfer or
  a failed socket has begun, whatever else goes on; ``SPEAKING`` while the bot's audio is queued or
  playing; ``THINKING`` while a turn's work runs; ``HEARING`` while the caller is mid-utterance and the
  bot is idle; else ``LISTENING``.
- What each phase allows is one table, ``ALLOWS``:

  | phase     | barge-in | a turn | keys | silence counts |
  |-----------|----------|--------|------|----------------|
  | LISTENING |          | yes    | yes  | yes            |
  | HEARING   |          | yes    | yes  |                |
  | THINKING  | yes      | yes    | yes  |                |
  | SPEAKING  | yes      | yes    | yes  |                |
  | ENDING    |          |        |      |                |

  - Barge-in (caller speech, or the first key of an entry) stops the bot only while it thinks or speaks;
    the line must allow it and no line the caller may not cut be still unheard (the Call's two other
    conditions, which are not phases).
  - A turn (the end of an utterance, a keypad entry, and the speculation before it) and keys are taken
    until the call is ending: then nothing more is answered.
  - Silence (``bot.core.silence``) counts only while nobody is doing anything: the caller's quiet while
    the bot is busy, or while they are still talking, is not silence.
- Pure: no asyncio, no clock, no I/O. Model: h11's ``_state.py`` (states and what each allows, as data).
"""

from __future__ import annotations

from enum import StrEnum


class Phase(StrEnum):
    LISTENING = "listening"
    HEARING = "hearing"
    THINKING = "thinking"
    SPEAKING = "speaking"
    ENDING = "ending"


class Act(StrEnum):
    BARGE_IN = "barge_in"
    TURN = "turn"
    KEYS = "keys"
    SILENCE_COUNTS = "silence_counts"


ALLOWS: dict[Phase, frozenset[Act]] = {
    Phase.LISTENING: frozenset({Act.TURN, Act.KEYS, Act.SILENCE_COUNTS}),
    Phase.HEARING: frozenset({Act.TURN, Act.KEYS}),
    Phase.THINKING: frozenset({Act.BARGE_IN, Act.TURN, Act.KEYS}),
    Phase.SPEAKING: frozenset({Act.BARGE_IN, Act.TURN, Act.KEYS}),
    Phase.ENDING: frozenset(),
}


def phase_of(*, ending: bool, speaking: bool, thinking: bool, hearing: bool) -> Phase:
    """The phase these facts put the call in (see the rules for the precedence)."""
    if ending:
        return Phase.ENDING
    if speaking:
        return Phase.SPEAKING
    if thinking:
        return Phase.THINKING
    if hearing:
        return Phase.HEARING
    return Phase.LISTENING


def allows(phase: Phase, act: Act) -> bool:
    return act in ALLOWS[phase]
