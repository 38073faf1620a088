"""Retention on a real folder: ``LocalStore`` writes real recordings, ``RetentionSweeper`` removes them.

Rules checked here: the sweeper deletes finished recordings oldest first down to the byte cap and those
past the age limit; a recording being written (its sink's lock held, in this process or a child one) is
kept even when it alone is over the cap, and goes once finished; what a killed process left goes once
abandoned; 100 simulated call-minutes stay under the cap where, without one, they keep growing.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

from bot.recording import CallRecorder, LocalStore
from bot.recording.retention import ABANDONED_AFTER_S, RetentionPolicy, RetentionSweeper

STARTED = datetime(2026, 12, 1, 9, tzinfo=UTC)
CALL_MINUTE_BYTES = 760_000  # what a call-minute records (caller 480 kB, the bot's speech, events)


def record(store: LocalStore, sid: str, size: int, *, finish: bool = True) -> CallRecorder:
    recorder = CallRecorder(store.create(sid, STARTED))
    recorder.start(call_sid=sid)
    recorder.bot_audio(b"\xff" * size, response_id=1, mark="m1")
    if finish:
        recorder.finalize(ended_by="caller")
    return recorder


def age(root: Path, recording_id: str, seconds: float) -> None:
    moment = time.time() - seconds
    folder = root / recording_id
    for path in [*folder.iterdir(), folder]:
        os.utime(path, (moment, moment))


def on_disk(root: Path) -> int:
    return sum(p.stat().st_size for p in root.rglob("*") if p.is_file())


def test_old_recordings_go_oldest_first_and_a_live_one_stays(tmp_path: Path) -> None:
    store = LocalStore(tmp_path)
    old = [record(store, f"CAold{n}", 50_000).recording_id for n in range(6)]
    for n, recording_id in enumerate(old):
        age(tmp_path, recording_id, 3600 - n * 60)  # old[0] the oldest
    age(tmp_path, old[5], 3 * 86_400)  # past the age limit, though not the oldest otherwise
    live = record(store, "CAlive", 200_000, finish=False)  # alone over the cap
    sweeper = RetentionSweeper(tmp_path, RetentionPolicy(max_age_s=86_400, max_bytes=150_000))

    result = sweeper.sweep()

    assert [(d.id, d.reason) for d in result.deleted] == [
        (old[5], "age"),
        *((i, "bytes") for i in old[:5]),
    ]
    assert (tmp_path / live.recording_id / "bot.ulaw").stat().st_size == 200_000
    assert sorted(p.name for p in (tmp_path / "2026-12-01").iterdir()) == ["CAlive"]
    live.caller_audio(0, b"\x01" * 160)  # still recording, untouched
    live.finalize(ended_by="caller")
    assert [d.id for d in sweeper.sweep().deleted] == [live.recording_id]  # finished, over the cap
    assert not (tmp_path / "2026-12-01").exists()  # empty day folders go too


def test_a_recording_held_by_another_process_stays_and_an_abandoned_one_goes(tmp_path: Path) -> None:
    store = LocalStore(tmp_path)
    killed = record(store, "CAkilled", 10_000, finish=False)
    killed._sink.close()  # the process died: its lock is gone, its meta is not complete
    age(tmp_path, killed.recording_id, ABANDONED_AFTER_S + 60)
    child = subprocess.Popen(  # a live call in another process: holds its folder's lock until told
        [sys.executable, "-c", _CHILD, str(tmp_path)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert child.stdout is not None and child.stdin is not None
        other = child.stdout.readline().strip()
        age(tmp_path, other, 10 * 86_400)  # even stale and old: held means live
        sweeper = RetentionSweeper(tmp_path, RetentionPolicy(max_age_s=86_400, max_bytes=1))
        assert [(d.id, d.reason) for d in sweeper.sweep().deleted] == [(killed.recording_id, "bytes")]
        assert (tmp_path / other / "bot.ulaw").exists()
        child.stdin.write("\n")
        child.stdin.flush()
        assert child.wait(timeout=30) == 0
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
    assert [d.id for d in sweeper.sweep().deleted] == [other]


_CHILD = """
import sys
from datetime import UTC, datetime
from pathlib import Path
from bot.recording import CallRecorder, LocalStore
recorder = CallRecorder(LocalStore(Path(sys.argv[1])).create("CAother", datetime(2026, 12, 1, tzinfo=UTC)))
recorder.start(call_sid="CAother")
recorder.bot_audio(b"\\xff" * 1000, response_id=1, mark="m1")
print(recorder.recording_id, flush=True)
sys.stdin.readline()
recorder.finalize(ended_by="caller")
"""


def test_a_hundred_call_minutes_stay_under_the_cap(tmp_path: Path) -> None:
    """The figure for the note: bytes on disk after 100 one-minute calls, swept as they end, or not."""
    cap = 10 * CALL_MINUTE_BYTES
    capped, uncapped = tmp_path / "capped", tmp_path / "uncapped"
    sweeper = RetentionSweeper(capped, RetentionPolicy(max_bytes=cap))
    highest = 0
    for n in range(100):
        for root in (capped, uncapped):
            record(LocalStore(root), f"CA{n:03d}", CALL_MINUTE_BYTES)
        sweeper.sweep()
        highest = max(highest, on_disk(capped))
    print(f"100 call-minutes: {on_disk(uncapped)} bytes without a cap, at most {highest} with {cap}")
    assert highest <= cap and on_disk(uncapped) > 100 * CALL_MINUTE_BYTES
    assert len(list(capped.glob("*/*"))) == cap // (CALL_MINUTE_BYTES + 1_000)  # the newest 9 calls
