"""End to end: the call inspector under a burst of range requests (issue 14, item 5), on a real ``bot serve``.

Rules:
- The bot's recordings folder holds one synthetic 15-minute call; the WAV cache goes to the test's own
  temp dir (``TMPDIR``). Memory is the process's resident high-water mark (``VmHWM`` in
  ``/proc/PID/status``): the figure a pod's memory limit acts on, whatever the timing of the requests.
- Bounded: six requests of 1 KiB each on 127.0.0.1, a minute at most.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import aiohttp

from tests.support.long_call import write_long_call
from tests.support.served import serve_env, serving

TOKEN = "inspector-e2e-token-0123456789abcdef"
MIB = 1024 * 1024


def status_kib(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1]) * 1024
    raise AssertionError(f"no {field}")


async def test_six_concurrent_1_kib_ranges_of_a_15_minute_call_build_one_wav(tmp_path: Path) -> None:
    """Before: each range rebuilt the whole 29 MB WAV in memory, and the process's peak RSS grew by
    about 500 MiB; now one build streams it to disk (about 30 MiB of growth)."""
    recording_id = write_long_call(tmp_path / "rec", minutes=15)
    (tmp_path / "tmp").mkdir()
    env = serve_env(RECORDINGS_DIR=str(tmp_path / "rec"), CALLS_TOKEN=TOKEN, TMPDIR=str(tmp_path / "tmp"))
    auth = {"Authorization": f"Bearer {TOKEN}"}
    async with (
        serving(env, tmp_path, tmp_path / "bot.log") as bot,
        aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=60)) as http,
    ):
        async with http.get(f"{bot.url}/calls", headers=auth) as listing:  # first use: lazy imports
            assert listing.status == 200 and recording_id in await listing.text()
        before = status_kib(bot.process.pid, "VmRSS")

        async def one_kib(n: int) -> bytes:
            headers = {**auth, "Range": f"bytes={n * 4_000_000}-{n * 4_000_000 + 1023}"}
            async with http.get(f"{bot.url}/calls/{recording_id}/call.wav", headers=headers) as response:
                assert response.status == 206, response.status
                return await response.read()

        parts = await asyncio.gather(*(one_kib(n) for n in range(6)))
        grown = status_kib(bot.process.pid, "VmHWM") - before
        print(
            f"bot serve peak RSS growth, 6 concurrent 1 KiB ranges of a 15-minute call: {grown / MIB:.0f} MiB"
        )
        assert [len(part) for part in parts] == [1024] * 6
        assert grown < 150 * MIB, f"{grown / MIB:.0f} MiB"
        assert len(bot.events("calls_wav_built")) == 1
        assert len(list((tmp_path / "tmp").glob("phonebot-calls-wav-*/*.wav"))) == 1
