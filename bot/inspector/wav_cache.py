"""Each recorded call's stereo WAV, built once into a bounded disk cache and read back by byte range.

Rules:
- A WAV is a function of its recording's files, so its key is a BLAKE2b digest of the recording id and
  of every file's name and content (read 1 MiB at a time): a recording that changed (a live call
  growing) gets a new WAV, and the S3 store's fresh download of the same objects finds the old one. The
  key is the WAV's strong ETag too.
- Built once per key: concurrent requests for one key await one build, shielded (a client that goes
  away does not cancel it for the others); a build that finds the WAV there (finished between a
  request's look and its turn, or by another process) does nothing. The build holds an inspector slot
  and runs in a thread (``asyncio.to_thread``).
- Streamed: the caller track and the bot's played track are converted and interleaved ``BLOCK_SECONDS``
  at a time into a temp file in the cache folder, which then replaces the target (``os.replace``): a
  reader never sees half a WAV, a failed build leaves nothing. The build holds the recording's tracks
  and no more: for a 15-minute call, Python's traced peak was 26 MiB for one build and six 1 KiB
  ranges, 422 MiB for the six in-memory builds before.
- A WAV that would not fit in the cache (over ``max_bytes``: 70 minutes at the default 128 MiB) is
  refused with ``WavTooLong`` before anything is rendered or written; its length is known from the
  tracks' ends. A call's events are within its duration (``bot.recording.events``), so only a call
  longer than that, or a recording made so, is refused.
- Bounded: after each build, older WAVs of the same recording go, then WAVs unused for ``MAX_IDLE_S``,
  then the least recently used until the folder holds at most ``MAX_BYTES`` (the new WAV always stays).
  Temp files of a build that died go once ``STALE_TEMP_S`` old. Several processes may share the folder:
  names are content keys and writes atomic, so they only ever see whole, right files.
- A reader holds the file open (an fd) while it sends: removing the file meanwhile does not cut the
  answer short. A file gone between its build and its opening is built again (at most twice).
- The folder holds call audio, like the recordings: created 0700, used only if it is a real directory
  of ours that nobody else can enter (else a fresh ``mkdtemp``); files are created 0600.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
import stat
import tempfile
import time
import wave
from pathlib import Path
from typing import BinaryIO

import structlog

from bot.inspector.slots import InspectorSlots
from bot.recording.format import BYTES_PER_SECOND, FILE_NAMES
from bot.recording.reader import Recording, render_timeline
from media.codec import ulaw_to_pcm16
from media.wav import interleave_stereo

log = structlog.get_logger(__name__)

# Room for a handful of long calls (a 15-minute call's WAV is 29 MB) within the 256 MiB /tmp emptyDir
# of deploy/k8s/deployment.yaml, leaving half of it to everything else.
MAX_BYTES = 128 * 1024 * 1024
MAX_IDLE_S = 3600.0  # someone still listening reads it again well within the hour
STALE_TEMP_S = 600.0  # no build takes ten minutes: an older temp file is a killed process's
BLOCK_SECONDS = 10  # converted per step: 320 KB of PCM in flight
_READ_BYTES = 1024 * 1024
_BUILD_PREFIX = ".build-"
_WAV_HEADER = 44


class WavTooLong(Exception):
    """The call's WAV would not fit in the cache; the message says how long and what to do instead."""


def default_folder() -> Path:
    return Path(tempfile.gettempdir()) / f"phonebot-calls-wav-{os.getuid()}"


def _private_folder(wanted: Path) -> Path:
    with contextlib.suppress(FileExistsError):
        wanted.mkdir(mode=0o700, parents=True)
    info = os.lstat(wanted)
    if stat.S_ISDIR(info.st_mode) and info.st_uid == os.getuid() and not info.st_mode & 0o077:
        return wanted
    log.warning("calls_wav_cache_folder_refused", folder=str(wanted))  # another user's, or a symlink
    return Path(tempfile.mkdtemp(prefix="phonebot-calls-wav-"))


def write_stereo_wav(out: BinaryIO, left_ulaw: bytes, right_ulaw: bytes) -> None:
    """8 kHz PCM16 stereo WAV of two μ-law tracks, the shorter padded with silence, written in blocks.

    Byte for byte what ``Recording.stereo_wav`` returns, without the whole PCM in memory."""
    frames = max(len(left_ulaw), len(right_ulaw))
    block = BLOCK_SECONDS * BYTES_PER_SECOND
    left, right = memoryview(left_ulaw), memoryview(right_ulaw)
    with wave.open(out, "wb") as writer:
        writer.setnchannels(2)
        writer.setsampwidth(2)
        writer.setframerate(BYTES_PER_SECOND)
        writer.setnframes(frames)  # the header is right from the start: nothing to patch at the end
        for start in range(0, frames, block):
            pcm_left = ulaw_to_pcm16(bytes(left[start : start + block]))
            pcm_right = ulaw_to_pcm16(bytes(right[start : start + block]))
            writer.writeframesraw(interleave_stereo(pcm_left, pcm_right))


def recording_key(recording_id: str, folder: Path) -> str:
    """The cache key (and ETag) of this recording's WAV: file-name safe, no call sid in it."""
    outer = hashlib.blake2b(recording_id.encode(), digest_size=20)
    for name in sorted(FILE_NAMES):
        inner = hashlib.blake2b(digest_size=20)
        try:
            with open(folder / name, "rb") as file:
                while chunk := file.read(_READ_BYTES):
                    inner.update(chunk)
        except FileNotFoundError:
            inner.update(b"\x00absent")  # an empty file and a missing one read the same, but differ here
        outer.update(name.encode() + b"\x00" + inner.digest())
    tag = hashlib.blake2b(recording_id.encode(), digest_size=6).hexdigest()  # groups one call's versions
    return f"{tag}-{outer.hexdigest()}"


class WavCache:
    """The cache folder and the builds in flight (see the rules); ``builds`` counts finished builds."""

    def __init__(
        self, slots: InspectorSlots, folder: Path | None = None, *, max_bytes: int = MAX_BYTES
    ) -> None:
        self._slots = slots
        self._wanted = folder
        self._folder: Path | None = None
        self._max_bytes = max_bytes
        self._building: dict[str, asyncio.Future[None]] = {}
        self.builds = 0

    def _ready(self) -> Path:
        if self._folder is None:
            self._folder = _private_folder(self._wanted or default_folder())
        return self._folder

    def _open_cached(self, key: str) -> tuple[int, int] | None:
        """(fd, size) of the key's WAV, marked as just used; None if there is none."""
        path = self._ready() / f"{key}.wav"
        try:
            fd = os.open(path, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))
        except FileNotFoundError:
            return None
        with contextlib.suppress(OSError):
            os.utime(path)  # its mtime is its last use, for the eviction
        return fd, os.fstat(fd).st_size

    async def open(self, recording_id: str, folder: Path, key: str) -> tuple[int, int]:
        """An fd open on this recording's WAV and its size, built if need be; the caller closes it.

        Raises ``RecordingError`` if the recording cannot be read."""
        for _ in range(3):
            opened = await asyncio.to_thread(self._open_cached, key)
            if opened is not None:
                return opened
            pending = self._building.get(key)
            if pending is None:
                pending = asyncio.ensure_future(self._build(recording_id, folder, key))
                self._building[key] = pending
                pending.add_done_callback(lambda done: self._built(key, done))
            await asyncio.shield(pending)
        raise OSError(f"the WAV of {recording_id} keeps disappearing from {self._ready()}")

    def _built(self, key: str, done: asyncio.Future[None]) -> None:
        self._building.pop(key, None)
        if not done.cancelled():
            done.exception()  # retrieved: a failure nobody awaits any more is not "never retrieved"

    async def _build(self, recording_id: str, folder: Path, key: str) -> None:
        async with self._slots.hold():
            began = time.monotonic()
            size = await asyncio.to_thread(self._build_file, folder, key)
        if size is None:
            return
        self.builds += 1
        log.info(
            "calls_wav_built",
            recording_id=recording_id,
            bytes=size,
            seconds=round(time.monotonic() - began, 3),
        )

    def _build_file(self, source: Path, key: str) -> int | None:
        """The new WAV's size; None if it is there already (a build that ended between this request's
        look and its wait, or another process's)."""
        folder = self._ready()
        if (folder / f"{key}.wav").exists():
            return None
        recording = Recording.load(source)
        caller, played = recording.caller_ulaw(), recording.bot_played_segments()
        frames = max(len(caller), max((s.start + len(s.audio) for s in played), default=0))
        if _WAV_HEADER + 4 * frames > self._max_bytes:  # 16-bit stereo: 4 bytes a frame
            raise WavTooLong(
                f"this call's WAV would be {frames / BYTES_PER_SECOND / 60:.0f} minutes, over the "
                f"inspector's WAV cache ({self._max_bytes // 2**20} MiB): read the recording's files instead"
            )
        fd, temp = tempfile.mkstemp(dir=folder, prefix=_BUILD_PREFIX, suffix=".tmp")  # 0600
        try:
            with os.fdopen(fd, "wb") as out:
                write_stereo_wav(out, caller, render_timeline(played))
            target = folder / f"{key}.wav"
            os.replace(temp, target)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(temp)
            raise
        del recording
        self._sweep(folder, target)
        return target.stat().st_size

    def _sweep(self, folder: Path, keep: Path) -> None:
        now = time.time()
        tag = keep.name.partition("-")[0]
        kept: list[tuple[float, int, str]] = []  # (last use, size, path) of the WAVs that may stay
        with os.scandir(folder) as entries:
            for entry in entries:
                try:
                    info = entry.stat(follow_symlinks=False)
                except OSError:
                    continue  # removed meanwhile (another process sweeping)
                if entry.path == str(keep):
                    continue
                if entry.name.startswith(_BUILD_PREFIX):
                    gone = now - info.st_mtime > STALE_TEMP_S
                elif entry.name.endswith(".wav"):
                    gone = entry.name.startswith(f"{tag}-") or now - info.st_mtime > MAX_IDLE_S
                    if not gone:
                        kept.append((info.st_mtime, info.st_size, entry.path))
                else:
                    continue  # not ours: left alone
                if gone:
                    with contextlib.suppress(OSError):
                        os.unlink(entry.path)
        total = keep.stat().st_size + sum(size for _, size, _ in kept)
        for _, size, path in sorted(kept):
            if total <= self._max_bytes:
                break
            with contextlib.suppress(OSError):
                os.unlink(path)
            total -= size
