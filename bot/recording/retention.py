"""Retention of local recordings: finished ones older than a maximum age go, then the oldest finished ones
while the folder holds more than a maximum of bytes.

Rules:
- ``choose_deletions`` decides, pure: given what each recording folder holds (bytes, newest write, meta
  complete, folder held), the time, and a ``RetentionPolicy``, the ids to delete, oldest first, each with
  its reason (``age``, ``bytes`` or ``empty``). The shell (``RetentionSweeper``) only lists, stats, locks
  and removes.
- A recording in progress is never chosen: one whose folder a live sink holds (``flock``, in this process
  or another: ``bot.recording.store``), or one whose meta is not complete and that was written within
  ``abandoned_after_s`` (a sink between ``close`` and its final meta, a folder just made). An incomplete
  recording left alone longer than that is abandoned (a killed process): finished, as far as retention
  goes.
- Age is counted from a recording's newest write (when it ended). ``max_age_s`` 0: no age limit.
- Bytes are the files' sizes, in-progress recordings included (they are on the disk too); finished
  recordings go oldest first (newest write, then id) only while the total is over ``max_bytes``, so no
  more is deleted than needed. ``max_bytes`` 0: no byte cap. In-progress recordings alone may be over
  the cap: the free-space floor (``bot.recording.space``) guards the disk meanwhile.
- A finished folder with no bytes (a call that never started recording) is removed whatever the caps.
- The sweeper runs in a thread (``asyncio.to_thread``), never on the event loop: it walks every folder.
  Before removing a folder it takes its lock, so a folder that became live meanwhile is kept. Empty day
  folders are removed (``LocalStore.create`` makes them again). Names that are not recording ids (the S3
  store's ``.downloads`` cache) are neither counted nor touched. With the S3 store the folder is the spool:
  the sweeper then only ever finds uploads that failed (complete, not held) and calls in progress.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final, Literal

import structlog

from bot.recording.format import META_FILE, is_recording_id
from bot.recording.store import lock_folder

log = structlog.get_logger("bot.recording")

# An incomplete recording nobody holds and nobody wrote for this long was left by a killed process.
ABANDONED_AFTER_S: Final = 600.0
DAY_S: Final = 86_400.0

Reason = Literal["age", "bytes", "empty"]


@dataclass(frozen=True)
class StoredRecording:
    """What the sweeper saw of one recording folder."""

    id: str
    bytes: int
    modified: float  # epoch seconds of its newest write (the folder's or a file's mtime)
    complete: bool  # meta.json says complete
    held: bool  # a live sink holds the folder's lock


@dataclass(frozen=True)
class RetentionPolicy:
    max_age_s: float = 0.0  # 0: no age limit
    max_bytes: int = 0  # 0: no byte cap
    abandoned_after_s: float = ABANDONED_AFTER_S

    @property
    def enabled(self) -> bool:
        return self.max_age_s > 0 or self.max_bytes > 0


@dataclass(frozen=True)
class Deletion:
    id: str
    reason: Reason
    bytes: int


def in_progress(recording: StoredRecording, now: float, policy: RetentionPolicy) -> bool:
    """Held by a live sink, or incomplete and written recently (see the module rules)."""
    if recording.held:
        return True
    return not recording.complete and now - recording.modified < policy.abandoned_after_s


def choose_deletions(
    recordings: Iterable[StoredRecording], now: float, policy: RetentionPolicy
) -> list[Deletion]:
    """The recordings to delete, oldest first (see the module rules). Pure."""
    every = list(recordings)
    total = sum(r.bytes for r in every)
    finished = sorted((r for r in every if not in_progress(r, now, policy)), key=lambda r: (r.modified, r.id))
    chosen: list[Deletion] = []
    kept: list[StoredRecording] = []
    for recording in finished:
        if recording.bytes == 0:
            chosen.append(Deletion(recording.id, "empty", 0))
        elif policy.max_age_s > 0 and now - recording.modified > policy.max_age_s:
            chosen.append(Deletion(recording.id, "age", recording.bytes))
            total -= recording.bytes
        else:
            kept.append(recording)
    if policy.max_bytes > 0:
        for recording in kept:  # oldest first
            if total <= policy.max_bytes:
                break
            chosen.append(Deletion(recording.id, "bytes", recording.bytes))
            total -= recording.bytes
    order = {r.id: n for n, r in enumerate(finished)}
    return sorted(chosen, key=lambda d: order[d.id])


@dataclass(frozen=True)
class SweepResult:
    deleted: list[Deletion] = field(default_factory=list)
    total_bytes: int = 0  # what the folder's recordings hold after the sweep
    recordings: int = 0  # how many are left


class RetentionSweeper:
    """Applies a ``RetentionPolicy`` to the recordings under ``root`` (see the module rules)."""

    def __init__(
        self,
        root: Path,
        policy: RetentionPolicy,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.root = root
        self.policy = policy
        self._clock = clock

    def sweep(self) -> SweepResult:
        """One pass: list, decide, remove. Blocking: run it in a thread."""
        now = self._clock()
        found = self.scan()
        chosen = choose_deletions(found, now, self.policy)
        removed: list[Deletion] = []
        for deletion in chosen:
            if self._remove(deletion.id):
                removed.append(deletion)
        gone = {d.id for d in removed}
        self._remove_empty_days()
        left = [r for r in found if r.id not in gone]
        result = SweepResult(removed, sum(r.bytes for r in left), len(left))
        if removed:
            log.info(
                "recordings_swept",
                deleted=len(removed),
                freed_bytes=sum(d.bytes for d in removed),
                by_reason=dict(Counter(d.reason for d in removed)),
                kept=result.recordings,
                kept_bytes=result.total_bytes,
            )
        return result

    def scan(self) -> list[StoredRecording]:
        """Every recording folder under the root, as the policy sees it."""
        found: list[StoredRecording] = []
        if not self.root.is_dir():
            return found
        for day in self._days():
            with contextlib.suppress(OSError):  # the day folder went meanwhile
                for folder in day.iterdir():
                    recording_id = f"{day.name}/{folder.name}"
                    if is_recording_id(recording_id):
                        with contextlib.suppress(OSError):  # removed meanwhile
                            found.append(_stat(recording_id, folder))
        return found

    def _days(self) -> list[Path]:
        return [p for p in self.root.iterdir() if p.is_dir() and is_recording_id(f"{p.name}/x")]

    def _remove(self, recording_id: str) -> bool:
        folder = self.root / recording_id
        try:
            folder_lock = lock_folder(folder)
        except OSError:
            return False  # gone already
        if folder_lock is None:
            return False  # live again (a sink took it since the scan): kept
        try:
            shutil.rmtree(folder)
        except OSError as exc:
            log.warning("recording_delete_failed", recording_id=recording_id, error=repr(exc))
            return False
        finally:
            os.close(folder_lock)
        return True

    def _remove_empty_days(self) -> None:
        with contextlib.suppress(OSError):
            for day in self._days():
                with contextlib.suppress(OSError):  # not empty, or a create made it again
                    day.rmdir()


def _stat(recording_id: str, folder: Path) -> StoredRecording:
    size, modified = 0, folder.stat().st_mtime
    complete = False
    for entry in os.scandir(folder):
        if not entry.is_file(follow_symlinks=False):
            continue
        info = entry.stat(follow_symlinks=False)
        size += info.st_size
        modified = max(modified, info.st_mtime)
        if entry.name == META_FILE:
            complete = _complete(Path(entry.path))
    folder_lock = lock_folder(folder)
    if folder_lock is not None:
        os.close(folder_lock)
    return StoredRecording(recording_id, size, modified, complete, held=folder_lock is None)


def _complete(meta_path: Path) -> bool:
    try:
        meta = json.loads(meta_path.read_bytes())
    except (OSError, ValueError):
        return False
    return isinstance(meta, dict) and meta.get("complete") is True


async def sweep_every(
    sweeper: RetentionSweeper, interval_s: float, on_result: Callable[[SweepResult], None] | None = None
) -> None:
    """Sweep now, then every ``interval_s``, in a thread, until cancelled; a failed sweep is logged."""
    while True:
        try:
            result = await asyncio.to_thread(sweeper.sweep)
        except Exception as exc:
            log.warning("recordings_sweep_failed", error=repr(exc))
        else:
            if on_result is not None:
                on_result(result)
        await asyncio.sleep(interval_s)
