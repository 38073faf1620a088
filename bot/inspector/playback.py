"""Where the bot's audio played: each chunk placed on the call's timeline, grouped into phrases.

Rules:
- The format's rule, as ``bot.recording.reader.played_segments`` applies it: a ``bot_audio`` chunk plays
  from its event's ``t`` or when the audio queued before it ends, at 8000 bytes/s; a ``clear`` at t drops
  what had not played by t. Unlike the reader this never raises: a chunk with a bad offset or size is
  skipped. Each chunk keeps where it would have ended (``end``) next to where it did (``played_end``), so
  what a clear dropped is known: a cut span from the clear to the end of the queue.
- A phrase is the audio of one response sent since that response's previous mark; the ``mark_sent``
  closing it carries its text. A chunk with a mark of its own closes its phrase (text from a later
  ``mark_sent`` of that mark). Chunks left without a mark (the call ended or died first) still form one.
- Pure: events and byte counts in, plain objects out.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from bot.inspector.waveform import Span
from bot.recording.format import BYTES_PER_SECOND, ULAW_SILENCE_BYTE
from bot.recording.reader import Recording


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _str(value: Any) -> str:
    return "" if value is None else str(value)


@dataclass
class Chunk:
    sent_s: float
    offset: int  # in bot.ulaw
    start: int  # timeline byte offsets
    end: int
    played_end: int


@dataclass
class PhraseDraft:
    response_id: str
    mark: str
    text: str
    chunks: list[Chunk]


def place_bot_audio(
    events: list[dict[str, Any]], sent_bytes: int
) -> tuple[list[PhraseDraft], list[Span], dict[str, float]]:
    """Phrases with their chunks placed (see the rules), the cut spans, and each response's first send."""
    phrases: list[PhraseDraft] = []
    by_mark: dict[str, PhraseDraft] = {}
    pending: dict[str, list[Chunk]] = {}
    live: list[Chunk] = []
    cuts: list[Span] = []
    first_sent: dict[str, float] = {}
    queue_end = 0
    for event in events:
        kind, t = event["type"], float(event["t"])
        rid = _str(event.get("response_id"))
        if kind == "bot_audio":
            offset, size = _int(event.get("offset")), _int(event.get("bytes"))
            if offset is None or size is None or offset < 0 or size <= 0:
                continue
            size = min(size, sent_bytes - offset)  # a file cut short by a crash
            if size <= 0:
                continue
            start = max(queue_end, round(t * BYTES_PER_SECOND))
            chunk = Chunk(t, offset, start, start + size, start + size)
            queue_end = chunk.end
            live.append(chunk)
            pending.setdefault(rid, []).append(chunk)
            first_sent.setdefault(rid, t)
            mark = _str(event.get("mark"))
            if mark:  # a chunk that carries its own mark closes its phrase
                draft = PhraseDraft(rid, mark, "", pending.pop(rid))
                phrases.append(draft)
                by_mark[mark] = draft
        elif kind == "clear":
            at = round(t * BYTES_PER_SECOND)
            if queue_end > at:
                cuts.append(Span(round(at / BYTES_PER_SECOND, 3), round(queue_end / BYTES_PER_SECOND, 3)))
            for chunk in reversed(live):
                if chunk.played_end <= at:
                    break
                chunk.played_end = max(chunk.start, at)
            live = [c for c in live if c.played_end > c.start]  # forget what never played
            queue_end = min(queue_end, at)
        elif kind == "mark_sent":
            mark, text = _str(event.get("mark")), _str(event.get("text"))
            if rid in pending:
                draft = PhraseDraft(rid, mark, text, pending.pop(rid))
                phrases.append(draft)
                by_mark[mark] = draft
            elif mark in by_mark and not by_mark[mark].text:
                by_mark[mark].text = text
    for rid, chunks in pending.items():  # never marked: the call ended (or died) first
        phrases.append(PhraseDraft(rid, "", "", chunks))
    phrases.sort(key=lambda d: d.chunks[0].start)
    return phrases, cuts, first_sent


def render_heard(drafts: list[PhraseDraft], sent: bytes) -> bytes:
    """The bot's audio as heard on the timeline, silence (0xFF) between: ``Recording.bot_played_ulaw``
    without its strictness about malformed events."""
    chunks = [c for d in drafts for c in d.chunks if c.played_end > c.start]
    timeline = bytearray(ULAW_SILENCE_BYTE * max((c.played_end for c in chunks), default=0))
    for c in chunks:
        timeline[c.start : c.played_end] = sent[c.offset : c.offset + c.played_end - c.start]
    return bytes(timeline)


def bot_heard_ulaw(recording: Recording) -> bytes:
    """The bot's audio as the caller heard it, placed like the reader places it, on the same timeline."""
    sent = recording.bot_sent_ulaw()
    return render_heard(place_bot_audio(recording.events, len(sent))[0], sent)
