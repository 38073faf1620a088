"""A call's recording as an operator reads it back (``Recording.load``), for the end-to-end tests.

Rules:
- What was kept comes from the call's recording in the bench's recordings folder, read with the product's
  own reader; ``assert_finalized`` holds a recording to what a finished call leaves behind.
"""

from __future__ import annotations

import json
from pathlib import Path

from bot.recording import Recording
from bot.sim.rig import Bench


def recording_of(b: Bench, call_sid: str) -> Recording:
    """The recording of ``call_sid`` in the bench's recordings folder (exactly one)."""
    found = []
    for meta in Path(b.settings.recordings_dir).glob("*/*/meta.json"):
        if json.loads(meta.read_bytes()).get("call_sid") == call_sid:
            found.append(meta.parent)
    assert len(found) == 1, found
    return Recording.load(found[0])


def assert_finalized(recording: Recording, *, turns: int | None = None) -> None:
    """The recording is complete and readable end to end: meta, events, both audio tracks."""
    assert recording.complete and not recording.torn_tail, recording.meta
    assert recording.skipped == (), recording.skipped  # every line the bot writes passes the reader
    assert recording.events_of("call_ended"), "no call_ended event"
    recording.stereo_wav()  # every track and event places without error
    if turns is not None:
        assert recording.meta.get("turns") == turns, recording.meta
