"""S3Store against a local S3 server (moto, started here on 127.0.0.1 with an ephemeral port).

Rules checked here: a call recorded through ``CallRecorder`` reads back from the bucket byte for byte as
the local store writes it, uploaded only at finalize, meta last, and the spool folder removed; list_recent
is newest first and ids never repeat; open_path refuses anything that is not a recording id before any
request; a live call's folder is never taken as an orphan, even by another store on the same spool; a
recording left by a SIGKILLed process is uploaded by ``upload_orphans`` and reads back incomplete; a
failing upload never raises into the recorder (logged once) and leaves the spool folder, which a later
``upload_orphans`` uploads complete. Credentials are dummies; no AWS config file is read.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import structlog
from hypothesis import given, settings
from hypothesis import strategies as st
from moto.server import ThreadedMotoServer

from bot.recording import CallRecorder, LocalStore, Recording
from bot.recording.format import is_recording_id
from bot.recording.s3 import EMPTY_FOLDER_GRACE_S, UPLOAD_ORDER, S3Client, S3Store, s3_client
from bot.recording.store import RecordingSink
from tests.support.clocks import STARTED, FakeClock

FINISHED = datetime(2025, 2, 1, 0, 0, 5, tzinfo=UTC)
RECORDING_FILES = ["bot.ulaw", "caller.ulaw", "events.jsonl", "meta.json"]

pytestmark = pytest.mark.usefixtures("no_aws_config")  # tests/conftest.py: hermetic boto3


class SpyClient:
    """Passes calls to a real client and notes the keys put, in order."""

    def __init__(self, client: S3Client) -> None:
        self.client = client
        self.puts: list[str] = []

    def put_object(self, **kwargs: Any) -> Any:
        self.puts.append(kwargs["Key"])
        return self.client.put_object(**kwargs)

    def get_object(self, **kwargs: Any) -> Any:
        return self.client.get_object(**kwargs)

    def list_objects_v2(self, **kwargs: Any) -> Any:
        return self.client.list_objects_v2(**kwargs)


class NoNetworkClient:
    def put_object(self, **kwargs: Any) -> Any:
        raise AssertionError("no request expected")

    get_object = list_objects_v2 = put_object


@pytest.fixture(scope="module")
def endpoint() -> Iterator[str]:
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        yield f"http://{host}:{port}"
    finally:
        server.stop()


@pytest.fixture
def bucket(endpoint: str) -> str:
    name = f"rec-{uuid.uuid4().hex[:12]}"
    client: Any = dummy_client(endpoint)  # create_bucket is not part of S3Client: the store never needs it
    client.create_bucket(Bucket=name)
    return name


def dummy_client(endpoint: str) -> S3Client:
    # Dummy credentials; one attempt, so a failure shows at once.
    return s3_client(
        endpoint_url=endpoint,
        region="us-east-1",
        access_key_id="testing",
        secret_access_key="testing",
        attempts=1,
    )


def new_store(endpoint: str, bucket: str, spool: Path) -> S3Store:
    return S3Store(dummy_client(endpoint), bucket, spool, prefix="calls/")


def record_call(sink: RecordingSink, *, finalize: bool = True, started: datetime = STARTED) -> CallRecorder:
    clock = FakeClock()
    recorder = CallRecorder(sink, clock=clock)
    recorder.start(call_sid="CA123", started_at=started, flow="demo")
    clock.now += 0.25
    recorder.event("turn", text="hello", n=1)
    recorder.caller_audio(0, bytes([1]) * 160)
    recorder.caller_audio(40, bytes([2]) * 160)  # a 20 ms gap, filled with silence
    clock.now += 0.25
    recorder.bot_audio(bytes([3]) * 800, response_id=1, mark="r1-p0")
    clock.now += 0.5
    recorder.clear()
    if finalize:
        recorder.finalize(ended_by="caller_hangup", finished_at=FINISHED)
    return recorder


def files_of(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


def refused_port() -> socket.socket:
    """A bound, never listening socket: connecting to its port is refused, and no one else can take it."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    return sock


def test_recorded_call_reads_back_from_the_bucket_as_written_locally(
    endpoint: str, bucket: str, tmp_path: Path
) -> None:
    local = LocalStore(tmp_path / "local")
    expected = files_of(local.open_path(record_call(local.create("CA123", STARTED)).recording_id))

    spool = tmp_path / "spool"
    spy = SpyClient(dummy_client(endpoint))
    store = S3Store(spy, bucket, spool, prefix="calls/")
    sink = store.create("CA123", STARTED)
    assert sink.id == "2025-01-31/CA123" and sink.spool_path == spool / "2025-01-31" / "CA123"
    recorder = record_call(sink, finalize=False)
    assert spy.puts == []  # nothing leaves the machine before finalize
    recorder.finalize(ended_by="caller_hangup", finished_at=FINISHED)
    assert not recorder.failed
    assert spy.puts == [f"calls/2025-01-31/CA123/{name}" for name in UPLOAD_ORDER]
    assert not sink.spool_path.exists()

    folder = store.open_path(sink.id)
    assert folder == tmp_path / "spool" / ".downloads" / "2025-01-31" / "CA123"
    assert files_of(folder) == expected
    recording = Recording.load(folder)
    assert recording.complete and recording.meta["ended_by"] == "caller_hangup"
    assert recording.meta["event_count"] == 3 and recording.meta["duration_s"] == 1.0
    assert [e["type"] for e in recording.events] == ["turn", "bot_audio", "clear"]
    assert recording.caller_ulaw() == bytes([1]) * 160 + b"\xff" * 160 + bytes([2]) * 160
    assert recording.bot_sent_ulaw() == bytes([3]) * 800
    assert store.open_path(sink.id) == folder and files_of(folder) == expected  # a second download


def test_list_recent_is_newest_first_and_ids_never_repeat(endpoint: str, bucket: str, tmp_path: Path) -> None:
    store = new_store(endpoint, bucket, tmp_path / "spool")
    assert store.list_recent(5) == []
    starts = {
        "CAold": datetime(2025, 1, 30, 12, 0, tzinfo=UTC),
        "CAlate": datetime(2025, 1, 31, 18, 0, tzinfo=UTC),
        "CAearly": datetime(2025, 1, 31, 9, 0, tzinfo=UTC),
    }
    ids = [record_call(store.create(sid, at), started=at).recording_id for sid, at in starts.items()]
    # Same sid again that day, after the first one was uploaded and its spool folder removed.
    again = datetime(2025, 1, 31, 20, 0, tzinfo=UTC)
    retried = record_call(store.create("CAlate", again), started=again).recording_id
    assert retried == "2025-01-31/CAlate-2"
    in_progress = store.create("CAlive", datetime(2025, 1, 31, 23, 0, tzinfo=UTC))  # not uploaded yet

    newest_first = [retried, ids[1], ids[2], ids[0]]
    assert store.list_recent(10) == newest_first
    assert store.list_recent(3) == newest_first[:3]
    assert store.list_recent(0) == []
    # A fresh store (no cached starts) reads started_at back from each meta.json.
    assert new_store(endpoint, bucket, tmp_path / "other").list_recent(10) == newest_first
    in_progress.close()


def test_open_path_rejects_bad_ids_and_reports_missing(endpoint: str, bucket: str, tmp_path: Path) -> None:
    store = new_store(endpoint, bucket, tmp_path / "spool")
    for bad in ("../x", "2025-01-31/../../etc", "2025-01-31/..", "/etc/passwd", "", "2025-01-31"):
        with pytest.raises(ValueError):
            store.open_path(bad)
    with pytest.raises(FileNotFoundError):
        store.open_path("2025-01-31/CAnone")


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=40) | st.from_regex(r"\d{4}-\d{2}-\d{2}/[./A-Za-z0-9_-]{0,12}", fullmatch=True))
def test_open_path_checks_the_id_before_any_request(recording_id: str) -> None:
    store = S3Store(NoNetworkClient(), "bucket", Path("/nonexistent/spool"))
    if is_recording_id(recording_id):  # stays inside the download cache
        assert (store.cache / recording_id).resolve().is_relative_to(store.cache.resolve())
    else:
        with pytest.raises(ValueError):
            store.open_path(recording_id)


def test_a_live_call_is_not_an_orphan(endpoint: str, bucket: str, tmp_path: Path) -> None:
    spool = tmp_path / "spool"
    store = new_store(endpoint, bucket, spool)
    sink = store.create("CAlive", STARTED)
    recorder = record_call(sink, finalize=False)
    # Neither this store nor another process sharing the spool (another store here) takes its folder.
    assert store.upload_orphans() == [] and new_store(endpoint, bucket, spool).upload_orphans() == []
    assert sink.spool_path.is_dir()
    recorder.finalize(ended_by="caller_hangup")
    assert not recorder.failed and Recording.load(store.open_path(sink.id)).complete


# Records into an S3Store's spool, then SIGKILLs itself: the kernel closes its files and drops its locks.
KILLED_CHILD = """
import os, signal, sys
from datetime import UTC, datetime
from pathlib import Path
from bot.recording import CallRecorder
from bot.recording.s3 import S3Store

store = S3Store(None, "unused", Path(sys.argv[1]))  # no request is made before finalize
sink = store.create("CAkilled", datetime(2025, 1, 31, 23, 59, 30, tzinfo=UTC))
recorder = CallRecorder(sink)
recorder.start(call_sid="CAkilled", flow="demo")
recorder.event("turn", text="hello")
recorder.caller_audio(0, bytes([1]) * 160)
recorder.bot_audio(bytes([3]) * 800, response_id=1, mark="r1-p0")
os.kill(os.getpid(), signal.SIGKILL)
"""


@pytest.mark.skipif(sys.platform == "win32", reason="SIGKILL is POSIX")
def test_killed_call_is_uploaded_by_upload_orphans(endpoint: str, bucket: str, tmp_path: Path) -> None:
    spool = tmp_path / "spool"
    child = subprocess.run(
        [sys.executable, "-c", KILLED_CHILD, str(spool)], capture_output=True, timeout=60, check=False
    )
    assert child.returncode == -signal.SIGKILL, child.stderr.decode(errors="replace")
    folder = spool / "2025-01-31" / "CAkilled"
    assert folder.is_dir()

    restarted = new_store(endpoint, bucket, spool)
    assert restarted.list_recent(10) == []
    assert restarted.upload_orphans() == ["2025-01-31/CAkilled"]
    assert list(spool.iterdir()) == []
    assert restarted.upload_orphans() == []
    recording = Recording.load(restarted.open_path("2025-01-31/CAkilled"))
    assert not recording.complete and recording.meta["flow"] == "demo"
    assert [e["type"] for e in recording.events] == ["turn", "bot_audio"]
    assert recording.caller_ulaw() == bytes([1]) * 160 and recording.bot_sent_ulaw() == bytes([3]) * 800
    assert restarted.list_recent(10) == ["2025-01-31/CAkilled"]
    again = restarted.create("CAkilled", STARTED)
    assert again.id == "2025-01-31/CAkilled-2"  # the uploaded id is not handed out again
    again.close()


@pytest.mark.parametrize("failure", ["unreachable", "no_bucket"])
def test_failed_upload_is_logged_once_and_keeps_the_spool_folder(
    endpoint: str, bucket: str, tmp_path: Path, failure: str
) -> None:
    spool = tmp_path / "spool"
    with refused_port() as sock:
        if failure == "unreachable":
            broken = new_store(f"http://127.0.0.1:{sock.getsockname()[1]}", bucket, spool)
        else:
            broken = new_store(endpoint, "no-such-bucket", spool)
        sink = broken.create("CAfail", STARTED)
        with structlog.testing.capture_logs() as logs:
            recorder = record_call(sink)  # finalize must not raise
    failures = [entry for entry in logs if entry["event"] == "recording_failed"]
    assert len(failures) == 1 and failures[0]["during"] == "finalize"
    assert failures[0]["recording_id"] == "2025-01-31/CAfail" and recorder.failed
    assert sorted(files_of(sink.spool_path)) == RECORDING_FILES
    assert Recording.load(sink.spool_path).complete  # the final meta is kept for the retry

    store = new_store(endpoint, bucket, spool)
    assert store.upload_orphans() == ["2025-01-31/CAfail"]
    assert not sink.spool_path.exists()
    assert Recording.load(store.open_path("2025-01-31/CAfail")).complete


def test_upload_orphans_logs_a_failure_and_keeps_going(tmp_path: Path) -> None:
    spool = tmp_path / "spool"
    with refused_port() as sock:
        url = f"http://127.0.0.1:{sock.getsockname()[1]}"
        sink = LocalStore(spool).create("CAa", STARTED)  # what a killed process leaves: same layout
        record_call(sink, finalize=False)
        sink.close()
        restarted = new_store(url, "bucket", spool)
        (spool / "2025-01-31" / "CAempty").mkdir()  # killed before start: nothing to upload, removed
        old = time.time() - EMPTY_FOLDER_GRACE_S - 10
        os.utime(spool / "2025-01-31" / "CAempty", (old, old))
        (spool / "2025-01-31" / "CAjust").mkdir()  # maybe a create about to lock it: left alone
        (spool / "not-a-day").mkdir()  # not ours: left alone
        with structlog.testing.capture_logs() as logs:
            assert restarted.upload_orphans() == []
    assert [entry["recording_id"] for entry in logs if entry["event"] == "recording_upload_failed"] == [
        "2025-01-31/CAa"
    ]
    assert sink.path.is_dir() and not (spool / "2025-01-31" / "CAempty").exists()
    assert (spool / "2025-01-31" / "CAjust").is_dir()
    assert (spool / "not-a-day").is_dir()


def test_a_never_started_recording_leaves_nothing(tmp_path: Path) -> None:
    store = S3Store(NoNetworkClient(), "bucket", tmp_path / "spool")
    sink = store.create("CAnever", STARTED)
    recorder = CallRecorder(sink)
    recorder.finalize()
    assert not recorder.failed and not sink.spool_path.exists()
    assert store.upload_orphans() == []
