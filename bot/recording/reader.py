"""Reads a recording folder back: meta, events, the three audio tracks, and a stereo WAV to listen to.

Rules:
- ``meta.json`` must exist and be a JSON object with ``"format": 1``; otherwise ``RecordingError``.
  Missing events or audio files read as empty (a call killed right after opening).
- events.jsonl: an unparseable LAST line is a write torn by a crash: skipped, ``torn_tail`` set. Any other
  bad line (unparseable, not an object, no numeric ``t`` or string ``type``, empty) is a
  ``RecordingError`` naming the file and the 1-based line number.
- Timelines are 8 kHz μ-law, one byte per sample, offset 0 = the recording's t = 0 = the stream start
  (Twilio's media timestamps count from there; the writer is opened when the stream starts).
- Audio as PLAYED is placed by ``bot.recording.playback`` (the format's rule: queued at 8000 bytes/s, a
  ``clear`` drops what had not played). Bytes past the last event's chunk (the process died between
  writing audio and its event) are not placed. Unlike the placement, the reader is strict: a
  ``bot_audio`` event whose ``offset`` or ``bytes`` is not an integer is a ``RecordingError``.
- Pure apart from ``load``, which reads the files once; later calls work on memory.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bot.recording.format import (
    BOT_AUDIO_EVENT,
    BOT_AUDIO_FILE,
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
    _check_bot_audio(events)
    return [
        PlayedSegment(chunk.start, chunk.played_audio(sent), chunk.response_id, chunk.mark)
        for chunk in place_bot_audio(events, len(sent)).chunks
        if chunk.heard
    ]


def _check_bot_audio(events: list[dict[str, Any]]) -> None:
    """The reader's strictness: the placement skips a chunk it cannot place, the reader refuses it."""
    for event in events:
        if event.get("type") != BOT_AUDIO_EVENT:
            continue
        offset, size = event.get("offset"), event.get("bytes")
        if not all(isinstance(v, int) and not isinstance(v, bool) for v in (offset, size)):
            raise RecordingError(
                f"bot_audio event at t={event.get('t')}: bad offset/bytes (offset={offset!r}, bytes={size!r})"
            )


def render_timeline(segments: list[PlayedSegment]) -> bytes:
    """The segments placed on a μ-law timeline from offset 0, silence (0xFF) in between."""
    return ulaw_timeline((segment.start, segment.audio) for segment in segments)


def _parse_events(path: Path) -> tuple[list[dict[str, Any]], bool]:
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return [], False
    except OSError as exc:
        raise RecordingError(f"{path}: cannot read: {exc}") from exc
    lines = raw.split(b"\n")
    if lines and lines[-1] == b"":
        lines.pop()  # the newline ending the last complete line
    events: list[dict[str, Any]] = []
    for number, line in enumerate(lines, start=1):
        try:
            event = json.loads(line)
        except ValueError as exc:  # UnicodeDecodeError is a ValueError too
            if number == len(lines):
                return events, True
            raise RecordingError(f"{path}: line {number}: not JSON ({exc})") from exc
        if not isinstance(event, dict):
            raise RecordingError(f"{path}: line {number}: not a JSON object")
        t, kind = event.get("t"), event.get("type")
        if isinstance(t, bool) or not isinstance(t, int | float) or not isinstance(kind, str):
            raise RecordingError(f"{path}: line {number}: needs a numeric 't' and a string 'type'")
        events.append(event)
    return events, False


def _read_optional(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        return b""
    except OSError as exc:
        raise RecordingError(f"{path}: cannot read: {exc}") from exc


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
    ) -> None:
        self.path = path
        self.meta = meta
        self.events = events
        self.torn_tail = torn_tail
        self._caller = caller
        self._bot_sent = bot_sent

    @classmethod
    def load(cls, path: Path | str) -> Recording:
        path = Path(path)
        if not path.is_dir():
            raise RecordingError(f"{path}: not a recording folder")
        meta_path = path / META_FILE
        try:
            meta = json.loads(meta_path.read_bytes())
        except FileNotFoundError as exc:
            raise RecordingError(f"{meta_path}: missing") from exc
        except OSError as exc:
            raise RecordingError(f"{meta_path}: cannot read: {exc}") from exc
        except ValueError as exc:
            raise RecordingError(f"{meta_path}: not JSON ({exc})") from exc
        if not isinstance(meta, dict):
            raise RecordingError(f"{meta_path}: not a JSON object")
        if meta.get("format") != FORMAT_VERSION:
            found = meta.get("format")
            raise RecordingError(f"{meta_path}: format {found!r}, this reader knows {FORMAT_VERSION}")
        events, torn = _parse_events(path / EVENTS_FILE)
        caller = _read_optional(path / CALLER_AUDIO_FILE)
        bot_sent = _read_optional(path / BOT_AUDIO_FILE)
        return cls(path, meta, events, torn, caller, bot_sent)

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
