"""MarkTracker: which phrases of bot speech the caller actually heard.

Rules:
- Each phrase is sent as audio followed by a mark. ``sent`` registers the phrase as *pending* and
  returns a fresh mark name, unique for the tracker's lifetime (``r<response>-p<n>``, n counting
  across all responses), so a late echo can never be mistaken for a newer phrase.
- Twilio echoes a mark when the audio before it has played, and also echoes every pending mark
  when we send ``clear``. An echo alone therefore means "played or cleared"; the tracker knows which
  because ``clear`` is recorded first: ``clear`` turns every pending phrase into *cleared* (unheard).
- An echo of a pending phrase settles it as *played* (PLAYED). The first echo of a cleared phrase is
  the one Twilio sends after ``clear``: it returns CLEARED and changes nothing. Any other echo (a
  name we never sent, forgot, or already had echoed) returns UNKNOWN and changes nothing.
- Each phrase settles exactly once: pending -> played or pending -> cleared, never back.
- A mark whose "played" echo was already on its way when we sent ``clear`` is counted as cleared.
  That is the conservative side: at worst the bot believes one phrase was unheard.
- ``heard_text`` is the played phrases of a response in send order, each stripped and joined by a
  single space; ``unheard_text`` the same for cleared phrases.
- Every phrase is kept for the whole call: ``heard_text`` may be asked of a response long after its
  phrases settled (an answer whose tools a barge-in cut), and the call's history holds the same text,
  so the tracker grows no faster than the conversation does (bounded by the line's ``max_call_s``).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Literal

PhraseState = Literal["pending", "played", "cleared"]


class EchoResult(StrEnum):
    PLAYED = "played"
    CLEARED = "cleared"
    UNKNOWN = "unknown"  # a mark we never sent, or one already settled and echoed


@dataclass(frozen=True)
class SpokenPhrase:
    mark: str
    response_id: int
    text: str
    state: PhraseState


@dataclass
class _Entry:
    mark: str
    response_id: int
    text: str
    state: PhraseState = "pending"
    # For cleared phrases: whether Twilio's echo after clear has arrived yet.
    clear_echo_seen: bool = False

    def snapshot(self) -> SpokenPhrase:
        return SpokenPhrase(mark=self.mark, response_id=self.response_id, text=self.text, state=self.state)


class MarkTracker:
    def __init__(self) -> None:
        # Insertion order is send order; dicts keep it.
        self._entries: dict[str, _Entry] = {}
        self._pending: dict[str, _Entry] = {}
        self._next_number = 1

    def sent(self, text: str, response_id: int) -> str:
        """Registers a phrase whose audio was just sent; returns the mark name to send after it."""
        name = f"r{response_id}-p{self._next_number}"
        self._next_number += 1
        entry = _Entry(mark=name, response_id=response_id, text=text)
        self._entries[name] = entry
        self._pending[name] = entry
        return name

    def echoed(self, name: str) -> EchoResult:
        """Records Twilio's echo of a mark."""
        entry = self._entries.get(name)
        if entry is None:
            return EchoResult.UNKNOWN
        if entry.state == "pending":
            entry.state = "played"
            del self._pending[name]
            return EchoResult.PLAYED
        if entry.state == "cleared" and not entry.clear_echo_seen:
            entry.clear_echo_seen = True
            return EchoResult.CLEARED
        return EchoResult.UNKNOWN

    def clear(self) -> list[SpokenPhrase]:
        """We just sent ``clear``: every pending phrase becomes cleared (unheard). Returns them."""
        cleared: list[SpokenPhrase] = []
        for entry in self._pending.values():
            entry.state = "cleared"
            cleared.append(entry.snapshot())
        self._pending.clear()
        return cleared

    def _texts(self, response_id: int, state: PhraseState) -> str:
        texts = (
            e.text.strip()
            for e in self._entries.values()
            if e.response_id == response_id and e.state == state
        )
        return " ".join(t for t in texts if t)

    def heard_text(self, response_id: int) -> str:
        return self._texts(response_id, "played")

    def unheard_text(self, response_id: int) -> str:
        return self._texts(response_id, "cleared")

    def pending(self, response_id: int | None = None) -> int:
        """Phrases sent but neither echoed nor cleared (of one response, or of all if None)."""
        if response_id is None:
            return len(self._pending)
        return sum(1 for e in self._pending.values() if e.response_id == response_id)

    @property
    def speaking(self) -> bool:
        """True while any sent phrase may still be playing at Twilio."""
        return bool(self._pending)

    def is_played(self, name: str) -> bool:
        entry = self._entries.get(name)
        return entry is not None and entry.state == "played"

    def phrases(self, response_id: int) -> list[SpokenPhrase]:
        """Snapshots of a response's phrases in send order (for logs and tests)."""
        return [e.snapshot() for e in self._entries.values() if e.response_id == response_id]
