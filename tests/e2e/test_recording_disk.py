"""Recordings cannot fill the pod's disk (issue 14, item 2): a real server with the emulators.

Rules checked here: the server sweeps its recordings folder while calls go on (age and byte limits),
never touching the live call's recording; with the volume's free space under ``RECORDING_MIN_FREE_BYTES``
recordings pause, the call goes on and is answered, one ``recording_paused`` warning is logged and
``/metrics`` shows the pause and the audio dropped.
"""

from __future__ import annotations

import asyncio
import os
import time
from datetime import UTC, datetime
from pathlib import Path

import structlog

from bot.recording import CallRecorder, LocalStore, Recording
from bot.sim.rig import bench
from tests.support.metrics import scrape
from tests.support.phone import a_call_ended, ask_after_greeting

OLD = datetime(2026, 11, 1, 9, tzinfo=UTC)


def recording_ids(root: Path) -> set[str]:
    return {p.parent.relative_to(root).as_posix() for p in root.glob("*/*/meta.json")}


def old_recording(root: Path, n: int, size: int, age_s: float) -> str:
    recorder = CallRecorder(LocalStore(root).create(f"CAold{n}", OLD))
    recorder.start(call_sid=f"CAold{n}")
    recorder.bot_audio(b"\xff" * size, response_id=1, mark="m1")
    recorder.finalize(ended_by="caller")
    folder, moment = root / recorder.recording_id, time.time() - age_s
    for path in [*folder.iterdir(), folder]:
        os.utime(path, (moment, moment))
    return recorder.recording_id


async def test_the_server_sweeps_old_recordings_and_keeps_the_live_call_s(tmp_path: Path) -> None:
    old = [old_recording(tmp_path, n, 50_000, 3600 - n * 60) for n in range(8)]  # old[0] the oldest
    expired = old_recording(tmp_path, 9, 1_000, 3 * 86_400)
    settings = {
        "recordings_dir": str(tmp_path),
        "recording_max_bytes": 300_000,
        "recording_max_age_days": 1,
        "recording_sweep_interval_s": 0.2,
    }
    async with bench(stt_delay_s=0.05, llm_first_token_s=0.05, settings=settings) as b:
        async with await b.phone.dial() as call:
            await ask_after_greeting(call, "What are your opening hours on Saturday?")
            await asyncio.sleep(0.5)  # a sweep or two while the call is live
            left = recording_ids(tmp_path)
            metrics = await scrape(b.server.url)
            await call.hang_up()
        await a_call_ended(b)
        [live] = [i for i in left if i not in (*old, expired)]
        live_recording = Recording.load(tmp_path / live)

    assert expired not in left and old[0] not in left and old[1] not in left  # age, then bytes, oldest first
    kept = [i for i in old if i in left]
    assert kept == old[len(old) - len(kept) :] and old[-1] in kept  # the newest stay, as the cap allows
    assert live_recording.complete and live_recording.meta["call_sid"] == call.call_sid
    assert live_recording.caller_ulaw() and live_recording.events_of("turn")  # recorded whole, untouched
    assert metrics["phonebot_recordings_bytes"] <= 300_000


async def test_under_the_free_space_floor_recording_pauses_and_the_call_goes_on() -> None:
    floor = 2**62  # more than any disk has free
    with structlog.testing.capture_logs() as logs:
        async with bench(
            stt_delay_s=0.05, llm_first_token_s=0.05, settings={"recording_min_free_bytes": floor}
        ) as b:
            async with await b.phone.dial() as call:
                await ask_after_greeting(call, "What are your opening hours on Saturday?")
                metrics = await scrape(b.server.url)
                await call.hang_up()
            await a_call_ended(b)
            [only] = recording_ids(Path(b.settings.recordings_dir))
            recording = Recording.load(Path(b.settings.recordings_dir) / only)

    answer = [e for e in logs if e["event"] == "turn"]
    assert answer and answer[0].get("error") is None  # the caller was answered
    paused = [e for e in logs if e["event"] == "recording_paused"]
    assert len(paused) == 1 and paused[0]["log_level"] == "warning" and paused[0]["floor_bytes"] == floor
    assert metrics["phonebot_recording_paused"] == 1
    assert metrics["phonebot_recording_dropped_bytes_total"] >= 8000  # over a second of audio
    assert recording.complete and recording.caller_ulaw() == b"" and recording.bot_sent_ulaw() == b""
    assert recording.meta["paused_dropped_audio_bytes"] >= 8000 and recording.meta["ended_by"] == "caller"
