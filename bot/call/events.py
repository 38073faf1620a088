"""What a call's stages tell the Call: small frozen events, each a fact about what happened.

Rules:
- News travels up only as these events: a stage is given one ``post`` and knows nothing else of its
  owner; the Call dispatches every event in one place (``Call._on``, one ``match``).
- Posting is synchronous: the Call has handled an event when ``post`` returns, so the call's state (a
  turn's figures, the recording, what waits for a line to be heard) follows the stage's news in the order
  it happened, at the time it happened; events carry no time of their own.
- An event names what happened, never what the owner should do with it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from bot.call.turns import Turn
from media.errors import ProviderError

# ---- the Speaker's ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class AudioStarted:
    """The first frame of ``response_id`` went out (once per response)."""

    response_id: int


@dataclass(frozen=True)
class AudioSent:
    """Frames of ``response_id`` went out (what a recording keeps as the bot's audio)."""

    response_id: int
    audio: bytes


@dataclass(frozen=True)
class MarkSent:
    """A phrase's mark went out after its audio: the phrase is the audio sent since the previous mark."""

    response_id: int
    mark: str
    text: str


@dataclass(frozen=True)
class Played:
    """A phrase's mark came back played; the caller started hearing it ``seconds`` (its audio's length)
    before the echo. ``all_heard``: nothing of ``response_id`` is left to send or to play."""

    response_id: int
    seconds: float
    all_heard: bool


@dataclass(frozen=True)
class SpeechFailed:
    """Synthesis of ``response_id`` failed; every queued phrase was dropped."""

    response_id: int
    error: ProviderError


SpeakerEvent = AudioStarted | AudioSent | MarkSent | Played | SpeechFailed

# ---- TurnTaking's ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class SpeculationDropped:
    """The caller went on talking: the speculative ``turn`` was cancelled and never happened."""

    turn: Turn


TurnEvent = SpeculationDropped

CallEvent = SpeakerEvent | TurnEvent
Post = Callable[[CallEvent], None]
