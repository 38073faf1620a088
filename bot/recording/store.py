"""Where recordings live: a store hands out one sink per call; the local store writes plain files.

Rules:
- A ``RecordingSink`` knows four operations on named files of one recording: ``append`` (bytes at the end),
  ``replace`` (whole content, atomically), ``close`` (make everything durable, release handles) and ``id``.
  The recorder needs nothing else, so any backend fits behind it.
- Mapping to an S3-compatible store (later, same interface): ``replace`` is one PutObject of
  ``<prefix>/<id>/<name>`` (atomic by nature); ``append`` buffers per file and uploads parts of a multipart
  upload once 5 MiB are held (or chunk objects ``<name>.<n>`` for crash visibility, since an unfinished
  multipart upload is invisible); ``close`` uploads the last part and completes the uploads. For the
  "a killed process loses at most the last second" guarantee, an S3 store should record to local disk
  through ``LocalSink`` and upload the folder after ``close`` (and on restart, for orphans).
- ``LocalSink`` appends with one ``os.write`` on an ``O_APPEND`` descriptor per call: no user-space buffer,
  so a killed process loses nothing already appended (the kernel holds it); ``close`` fsyncs.
  ``replace`` writes a temp file, fsyncs it and ``os.replace``s it over the target.
- ``LocalStore.create`` makes the folder ``<root>/<YYYY-MM-DD>/<sanitized sid>``; if it exists (a retried
  sid, or two sids equal once sanitized) it adds ``-2``, ``-3``... It raises ``OSError`` if the root is not
  writable: the caller decides to go on without a recording.
- A live ``LocalSink`` made by ``LocalStore`` holds an exclusive ``flock`` on its folder (``lock_folder``)
  until ``close``; the kernel drops it when the process dies. So any process can tell a recording being
  written from one that is not (``bot.recording.retention`` never deletes a held folder).
- ``open_path`` only accepts ids shaped like the ones this store makes, so an id from outside (an admin
  URL) cannot point anywhere else.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
from collections.abc import Callable, Container, Iterable
from datetime import datetime
from pathlib import Path
from typing import Protocol

from bot.recording.format import FILE_NAMES, META_FILE, day_folder, is_recording_id, sanitize_call_sid

_MAX_COLLISIONS = 1000


class RecordingSink(Protocol):
    @property
    def id(self) -> str:
        """The recording id, e.g. ``2025-01-31/CA0123``."""
        ...

    def append(self, name: str, data: bytes) -> None:
        """Add ``data`` at the end of file ``name``, creating it if needed."""
        ...

    def replace(self, name: str, data: bytes) -> None:
        """Make ``data`` the whole content of file ``name``, atomically. Allowed after ``close``: the final
        meta is written last, so a meta saying ``complete`` implies durable data."""
        ...

    def close(self) -> None:
        """Make every appended byte durable and release resources. Idempotent."""
        ...


class RecordingStore(Protocol):
    def create(self, call_sid: str, started: datetime) -> RecordingSink:
        """A new, empty recording for this call."""
        ...

    def list_recent(self, limit: int) -> list[str]:
        """Ids of the most recently started recordings, newest first."""
        ...

    def open_path(self, recording_id: str) -> Path:
        """A local folder holding the recording, for ``Recording.load``."""
        ...

    def upload_orphans(self) -> list[str]:
        """At start-up, blocking: hand over what a killed process left behind, and return those ids.
        Nothing by default (a local store has nothing to hand over; ``bot.recording.s3`` uploads its
        spool)."""
        return []


def _check_name(name: str) -> None:
    if name not in FILE_NAMES:
        raise ValueError(f"not a recording file name: {name!r}")


def _fsync_dir(folder: Path) -> None:
    # Makes the creation/rename of entries durable; not supported everywhere, and not worth failing for.
    with contextlib.suppress(OSError):
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


class LocalSink:
    """The files of one recording in a local folder."""

    def __init__(self, folder: Path, recording_id: str, folder_lock: int | None = None) -> None:
        self.path = folder
        self._id = recording_id
        self._fds: dict[str, int] = {}
        self._closed = False
        self._folder_lock = folder_lock  # released by close (see the module rules)

    @property
    def id(self) -> str:
        return self._id

    def append(self, name: str, data: bytes) -> None:
        _check_name(name)
        if self._closed:
            raise ValueError(f"recording {self._id} is closed")
        fd = self._fds.get(name)
        if fd is None:
            flags = os.O_WRONLY | os.O_CREAT | os.O_APPEND | getattr(os, "O_CLOEXEC", 0)
            fd = os.open(self.path / name, flags, 0o640)
            self._fds[name] = fd
        view = memoryview(data)
        while view:  # a regular file takes it all in one write unless the disk is full
            written = os.write(fd, view)
            view = view[written:]

    def replace(self, name: str, data: bytes) -> None:
        _check_name(name)
        target = self.path / name
        temp = self.path / f".{name}.tmp"
        fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o640)
        try:
            try:
                view = memoryview(data)
                while view:
                    view = view[os.write(fd, view) :]
                os.fsync(fd)
            finally:
                os.close(fd)
            os.replace(temp, target)
        except OSError:
            with contextlib.suppress(OSError):
                temp.unlink()
            raise
        _fsync_dir(self.path)

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        fds, self._fds = self._fds, {}
        error: OSError | None = None
        for fd in fds.values():
            try:
                os.fsync(fd)
            except OSError as exc:
                error = error or exc
            finally:
                os.close(fd)
        _fsync_dir(self.path)
        if self._folder_lock is not None:
            os.close(self._folder_lock)
            self._folder_lock = None
        if error is not None:
            raise error


class LocalStore(RecordingStore):
    """Recordings as folders under ``root``."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def create(self, call_sid: str, started: datetime) -> LocalSink:
        day = day_folder(started)
        base = sanitize_call_sid(call_sid)
        (self.root / day).mkdir(parents=True, exist_ok=True)  # a root that is not a folder fails here
        name, folder_lock = claim_folder(self.root / day, base)
        return LocalSink(self.root / day / name, f"{day}/{name}", folder_lock)

    def list_recent(self, limit: int) -> list[str]:
        if limit <= 0 or not self.root.is_dir():
            return []
        return newest_first(
            (p.name for p in self.root.iterdir() if p.is_dir()),
            lambda day: (p.name for p in (self.root / day).iterdir() if p.is_dir()),
            lambda recording_id: _started_at(self.root / recording_id),
            limit,
        )

    def open_path(self, recording_id: str) -> Path:
        if not is_recording_id(recording_id):
            raise ValueError(f"not a recording id: {recording_id!r}")
        path = self.root / recording_id
        if not path.is_dir():
            raise FileNotFoundError(f"no recording {recording_id} under {self.root}")
        return path


def newest_first(
    days: Iterable[str],
    calls_of: Callable[[str], Iterable[str]],
    started_at: Callable[[str], str],
    limit: int,
) -> list[str]:
    """Up to ``limit`` recording ids, newest day first, then newest ``started_at`` (ISO UTC sorts as text;
    a recording without a readable meta, ``""``, sorts last). Names that are not ids are skipped; days
    are only listed until ``limit`` is reached."""
    found: list[str] = []
    for day in sorted((d for d in days if is_recording_id(f"{d}/x")), reverse=True):
        names = [n for n in calls_of(day) if is_recording_id(f"{day}/{n}")]
        names.sort(key=lambda n: (started_at(f"{day}/{n}"), n), reverse=True)
        found.extend(f"{day}/{n}" for n in names[: limit - len(found)])
        if len(found) >= limit:
            break
    return found


def claim_folder(day: Path, base: str, skip: Container[str] = ()) -> tuple[str, int]:
    """A new folder in ``day`` named ``base``, else ``base-2``, ``base-3``... (never a name in ``skip``),
    made and locked (``lock_folder``): its name and the lock's descriptor. ``FileExistsError`` once
    ``_MAX_COLLISIONS`` names are taken; ``OSError`` if the folder cannot be made."""
    for n in range(1, _MAX_COLLISIONS + 1):
        name = base if n == 1 else f"{base}-{n}"
        if name in skip:
            continue
        folder = day / name
        try:
            folder.mkdir(parents=True)  # parents: the sweeper may just have removed an empty day folder
        except FileExistsError:
            continue
        try:
            folder_lock = lock_folder(folder)
        except OSError:
            folder.rmdir()
            raise
        if folder_lock is None:  # a sweeper looking at it this instant: never write into a taken one
            continue
        return name, folder_lock
    raise FileExistsError(f"{_MAX_COLLISIONS} recordings of {base} on {day.name} already exist")


def lock_folder(folder: Path) -> int | None:
    """A descriptor holding an exclusive ``flock`` on ``folder``, or None if another descriptor holds it.
    The kernel drops the lock when its holder dies, so a killed process's folders are free again."""
    fd = os.open(folder, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0) | getattr(os, "O_CLOEXEC", 0))
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        return None
    except BaseException:
        os.close(fd)
        raise
    return fd


def _started_at(folder: Path) -> str:
    try:
        meta = json.loads((folder / META_FILE).read_bytes())
    except (OSError, ValueError):
        return ""
    started = meta.get("started_at") if isinstance(meta, dict) else None
    return started if isinstance(started, str) else ""
