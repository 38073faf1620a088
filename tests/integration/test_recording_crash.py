"""A recording survives SIGKILL: everything written before the kill reads back, in order, marked incomplete.

A child process (``recording_child.py``) records a fake call in a tight loop; once it has written a few
hundred events the test kills it with SIGKILL and loads the folder. Bounded: the child stops by itself
after 60 s, and the test gives up waiting after 30 s.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from bot.recording import Recording

CHILD = Path(__file__).with_name("recording_child.py")
FRAME, BOT_CHUNK = 160, 400
MIN_EVENTS = 300


def count_ticks(root: Path, call_sid: str) -> int:
    return sum(p.read_bytes().count(b'"type":"tick"') for p in root.glob(f"*/{call_sid}/events.jsonl"))


@pytest.mark.skipif(sys.platform == "win32", reason="SIGKILL is POSIX")
def test_recording_killed_mid_call_reads_back_up_to_the_kill(tmp_path: Path) -> None:
    stderr_path = tmp_path / "child.stderr"
    root = tmp_path / "recordings"
    with stderr_path.open("wb") as stderr:
        child = subprocess.Popen(
            [sys.executable, str(CHILD), str(root), "CAcrash", "60"], stdout=subprocess.DEVNULL, stderr=stderr
        )
    try:
        deadline = time.monotonic() + 30
        while count_ticks(root, "CAcrash") < MIN_EVENTS:
            assert child.poll() is None, f"child exited early: {stderr_path.read_text()}"
            assert time.monotonic() < deadline, "child did not write enough events in 30 s"
            time.sleep(0.02)
    finally:
        os.kill(child.pid, signal.SIGKILL)
        child.wait(timeout=30)
    assert child.returncode == -signal.SIGKILL

    (folder,) = root.glob("*/CAcrash")
    recording = Recording.load(folder)
    assert not recording.complete and recording.meta["flow"] == "crash-test"

    ticks = recording.events_of("tick")
    assert len(ticks) >= MIN_EVENTS
    assert [e["i"] for e in ticks] == list(range(len(ticks)))  # in order, none lost before the kill
    times = [e["t"] for e in recording.events]
    assert times == sorted(times)

    # Caller audio is written before its tick event: at most one frame beyond the last tick.
    caller = recording.caller_ulaw()
    last_end = ticks[-1]["caller_end"]
    assert last_end <= len(caller) <= last_end + FRAME
    assert caller[:FRAME] == bytes([0]) * FRAME
    assert caller[last_end - FRAME : last_end] == bytes([ticks[-1]["i"] % 250]) * FRAME

    # Bot chunks are contiguous; the audio of a chunk is written before its event: at most one chunk extra.
    chunks = recording.events_of("bot_audio")
    assert [e["offset"] for e in chunks] == [n * BOT_CHUNK for n in range(len(chunks))]
    described = len(chunks) * BOT_CHUNK
    sent = recording.bot_sent_ulaw()
    assert len(sent) in (described, described + BOT_CHUNK)
    for event in chunks:
        i = int(event["mark"][1:])
        assert sent[event["offset"] : event["offset"] + BOT_CHUNK] == bytes([i % 250]) * BOT_CHUNK
    played = recording.bot_played_segments()
    assert sum(len(s.audio) for s in played) <= described
    assert recording.stereo_wav().startswith(b"RIFF")
