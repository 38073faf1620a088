"""Reads a recording folder back: meta, events, the three audio tracks, and a stereo WAV to listen to.

Rules:
- ``meta.json`` must exist and be a JSON object with ``"format": 1`` whose fields pass
  ``bot.recording.events.check_meta`` (meta.json is replaced whole by the writer, never torn: a bad field
  means the file was edited); otherwise ``RecordingError`` naming the file and the field. Missing events
  or audio files read as empty (a call killed right after opening).
- events.jsonl: every line is parsed and checked by ``bot.recording.events`` (finite numbers, ``t`` within the
  call, ids ASCII, the fields of the bot's own event types typed as it writes them). An unparseable last line
  without its newline is a write torn by a crash: skipped, ``torn_tail`` set. Any other bad line is skipped
  and counted (``skipped_lines``; the first ``MAX_REASONS`` kept in ``skipped`` as ``events.jsonl:<line>:
  <field>: <what is wrong>``): the rest of the call is still worth showing, and whoever shows it says that
  lines were skipped (the inspector's page; ``bot replay`` refuses to use such a recording as a reference). So
  the events handed on can be trusted by what reads them.
- caller.ulaw is read up to the call's time limit (``events.time_limit_s``: its duration plus a margin,
  or Twilio's longest call while it has none); bytes past it cannot be the call's and are not read
  (their count in ``caller_bytes_ignored``). So the stereo WAV is never longer than that limit plus
  bot.ulaw's length; the inspector's page lays out no audio by time at all (``placed_peaks``).
- Timelines are 8 kHz μ-law, one byte per sample, offset 0 = the recording's t = 0 = the stream start
  (Twilio's media timestamps count from there; the writer is opened when the stream starts).
- Audio as PLAYED is placed by ``bot.recording.playback`` (the format's rule: queued at 8000 bytes/s, a
  ``clear`` drops what had not played). Bytes past the last event's chunk (the process died between
  writing audio and its event) are not placed.
- Pure apart from ``load``, which reads the files once; later calls work on memory.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from bot.recording.events import BadJson, check_event, check_meta, loads, time_limit_s
from bot.recording.format import (
    BOT_AUDIO_FILE,
    BYTES_PER_SECOND,
    CALLER_AUDIO_FILE,
    EVENTS_FILE,
    FORMAT_VERSION,
    META_FILE,
)
from bot.recording.playback import place_bot_audio, ulaw_timeline
from media.codec import ulaw_to_pcm16
from media.wav import interleave_stereo, pcm16_wav


class RecordingError(ValueError):
    """A recording folder that cannot be read; the message names the file and what is wrong."""


@dataclass(frozen=True)
class PlayedSegment:
    start: int  # byte offset on the timeline where this audio starts playing
    audio: bytes  # what actually played (a clear may have cut the chunk short)
    response_id: Any
    mark: Any

    @property
    def end(self) -> int:
        return self.start + len(self.audio)


def played_segments(events: list[dict[str, Any]], sent: bytes) -> list[PlayedSegment]:
    """What the phone played, from the ``bot_audio``/``clear`` events and bot.ulaw (see the rules)."""
    return [
        PlayedSegment(chunk.start, chunk.played_audio(sent), chunk.response_id, chunk.mark)
        for chunk in place_bot_audio(events, len(sent)).chunks
        if chunk.heard
    ]


def render_timeline(segments: list[PlayedSegment]) -> bytes:
    """The segments placed on a μ-law timeline from offset 0, silence (0xFF) in between."""
    return ulaw_timeline((segment.start, segment.audio) for segment in segments)


MAX_REASONS: Final = 20  # skipped lines described; the rest only counted


@dataclass(frozen=True)
class Events:
    events: list[dict[str, Any]]
    torn_tail: bool = False
    skipped_lines: int = 0
    skipped: tuple[str, ...] = ()  # the first MAX_REASONS, "events.jsonl:<line>: <what is wrong>"


def parse_events(raw: bytes, limit_s: float) -> Events:
    """events.jsonl's bytes -> the events the reader hands on, and what it skipped (see the rules)."""
    lines = raw.split(b"\n")
    unterminated = lines[-1] != b""  # the writer ends every line with a newline: a crash may cut one
    if not unterminated:
        lines.pop()
    events: list[dict[str, Any]] = []
    skipped: list[str] = []
    count = 0
    for number, line in enumerate(lines, start=1):
        try:
            event = loads(line)
        except BadJson as exc:
            if number == len(lines) and unterminated:  # cut short by a crash
                return Events(events, True, count, tuple(skipped))
            problem: str | None = f"not JSON ({str(exc)[:200]})"
        else:
            problem = check_event(event, limit_s)
        if problem is None:
            events.append(event)
            continue
        count += 1
        if len(skipped) < MAX_REASONS:
            skipped.append(f"{EVENTS_FILE}:{number}: {problem}")
    return Events(events, False, count, tuple(skipped))


def _read_optional(path: Path, limit: int | None = None) -> tuple[bytes, int]:
    """The file's bytes (at most ``limit``) and how many more it holds; a missing file reads as empty."""
    try:
        with path.open("rb") as file:
            size = os.fstat(file.fileno()).st_size
            # Never read(limit) itself: it allocates ``limit`` bytes before reading any.
            data = file.read(size if limit is None else min(size, limit))
    except FileNotFoundError:
        return b"", 0
    except OSError as exc:
        raise RecordingError(f"{path}: cannot read: {exc}") from exc
    return data, max(0, size - len(data))


class Recording:
    """One recording, fully loaded in memory."""

    def __init__(
        self,
        path: Path,
        meta: dict[str, Any],
        events: list[dict[str, Any]],
        torn_tail: bool,
        caller: bytes,
        bot_sent: bytes,
        *,
        skipped_lines: int = 0,
        skipped: tuple[str, ...] = (),
        caller_bytes_ignored: int = 0,
    ) -> None:
        self.path = path
        self.meta = meta
        self.events = events
        self.torn_tail = torn_tail
        self.skipped_lines = skipped_lines
        self.skipped = skipped
        self.caller_bytes_ignored = caller_bytes_ignored
        self._caller = caller
        self._bot_sent = bot_sent

    @classmethod
    def load(cls, path: Path | str) -> Recording:
        path = Path(path)
        if not path.is_dir():
            raise RecordingError(f"{path}: not a recording folder")
        meta_path = path / META_FILE
        try:
            meta = loads(meta_path.read_bytes())
        except FileNotFoundError as exc:
            raise RecordingError(f"{meta_path}: missing") from exc
        except OSError as exc:
            raise RecordingError(f"{meta_path}: cannot read: {exc}") from exc
        except BadJson as exc:
            raise RecordingError(f"{meta_path}: not JSON ({str(exc)[:200]})") from exc
        if not isinstance(meta, dict):
            raise RecordingError(f"{meta_path}: not a JSON object")
        found = meta.get("format")
        if found != FORMAT_VERSION or isinstance(found, bool):
            raise RecordingError(f"{meta_path}: format {found!r}, this reader knows {FORMAT_VERSION}")
        if (problem := check_meta(meta)) is not None:
            raise RecordingError(f"{meta_path}: {problem}")
        limit_s = time_limit_s(meta)
        parsed = parse_events(_read_optional(path / EVENTS_FILE)[0], limit_s)
        caller, ignored = _read_optional(path / CALLER_AUDIO_FILE, round(limit_s * BYTES_PER_SECOND))
        bot_sent = _read_optional(path / BOT_AUDIO_FILE)[0]
        return cls(
            path,
            meta,
            parsed.events,
            parsed.torn_tail,
            caller,
            bot_sent,
            skipped_lines=parsed.skipped_lines,
            skipped=parsed.skipped,
            caller_bytes_ignored=ignored,
        )

    @property
    def complete(self) -> bool:
        """True only if the call was finalized (not killed mid-call)."""
        return self.meta.get("complete") is True

    def events_of(self, type: str) -> list[dict[str, Any]]:
        return [event for event in self.events if event["type"] == type]

    def caller_ulaw(self) -> bytes:
        """Inbound audio on the timeline (offset 0 = stream start)."""
        return self._caller

    def bot_sent_ulaw(self) -> bytes:
        """Outbound audio as sent, back to back, exactly as stored in bot.ulaw."""
        return self._bot_sent

    def bot_played_segments(self) -> list[PlayedSegment]:
        return played_segments(self.events, self._bot_sent)

    def bot_played_ulaw(self) -> bytes:
        """Outbound audio as played, on the caller's timeline, silence where nothing played."""
        return render_timeline(self.bot_played_segments())

    def stereo_wav(self) -> bytes:
        """8 kHz PCM16 stereo WAV: caller left, bot as played right; the shorter side padded with silence."""
        left = ulaw_to_pcm16(self._caller)
        right = ulaw_to_pcm16(self.bot_played_ulaw())
        return pcm16_wav(interleave_stereo(left, right), sample_rate=8000, channels=2)
