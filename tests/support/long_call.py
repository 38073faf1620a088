"""A long recorded call written straight to disk, in the recording's on-disk format, for the inspector's WAV
and load tests.

Rules:
- The audio is a fixed byte pattern, not speech: the tests measure what the inspector reads, caches and
  serves, not what it sounds like. The bot speaks one second in three, so its track has gaps to place.
"""

from __future__ import annotations

import json
from pathlib import Path


def write_long_call(root: Path, minutes: float, sid: str = "CAlong0001", day: str = "2026-12-03") -> str:
    """A recording of ``minutes`` of caller audio, the bot speaking one second in three; its id."""
    folder = root / day / sid
    folder.mkdir(parents=True)
    seconds = round(minutes * 60)
    meta = {"format": 1, "call_sid": sid, "started_at": f"{day}T10:00:00+00:00", "complete": True}
    (folder / "meta.json").write_text(json.dumps(meta))
    (folder / "caller.ulaw").write_bytes(bytes(i * 37 % 256 for i in range(8000)) * seconds)
    second = bytes(i * 11 % 256 for i in range(8000))
    starts = range(0, seconds, 3)
    (folder / "bot.ulaw").write_bytes(second * len(starts))
    events = [
        {
            "t": float(t),
            "type": "bot_audio",
            "offset": n * 8000,
            "bytes": 8000,
            "response_id": f"r{n}",
            "mark": "",
        }
        for n, t in enumerate(starts)
    ]
    (folder / "events.jsonl").write_text("".join(json.dumps(event) + "\n" for event in events))
    return f"{day}/{sid}"
