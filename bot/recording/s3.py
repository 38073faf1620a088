"""Recordings in an S3-compatible bucket, written through a local spool folder so a kill loses nothing.

Rules:
- A call records to local disk through ``LocalSink`` in ``<spool>/<YYYY-MM-DD>/<folder>`` (same layout and
  ids as ``LocalStore``), so a killed process loses at most the write in progress. Nothing touches the
  network until the recording is finished: ``create``, ``append`` and ``close`` are local and cheap.
- A ``replace`` after ``close`` (the writer's final meta) finishes the recording: the folder's files go to
  ``<prefix>/<id>/<name>``, one PutObject each, ``meta.json`` last (so a complete meta in the bucket
  implies the data is there); then the spool folder is removed. If an upload fails, ``S3StoreError`` (an
  ``OSError``) is raised and the folder stays, final meta included, for ``upload_orphans``.
- A sink holds an exclusive ``flock`` on its spool folder until its upload is tried; the kernel drops it
  when the process dies. ``upload_orphans`` uploads every folder nobody holds (another process sharing
  the spool keeps its live calls): folders of a killed process (incomplete meta) or of a failed upload
  (complete meta). A recorder that failed mid-call only closes its sink, which keeps the lock: its folder
  goes up after a restart. An empty folder is removed once ``EMPTY_FOLDER_GRACE_S`` old (a create may be
  between mkdir and lock). Meant for server start; a folder that fails is logged and kept, the others go
  on. POSIX only (``fcntl``).
- Ids stay unique within a process even after a spool folder is gone: a sid recorded again the same day
  gets ``-2``, ``-3``... The bucket is not consulted (``create`` runs on the event loop), so a sid
  recorded again after a restart whose earlier recording was already uploaded reuses its id.
- ``list_recent`` lists the bucket (in-progress recordings are not there yet), ``started_at`` read from
  each ``meta.json`` once and cached. ``open_path`` checks the id with ``is_recording_id`` first, then
  downloads the files into ``<cache>/<id>`` for ``Recording.load``.
- boto3 is imported here only. Retries and timeouts are botocore's (``Config``), never hand-written.
  Every call blocks: run ``finalize``, ``upload_orphans``, ``list_recent`` and ``open_path`` off the loop.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any, Final, Protocol

import boto3  # type: ignore[import-untyped]
import structlog
from botocore.config import Config  # type: ignore[import-untyped]
from botocore.exceptions import BotoCoreError, ClientError  # type: ignore[import-untyped]

from bot.recording.format import (
    BOT_AUDIO_FILE,
    CALLER_AUDIO_FILE,
    EVENTS_FILE,
    FILE_NAMES,
    META_FILE,
    day_folder,
    is_recording_id,
    sanitize_call_sid,
)
from bot.recording.store import LocalSink, RecordingStore, claim_folder, lock_folder, newest_first

log = structlog.get_logger("bot.recording")

# Data first, meta last: a reader that finds meta.json finds the data it describes.
UPLOAD_ORDER: Final = (EVENTS_FILE, CALLER_AUDIO_FILE, BOT_AUDIO_FILE, META_FILE)
EMPTY_FOLDER_GRACE_S: Final = 60.0
_MAX_CACHED_STARTS: Final = 10_000
_NOT_FOUND_CODES: Final = frozenset({"NoSuchKey", "404", "NotFound"})


class S3StoreError(OSError):
    """An S3 request failed (after botocore's retries); the message names the key and the cause."""


class S3Client(Protocol):
    """The three S3 operations used here, as a boto3 S3 client has them."""

    def put_object(self, **kwargs: Any) -> Any: ...

    def get_object(self, **kwargs: Any) -> Any: ...

    def list_objects_v2(self, **kwargs: Any) -> Any: ...


def s3_client(
    *,
    endpoint_url: str | None = None,
    region: str | None = None,
    access_key_id: str | None = None,
    secret_access_key: str | None = None,
    connect_timeout: float = 5.0,
    read_timeout: float = 30.0,
    attempts: int = 3,
) -> S3Client:
    """A boto3 S3 client. Credentials default to boto3's chain (environment, config files, instance role).
    A custom endpoint (MinIO, R2, ...) is addressed path-style, which every S3-compatible server accepts."""
    config = Config(
        connect_timeout=connect_timeout,
        read_timeout=read_timeout,
        retries={"total_max_attempts": attempts, "mode": "standard"},
        s3={"addressing_style": "path" if endpoint_url else "auto"},
        # Only the checksums S3 requires: some S3-compatible servers reject the newer default ones.
        request_checksum_calculation="when_required",
        response_checksum_validation="when_required",
    )
    client: S3Client = boto3.client(
        "s3",
        endpoint_url=endpoint_url,
        region_name=region,
        aws_access_key_id=access_key_id,
        aws_secret_access_key=secret_access_key,
        config=config,
    )
    return client


class S3Sink:
    """One recording: written to its spool folder, uploaded when a replace follows the close."""

    def __init__(self, store: S3Store, local: LocalSink, folder_lock: int) -> None:
        self._store = store
        self._local = local
        self._folder_lock: int | None = folder_lock
        self._closed = False

    @property
    def id(self) -> str:
        return self._local.id

    @property
    def spool_path(self) -> Path:
        return self._local.path

    def append(self, name: str, data: bytes) -> None:
        self._local.append(name, data)

    def replace(self, name: str, data: bytes) -> None:
        self._local.replace(name, data)
        if self._closed:
            try:
                self._store._upload_folder(self.id, self.spool_path)
            finally:
                self._unlock()  # uploaded, or left to upload_orphans

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._local.close()
        try:
            if any(self.spool_path.iterdir()):
                return  # the final meta's replace uploads it; without one, upload_orphans after a restart
            self.spool_path.rmdir()  # never started: nothing to keep or upload
        except OSError:
            return  # the folder is gone (nothing to upload) or no longer empty (kept)
        self._unlock()

    def _unlock(self) -> None:
        if self._folder_lock is not None:
            os.close(self._folder_lock)
            self._folder_lock = None


class S3Store(RecordingStore):
    """Recordings under ``<prefix>/`` in ``bucket``; see the module rules."""

    def __init__(
        self, client: S3Client, bucket: str, spool: Path, *, prefix: str = "", cache: Path | None = None
    ) -> None:
        self._client = client
        self.bucket = bucket
        self.spool = spool
        self.cache = cache if cache is not None else spool / ".downloads"
        stripped = prefix.strip("/")
        self._root = f"{stripped}/" if stripped else ""
        self._lock = threading.Lock()
        self._issued: dict[str, set[str]] = {}  # day -> folder names handed out or uploaded by this process
        self._started_at: dict[str, str] = {}

    def key(self, recording_id: str, name: str) -> str:
        return f"{self._root}{recording_id}/{name}"

    # ---- writing ---------------------------------------------------------------------------------

    def create(self, call_sid: str, started: datetime) -> S3Sink:
        day = day_folder(started)
        base = sanitize_call_sid(call_sid)
        with self._lock:
            for old in [d for d in self._issued if d < day]:  # those days are over: no new ids there
                del self._issued[old]
            issued = self._issued.setdefault(day, set())
            name, folder_lock = claim_folder(self.spool / day, base, skip=issued)
            issued.add(name)
        return S3Sink(self, LocalSink(self.spool / day / name, f"{day}/{name}"), folder_lock)

    def upload_orphans(self) -> list[str]:
        """Upload the spool folders no live sink holds (see the rules); the ids uploaded, oldest first."""
        uploaded: list[str] = []
        if not self.spool.is_dir():
            return uploaded
        for day in sorted(p for p in self.spool.iterdir() if p.is_dir() and is_recording_id(f"{p.name}/x")):
            for folder in sorted(p for p in day.iterdir() if p.is_dir()):
                recording_id = f"{day.name}/{folder.name}"
                if is_recording_id(recording_id) and self._upload_orphan(recording_id, folder):
                    uploaded.append(recording_id)
            with contextlib.suppress(OSError):  # only if empty; a create racing this makes it again
                day.rmdir()
        return uploaded

    def _upload_orphan(self, recording_id: str, folder: Path) -> bool:
        try:
            folder_lock = lock_folder(folder)
        except OSError:
            return False  # removed meanwhile
        if folder_lock is None:
            return False  # a live sink, in this process or another, is writing it
        try:
            with self._lock:  # never handed out again by this process, even once uploaded
                self._issued.setdefault(recording_id.partition("/")[0], set()).add(folder.name)
            if any(folder.iterdir()):
                return self._upload_folder(recording_id, folder)
            # Empty: killed before the recording started, or a create that has not locked it yet.
            if time.time() - folder.stat().st_mtime > EMPTY_FOLDER_GRACE_S:
                with contextlib.suppress(OSError):  # written to meanwhile: not empty any more
                    folder.rmdir()
            return False
        except OSError as exc:  # S3StoreError, or a spool file that cannot be read
            log.warning("recording_upload_failed", recording_id=recording_id, error=repr(exc))
            return False
        finally:
            os.close(folder_lock)

    def _upload_folder(self, recording_id: str, folder: Path) -> bool:
        """Upload the folder's recording files, meta last, then remove it. False if it held none."""
        names = [name for name in UPLOAD_ORDER if (folder / name).is_file()]
        for name in names:
            key = self.key(recording_id, name)
            with (folder / name).open("rb") as body:
                self._request(self._client.put_object, key, Bucket=self.bucket, Key=key, Body=body)
        if META_FILE in names:
            started = _started_at_of((folder / META_FILE).read_bytes())
            if started:
                self._remember_start(recording_id, started)
        shutil.rmtree(folder, ignore_errors=True)
        return bool(names)

    # ---- reading ---------------------------------------------------------------------------------

    def list_recent(self, limit: int) -> list[str]:
        if limit <= 0:
            return []
        return newest_first(
            self._children(self._root),
            lambda day: self._children(f"{self._root}{day}/"),
            self._started_at_in_bucket,
            limit,
        )

    def open_path(self, recording_id: str) -> Path:
        if not is_recording_id(recording_id):
            raise ValueError(f"not a recording id: {recording_id!r}")
        prefix = f"{self._root}{recording_id}/"
        stored = {key.removeprefix(prefix) for key in self._keys(prefix)} & FILE_NAMES
        if not stored:
            raise FileNotFoundError(f"no recording {recording_id} in bucket {self.bucket}")
        folder = self.cache / recording_id
        folder.mkdir(parents=True, exist_ok=True)
        for name in sorted(FILE_NAMES):
            if name in stored:
                self._download(self.key(recording_id, name), folder / name)
            else:
                (folder / name).unlink(missing_ok=True)  # left by an earlier download of another state
        return folder

    def _download(self, key: str, target: Path) -> None:
        # Into a temp file first: a reader of the cache never sees half a file, even with two downloads.
        fd, temp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.")
        try:
            with os.fdopen(fd, "wb") as out:
                response = self._request(self._client.get_object, key, Bucket=self.bucket, Key=key)
                body = response["Body"]
                try:
                    shutil.copyfileobj(body, out)
                except (BotoCoreError, OSError) as exc:  # the body streams after the request returned
                    raise S3StoreError(f"GetObject {key}: {exc!r}") from exc
                finally:
                    body.close()
            os.replace(temp, target)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(temp)
            raise

    def _started_at_in_bucket(self, recording_id: str) -> str:
        cached = self._started_at.get(recording_id)
        if cached is not None:
            return cached
        key = self.key(recording_id, META_FILE)
        try:
            response = self._request(self._client.get_object, key, Bucket=self.bucket, Key=key)
            with contextlib.closing(response["Body"]) as body:
                raw = body.read()
        except FileNotFoundError:
            return ""  # not cached: the meta may still be on its way (it is uploaded last)
        except BotoCoreError as exc:
            raise S3StoreError(f"GetObject {key}: {exc!r}") from exc
        started = _started_at_of(raw)
        if started:
            self._remember_start(recording_id, started)
        return started

    def _remember_start(self, recording_id: str, started: str) -> None:
        with self._lock:
            if len(self._started_at) >= _MAX_CACHED_STARTS:
                self._started_at.clear()  # rare; refilled by the next listings
            self._started_at[recording_id] = started

    def _children(self, prefix: str) -> Iterator[str]:
        """Names of the 'folders' right under ``prefix``."""
        for page in self._pages(prefix, delimiter=True):
            for common in page.get("CommonPrefixes", ()):
                yield common["Prefix"].removeprefix(prefix).rstrip("/")

    def _keys(self, prefix: str) -> Iterator[str]:
        for page in self._pages(prefix, delimiter=False):
            for item in page.get("Contents", ()):
                yield item["Key"]

    def _pages(self, prefix: str, *, delimiter: bool) -> Iterator[dict[str, Any]]:
        args: dict[str, Any] = {"Bucket": self.bucket, "Prefix": prefix}
        if delimiter:
            args["Delimiter"] = "/"
        while True:
            page: dict[str, Any] = self._request(self._client.list_objects_v2, prefix, **args)
            yield page
            token = page.get("NextContinuationToken")
            if not page.get("IsTruncated") or not token:
                return
            args["ContinuationToken"] = token

    def _request(self, operation: Callable[..., Any], key: str, **args: Any) -> Any:
        """One S3 call; its errors become ``S3StoreError`` (``FileNotFoundError`` for a missing key)."""
        try:
            return operation(**args)
        except ClientError as exc:
            code = str(exc.response.get("Error", {}).get("Code", ""))
            if code in _NOT_FOUND_CODES:
                raise FileNotFoundError(f"{key} not in {self.bucket}") from exc
            raise S3StoreError(f"{key} in {self.bucket}: {exc}") from exc
        except BotoCoreError as exc:
            raise S3StoreError(f"{key} in {self.bucket}: {exc!r}") from exc


def _started_at_of(raw: bytes) -> str:
    try:
        meta = json.loads(raw)
    except ValueError:
        return ""
    started = meta.get("started_at") if isinstance(meta, dict) else None
    return started if isinstance(started, str) else ""
