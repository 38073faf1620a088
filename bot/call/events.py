"""What a call's stages tell the Call: small frozen events, each a fact about what happened.

Rules:
- News travels up only as these events: a stage is given one ``post`` and knows nothing else of its
  owner. ``post`` puts the event in the Call's inbox, which the Call's one loop (``Call.run``) reads
  together with the stream's frames, in the order they arrived, and dispatches with one ``match``.
- The inbox stamps each item with the time it arrived, and the Call's figures (first audio, first heard)
  use that time, not the time the loop came round to it; so events carry no time of their own.
- Posting never blocks and never fails: a stage posting from its own task does not wait for the Call.
- An event names what happened, never what the owner should do with it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

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

# ---- the telephony side's --------------------------------------------------------------------------


@dataclass(frozen=True)
class Tick:
    """The supervisor's clock ticked: silence, keypad timeouts and the call's length are due a look."""


@dataclass(frozen=True)
class LineReleased:
    """Twilio was asked to end the call (``hang_up``, whatever it answered) or took it elsewhere
    (``transfer``): this stream has nothing more to carry."""

    why: str


TelephonyEvent = Tick | LineReleased

# ---- the media socket's ----------------------------------------------------------------------------


@dataclass(frozen=True)
class SocketFailed:
    """The media socket failed (not a hang-up): ``reason`` as ``bot.server.media_socket`` names it."""

    reason: str
    close_code: int | None


CallEvent = SpeakerEvent | TelephonyEvent | SocketFailed
Post = Callable[[CallEvent], None]
