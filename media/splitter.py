"""Which phrase each byte of one streamed answer belongs to, when the stream does not say.

One ``StreamingSynthesize`` call carries every phrase of an answer, and its responses carry audio only:
``StreamingSynthesizeResponse`` has a single field, ``audio_content`` (google-cloud-texttospeech 2.38.0,
``texttospeech_v1/types/cloud_tts.py``), so nothing maps the audio back to the inputs. The bot still puts
a Twilio mark after each phrase, and history keeps the phrases whose marks came back (``bot/core/heard.py``),
so the boundaries are estimated here.

Rules:
- Inputs are synthesized in the order they were sent and their audio follows in that order (the docs'
  bidirectional sample plays the responses as one stream; livekit-agents' Google plugin emits one
  stream's audio as one segment). Audio is only ever given to a phrase already pushed: bytes that
  arrived before phrase N+1 was pushed belong to phrases up to N, exactly.
- A phrase is estimated to last ``len(text) * bytes_per_char`` bytes, starting where the previous
  estimate ended (or, if later, where the audio stood when it was pushed).
- The hand-over to the next phrase is put ``margin`` of the phrase's estimated length *after* its
  estimated end (never past the next phrase's estimated end, never before the next phrase was pushed):
  a mark then errs late, so a phrase cut near its end counts as unheard. This is the side ``MarkTracker``
  already errs on.
- Error bound: the hand-over after phrase k is off by the cumulative estimation error of phrases
  1..k since the last re-anchoring push, plus up to ``margin * L_k`` late. It is exact at the end of the
  stream (the last phrase takes the rest). With durations proportional to characters at the learned rate
  (the emulator), the only error is the margin.
- Every byte is assigned exactly once, in order; phrase indices never decrease.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

MARGIN = 0.15  # of a phrase's estimated length: how late its mark may go out


@dataclass(frozen=True)
class _Slot:
    start: float  # estimated first byte
    length: float  # estimated bytes
    pushed_at: int  # bytes received when it was pushed: it cannot start earlier


class PhraseSplitter:
    def __init__(self, bytes_per_char: float, margin: float = MARGIN) -> None:
        if bytes_per_char <= 0 or margin < 0:
            raise ValueError("bytes_per_char must be > 0 and margin >= 0")
        self.bytes_per_char = bytes_per_char
        self.margin = margin
        self._slots: list[_Slot] = []
        self.received = 0  # bytes assigned so far
        self.current = 0  # the phrase the next byte goes to; every phrase before it is complete
        self.chars = 0

    def __len__(self) -> int:
        return len(self._slots)

    def push(self, text: str) -> int:
        """A phrase sent on the stream after the earlier ones; returns its index."""
        chars = max(1, len(text.strip()))
        self.chars += chars
        previous = self._slots[-1] if self._slots else None
        start = max(previous.start + previous.length if previous else 0.0, float(self.received))
        self._slots.append(_Slot(start, chars * self.bytes_per_char, self.received))
        self._advance()
        return len(self._slots) - 1

    def _hand_over(self, index: int) -> int:
        """The byte position where phrase ``index`` hands over to ``index + 1`` (which exists)."""
        this, after = self._slots[index], self._slots[index + 1]
        late = min(this.start + this.length * (1 + self.margin), after.start + after.length)
        return max(math.ceil(late), after.pushed_at)

    def _advance(self) -> None:
        while self.current + 1 < len(self._slots) and self.received >= self._hand_over(self.current):
            self.current += 1

    def feed(self, audio: bytes) -> list[tuple[int, bytes]]:
        """Assigns the stream's next bytes: (phrase index, piece) in order, pieces never empty."""
        if not self._slots:
            raise ValueError("audio arrived before any text was pushed")
        out: list[tuple[int, bytes]] = []
        offset = 0
        while offset < len(audio):
            self._advance()
            if self.current + 1 < len(self._slots):
                room = self._hand_over(self.current) - self.received
            else:
                room = len(audio) - offset  # the last phrase pushed takes everything until another comes
            piece = audio[offset : offset + room]
            out.append((self.current, piece))
            offset += len(piece)
            self.received += len(piece)
        self._advance()
        return out
