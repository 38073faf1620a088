"""``/calls/.../call.wav`` over real HTTP on 127.0.0.1 (issue 14, items 5 and 12): a call's WAV is built
once, on disk, and each range request reads its bytes from there; inspector work waits for one of a few
slots; a Range header of any shape is answered 206, 200 or 416, never 500."""

from __future__ import annotations

import asyncio
import os
import tracemalloc
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

import pytest

from bot.inspector.routes import calls_routes
from bot.inspector.slots import InspectorSlots
from bot.inspector.wav_cache import WavCache, recording_key
from bot.recording import LocalStore
from bot.recording.reader import Recording
from tests.support.long_call import write_long_call
from tests.support.routes import Client, ServeRoutes

TOKEN = "inspector-token-0123456789abcdef0123"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
MIB = 1024 * 1024


@pytest.fixture
def serve(tmp_path: Path, serve_routes: ServeRoutes) -> Callable[..., Coroutine[Any, Any, Client]]:
    async def start(slots: InspectorSlots | None = None, wavs: WavCache | None = None) -> Client:
        slots = slots or InspectorSlots()
        wavs = wavs or WavCache(slots, tmp_path / "wav-cache")
        return await serve_routes(calls_routes(LocalStore(tmp_path / "rec"), TOKEN, slots=slots, wavs=wavs))

    return start


async def test_six_concurrent_ranges_of_a_15_minute_call_cost_one_build_and_little_memory(
    tmp_path: Path, serve: Callable[..., Coroutine[Any, Any, Client]]
) -> None:
    """The issue's attack: before, each 1 KiB range rebuilt the whole WAV in memory (6 builds, Python's
    traced peak 422 MiB here); now one build streams it to disk and each range reads 1 KiB of it."""
    recording_id = write_long_call(tmp_path / "rec", minutes=15)
    slots = InspectorSlots()
    wavs = WavCache(slots, tmp_path / "wav-cache")
    client = await serve(slots, wavs)
    url = f"/calls/{recording_id}/call.wav"

    async def one_kib(n: int) -> bytes:
        response = await client.get(
            url, headers={**AUTH, "Range": f"bytes={n * 1_000_000}-{n * 1_000_000 + 1023}"}
        )
        assert response.status == 206, response.status
        return await response.read()

    tracemalloc.start()
    try:
        parts = await asyncio.wait_for(asyncio.gather(*(one_kib(n) for n in range(6))), 60)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    print(f"traced peak for 6 concurrent 1 KiB ranges of a 15-minute call: {peak / MIB:.0f} MiB")
    assert wavs.builds == 1
    assert peak < 100 * MIB, f"{peak / MIB:.0f} MiB"
    whole = Recording.load(tmp_path / "rec" / recording_id).stereo_wav()
    assert len(whole) == 15 * 60 * 8000 * 4 + 44
    assert parts == [whole[n * 1_000_000 : n * 1_000_000 + 1024] for n in range(6)]
    (cached,) = (tmp_path / "wav-cache").iterdir()
    assert cached.read_bytes() == whole and cached.stat().st_mode & 0o777 == 0o600

    again = await client.get(url, headers={**AUTH, "Range": "bytes=-4"})  # later requests: no build at all
    assert await again.read() == whole[-4:] and wavs.builds == 1


async def test_a_5000_digit_range_is_416_not_500(
    tmp_path: Path, serve: Callable[..., Coroutine[Any, Any, Client]]
) -> None:
    recording_id = write_long_call(tmp_path / "rec", minutes=0.1)
    client = await serve()
    url = f"/calls/{recording_id}/call.wav"
    size = 6 * 8000 * 4 + 44
    for header in (
        f"bytes={'9' * 5000}-",
        f"bytes={'9' * 4500}-5",  # (two such numbers pass aiohttp's 8190-byte header line limit: 400)
        "bytes=9-3",
        "bytes=x-",
        "bytes=-0",
    ):
        response = await client.get(url, headers={**AUTH, "Range": header})
        assert response.status == 416, (header[:20], response.status)
        assert response.headers["Content-Range"] == f"bytes */{size}"
        assert response.headers["Cache-Control"] == "no-store"
    to_the_end = await client.get(url, headers={**AUTH, "Range": f"bytes=100-{'9' * 5000}"})
    assert to_the_end.status == 206 and to_the_end.headers["Content-Range"] == f"bytes 100-{size - 1}/{size}"
    assert len(await to_the_end.read()) == size - 100
    several = await client.get(url, headers={**AUTH, "Range": "bytes=0-1,5-9"})
    assert several.status == 200 and len(await several.read()) == size


async def test_whole_head_and_if_range(
    tmp_path: Path, serve: Callable[..., Coroutine[Any, Any, Client]]
) -> None:
    recording_id = write_long_call(tmp_path / "rec", minutes=0.1)
    client = await serve()
    url = f"/calls/{recording_id}/call.wav"
    whole = Recording.load(tmp_path / "rec" / recording_id).stereo_wav()
    response = await client.get(url, headers=AUTH)
    assert response.status == 200 and await response.read() == whole
    assert response.headers["Content-Type"] == "audio/wav" and response.headers["Accept-Ranges"] == "bytes"
    assert response.headers["Content-Security-Policy"].startswith("default-src 'none'")
    etag = response.headers["ETag"]
    head = await client.head(url, headers=AUTH)
    assert (
        head.status == 200 and int(head.headers["Content-Length"]) == len(whole) and await head.read() == b""
    )
    matching = await client.get(url, headers={**AUTH, "Range": "bytes=4-7", "If-Range": etag})
    assert matching.status == 206 and await matching.read() == whole[4:8]
    stale = await client.get(url, headers={**AUTH, "Range": "bytes=4-7", "If-Range": '"other"'})
    assert stale.status == 200 and await stale.read() == whole


async def test_a_changed_recording_gets_a_new_wav_and_the_old_one_goes(
    tmp_path: Path, serve: Callable[..., Coroutine[Any, Any, Client]]
) -> None:
    recording_id = write_long_call(tmp_path / "rec", minutes=0.1)
    slots = InspectorSlots()
    wavs = WavCache(slots, tmp_path / "wav-cache")
    client = await serve(slots, wavs)
    url = f"/calls/{recording_id}/call.wav"
    first = await (await client.get(url, headers=AUTH)).read()
    with (tmp_path / "rec" / recording_id / "caller.ulaw").open("ab") as caller:
        caller.write(b"\x00" * 8000)  # a live call: one more second
    second = await (await client.get(url, headers=AUTH)).read()
    assert len(second) == len(first) + 8000 * 4 and wavs.builds == 2
    assert len(list((tmp_path / "wav-cache").glob("*.wav"))) == 1


async def test_the_cache_stays_under_its_byte_bound(
    tmp_path: Path, serve: Callable[..., Coroutine[Any, Any, Client]]
) -> None:
    ids = [write_long_call(tmp_path / "rec", minutes=0.1, sid=f"CAbound{n}") for n in range(4)]
    slots = InspectorSlots()
    wavs = WavCache(slots, tmp_path / "wav-cache", max_bytes=2 * (6 * 8000 * 4 + 44))
    client = await serve(slots, wavs)
    for recording_id in ids:
        assert (await client.get(f"/calls/{recording_id}/call.wav", headers=AUTH)).status == 200
        await asyncio.sleep(0.02)  # distinct mtimes: the eviction goes by last use
    assert len(list((tmp_path / "wav-cache").glob("*.wav"))) == 2
    (tmp_path / "wav-cache" / ".build-dead.tmp").write_bytes(b"x")  # a killed build's leftover
    os.utime(tmp_path / "wav-cache" / ".build-dead.tmp", (0, 0))
    assert (await client.get(f"/calls/{ids[0]}/call.wav", headers=AUTH)).status == 200  # rebuilt, sweeps
    assert not (tmp_path / "wav-cache" / ".build-dead.tmp").exists()
    assert wavs.builds == 5


async def test_inspector_work_waits_for_a_slot_then_503(
    tmp_path: Path, serve: Callable[..., Coroutine[Any, Any, Client]]
) -> None:
    recording_id = write_long_call(tmp_path / "rec", minutes=0.1)
    slots = InspectorSlots(limit=1, wait_s=0.3)
    client = await serve(slots)
    paths = ("/calls", f"/calls/{recording_id}", f"/calls/{recording_id}/call.wav")
    async with slots.hold():  # someone else's long build
        for path in paths:
            busy = await client.get(path, headers=AUTH)
            assert busy.status == 503 and busy.headers["Retry-After"] == "5", path
        waiting = asyncio.ensure_future(client.get(paths[2], headers=AUTH))
        await asyncio.sleep(0.1)
    assert (await waiting).status == 200  # a slot freed within the wait: served
    for path in paths:
        assert (await client.get(path, headers=AUTH)).status == 200, path


async def test_an_unreadable_recording_is_still_422(
    tmp_path: Path, serve: Callable[..., Coroutine[Any, Any, Client]]
) -> None:
    recording_id = write_long_call(tmp_path / "rec", minutes=0.1)
    # A damaged events.jsonl line is skipped (bot.recording.reader); a bad meta.json refuses the recording.
    (tmp_path / "rec" / recording_id / "meta.json").write_text('{"format": "one"}')
    client = await serve()
    response = await client.get(f"/calls/{recording_id}/call.wav", headers=AUTH)
    assert response.status == 422
    assert not list((tmp_path / "wav-cache").glob("*"))  # nothing half-built left behind


async def test_a_cache_that_cannot_be_written_is_503_not_500(
    tmp_path: Path, serve: Callable[..., Coroutine[Any, Any, Client]]
) -> None:
    recording_id = write_long_call(tmp_path / "rec", minutes=0.1)
    (tmp_path / "not-a-folder").write_bytes(b"")
    slots = InspectorSlots()
    client = await serve(slots, WavCache(slots, tmp_path / "not-a-folder" / "wav-cache"))
    response = await client.get(f"/calls/{recording_id}/call.wav", headers=AUTH)
    assert response.status == 503 and response.headers["Retry-After"] == "30"


async def test_a_build_that_finds_its_wav_already_there_does_nothing(tmp_path: Path) -> None:
    """The race: a request missed the file, and the build it would have waited for ended and left
    before it looked for one in flight: its own build must not run again."""
    recording_id = write_long_call(tmp_path / "rec", minutes=0.1)
    folder = tmp_path / "rec" / recording_id
    wavs = WavCache(InspectorSlots(), tmp_path / "wav-cache")
    key = recording_key(recording_id, folder)
    fd, _ = await wavs.open(recording_id, folder, key)
    os.close(fd)
    await wavs._build(recording_id, folder, key)
    assert wavs.builds == 1
