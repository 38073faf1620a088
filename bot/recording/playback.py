"""Where the bot's audio played: each ``bot_audio`` chunk placed on the call's timeline, grouped into phrases.

Rules:
- Placement (the format's rule, like the phone does it): a chunk arrives at its event's ``t`` and plays at
  8000 bytes/s from then, or from when the audio queued before it ends; a ``clear`` at t drops whatever
  had not played by t. What it dropped is a cut span, from t to where the queue would have ended. Each
  chunk keeps where it would have ended (``end``) next to where it did (``played_end``).
- Tolerant: a chunk whose ``offset``/``bytes`` are not integers, or that holds no byte of bot.ulaw (a
  negative offset, a size <= 0, past the end of a file cut short by a crash), is skipped. Nothing in the
  events' other fields can make this raise; a numeric ``t`` and a ``type`` are assumed (the reader
  guarantees them). Refusing malformed events is the reader's job, not this module's.
- Phrases: a phrase is the audio of one response sent since that response's previous mark; the
  ``mark_sent`` closing it carries its mark and text. A chunk with a mark of its own closes its phrase
  (the text comes from a later ``mark_sent`` of that mark). A ``clear`` closes every open phrase without
  a mark (it was cut), as does the end of the events (the call ended or died first).
- Phrases' response ids, marks and texts are strings (missing = ""); chunks keep the event's values as
  they are. Chunks and phrases come in send order (a phrase's place is its first chunk's).
- Pure: events and a byte count in, frozen values out; audio is sliced out of bot.ulaw on demand.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from typing import Any

from bot.recording.format import BOT_AUDIO_EVENT, CLEAR_EVENT, ULAW_SILENCE_BYTE, seconds_to_offset

_MARK_SENT_EVENT = "mark_sent"  # written by the bot (``CallJournal``), not by the recorder itself


@dataclass(frozen=True)
class PlacedChunk:
    """One ``bot_audio`` chunk on the timeline; ``start``/``end``/``played_end`` are timeline byte offsets."""

    sent_s: float  # its event's t
    offset: int  # where its audio is in bot.ulaw
    start: int  # plays from here
    end: int  # would have played until here
    played_end: int  # did play until here (start: a clear dropped all of it)
    response_id: Any  # as the event has them
    mark: Any

    @property
    def heard(self) -> bool:
        return self.played_end > self.start

    @property
    def cut(self) -> bool:
        return self.played_end < self.end

    def sent_audio(self, sent: bytes) -> bytes:
        """The whole chunk, as sent."""
        return sent[self.offset : self.offset + self.end - self.start]

    def played_audio(self, sent: bytes) -> bytes:
        """What of it played (a clear may have cut its tail)."""
        return sent[self.offset : self.offset + self.played_end - self.start]


@dataclass(frozen=True)
class PlacedPhrase:
    response_id: str
    mark: str  # "" when never marked: cut by a clear, or the call ended first
    text: str
    chunks: tuple[PlacedChunk, ...]  # never empty, in send order


@dataclass(frozen=True)
class CutSpan:
    """Bot audio queued but dropped by a clear, as timeline byte offsets."""

    start: int
    end: int


@dataclass(frozen=True)
class BotPlayback:
    chunks: tuple[PlacedChunk, ...]
    phrases: tuple[PlacedPhrase, ...]
    cuts: tuple[CutSpan, ...]

    def first_sent(self) -> dict[str, float]:
        """Response id -> when its first chunk was sent."""
        first: dict[str, float] = {}
        for phrase in self.phrases:
            first.setdefault(phrase.response_id, phrase.chunks[0].sent_s)
        return first


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _str(value: Any) -> str:
    return "" if value is None else str(value)


@dataclass
class _OpenPhrase:
    response_id: str
    mark: str = ""
    text: str = ""
    chunks: list[int] = field(default_factory=list)  # indexes into the placed chunks


def place_bot_audio(events: Iterable[dict[str, Any]], sent_bytes: int) -> BotPlayback:
    """Every chunk of bot.ulaw (``sent_bytes`` long) placed and grouped into phrases (see the rules)."""
    chunks: list[PlacedChunk] = []
    played_end: list[int] = []  # per chunk; lowered by clears, frozen into the chunks at the end
    closed: list[_OpenPhrase] = []
    open_phrases: dict[str, _OpenPhrase] = {}
    by_mark: dict[str, _OpenPhrase] = {}
    cuts: list[CutSpan] = []
    queue_end = 0  # timeline offset where the audio queued so far finishes playing

    def close(phrase: _OpenPhrase, mark: str, text: str) -> None:
        phrase.mark, phrase.text = mark, text
        closed.append(phrase)
        if mark:
            by_mark[mark] = phrase

    for event in events:
        kind, rid = event["type"], _str(event.get("response_id"))
        if kind == BOT_AUDIO_EVENT:
            offset, size = _int(event.get("offset")), _int(event.get("bytes"))
            if offset is None or size is None or offset < 0:
                continue
            size = min(size, sent_bytes - offset)
            if size <= 0:
                continue
            t = float(event["t"])
            start = max(queue_end, seconds_to_offset(t))
            queue_end = start + size
            raw_rid, raw_mark = event.get("response_id"), event.get("mark")
            chunks.append(PlacedChunk(t, offset, start, queue_end, queue_end, raw_rid, raw_mark))
            played_end.append(queue_end)
            phrase = open_phrases.setdefault(rid, _OpenPhrase(rid))
            phrase.chunks.append(len(chunks) - 1)
            if mark := _str(event.get("mark")):
                close(open_phrases.pop(rid), mark, "")
        elif kind == CLEAR_EVENT:
            at = seconds_to_offset(float(event["t"]))
            if queue_end > at:
                cuts.append(CutSpan(at, queue_end))
            # One voice at a time in send order: only the tail of the chunks can reach past `at`.
            for index in reversed(range(len(chunks))):
                if played_end[index] <= at:
                    break
                played_end[index] = max(chunks[index].start, at)
            queue_end = min(queue_end, at)
            for phrase in open_phrases.values():
                close(phrase, "", "")
            open_phrases.clear()
        elif kind == _MARK_SENT_EVENT:
            mark, text = _str(event.get("mark")), _str(event.get("text"))
            if rid in open_phrases:
                close(open_phrases.pop(rid), mark, text)
            elif mark in by_mark and not by_mark[mark].text:
                by_mark[mark].text = text
    closed.extend(open_phrases.values())  # never marked: the call ended (or died) first

    placed = tuple(replace(c, played_end=p) for c, p in zip(chunks, played_end, strict=True))
    closed.sort(key=lambda phrase: phrase.chunks[0])
    phrases = tuple(
        PlacedPhrase(p.response_id, p.mark, p.text, tuple(placed[i] for i in p.chunks)) for p in closed
    )
    return BotPlayback(placed, phrases, tuple(cuts))


def ulaw_timeline(pieces: Iterable[tuple[int, bytes]]) -> bytes:
    """(start offset, audio) pieces laid on a μ-law timeline from offset 0, silence (0xFF) in between."""
    timeline = bytearray()
    for start, audio in pieces:
        if len(timeline) < start + len(audio):
            timeline += ULAW_SILENCE_BYTE * (start + len(audio) - len(timeline))
        timeline[start : start + len(audio)] = audio
    return bytes(timeline)


def render_heard(chunks: Iterable[PlacedChunk], sent: bytes) -> bytes:
    """The bot's audio as the caller heard it, on the timeline, silence where nothing played."""
    return ulaw_timeline((c.start, c.played_audio(sent)) for c in chunks if c.heard)
