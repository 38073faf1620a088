"""Per-turn figures: one log line per turn, never per frame.

All times are monotonic seconds from the Call's clock; the log line carries durations in ms from
the moment the endpointer decided the caller had finished (``end_silence_ms`` after their last word).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

from bot.call.agent import TurnTimings
from bot.call.progress import Companion


@dataclass
class Turn:
    number: int
    speech_end_at: float
    utterance_ms: int
    end_silence_ms: int
    end_ms: int = 0  # stream time the caller's last word ended (identifies a speculation)
    audio: bytes = b""
    history_mark: int = 0  # conversation length before this turn (to undo a speculation)
    confirmed: asyncio.Event = field(default_factory=asyncio.Event)  # the endpointer confirmed the end
    after: asyncio.Task[None] | None = None  # a turn still running that this one must follow
    transcript: str = ""
    typed: str | None = None  # keypad digits, as the model reads them (no speech to transcribe)
    stt_done_at: float | None = None
    first_phrase_at: float | None = None
    first_audio_at: float | None = None
    first_heard_at: float | None = None  # estimated: first phrase's mark echo minus its audio length
    response_ids: set[int] = field(default_factory=set)
    said: dict[int, list[str]] = field(default_factory=dict)  # phrases handed to the speaker
    timings: TurnTimings = field(default_factory=TurnTimings)
    silence_filler: bool = False
    company: Companion | None = None  # keeps the caller company while the answer is slow
    progress_lines: int = 0  # said by it
    barge_in: bool = False
    error: str | None = None
    finished: bool = False
    logged: bool = False

    def add_phrase(self, response_id: int, text: str, now: float) -> None:
        self.response_ids.add(response_id)
        self.said.setdefault(response_id, []).append(text)
        if self.first_phrase_at is None:
            self.first_phrase_at = now

    def audio_started(self, response_id: int, at: float) -> bool:
        """The first frame of ``response_id`` went out at ``at``: True if that is this turn's first audio."""
        if response_id not in self.response_ids or self.first_audio_at is not None:
            return False
        self.first_audio_at = at
        return True

    def played(self, response_id: int, at: float, seconds: float) -> bool:
        """A phrase of ``response_id``, ``seconds`` long, came back played at ``at``: True if that is the
        first this turn's caller heard (they started hearing it ``seconds`` before)."""
        if response_id not in self.response_ids or self.first_heard_at is not None:
            return False
        self.first_heard_at = at - seconds
        return True

    def said_text(self, response_id: int) -> str:
        return " ".join(self.said.get(response_id, []))

    def _ms(self, t: float | None) -> int | None:
        return None if t is None else round((t - self.speech_end_at) * 1000)

    def content(self) -> dict[str, Any]:
        """What was heard and said in this turn, and each model request's answer (recordings only)."""
        return {
            "transcript": self.transcript,
            "typed_text": self.typed,
            "said": {str(rid): self.said_text(rid) for rid in sorted(self.said)},
            "llm": self.timings.rounds,
        }

    def figures(self) -> dict[str, Any]:
        t = self.timings
        first_token = t.first_tokens[0] if t.first_tokens else None
        llm_ttft = (
            round((t.first_tokens[0] - t.llm_requests[0]) * 1000)
            if t.first_tokens and t.llm_requests
            else None
        )
        audio_ms = self._ms(self.first_audio_at)
        heard_ms = self._ms(self.first_heard_at)
        return {
            "turn": self.number,
            "utterance_ms": self.utterance_ms,
            "typed": self.typed is not None,
            "transcript_chars": len(self.transcript),
            "stt_ms": self._ms(self.stt_done_at),
            "llm_first_token_ms": self._ms(first_token),
            "llm_ttft_ms": llm_ttft,
            "llm_requests": len(t.llm_requests),
            "first_phrase_ms": self._ms(self.first_phrase_at),
            "first_audio_sent_ms": audio_ms,
            "first_audio_heard_ms": heard_ms,
            # What the caller perceives: their silence before the bot speaks, from when playback began
            # at the phone (estimated from the mark echo) or else from when the audio was sent.
            "voice_to_voice_ms": None
            if audio_ms is None
            else (heard_ms if heard_ms is not None else audio_ms) + self.end_silence_ms,
            "tools": t.tool_calls,
            "tool_filler": t.filler,
            "silence_filler": self.silence_filler,
            "progress_lines": self.progress_lines,
            "barge_in": self.barge_in,
            "error": self.error,
        }
