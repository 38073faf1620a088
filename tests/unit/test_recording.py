"""Call recording format v1: writer, local store and reader.

Rules checked here: meta/events/audio round trip; caller audio placed by Twilio timestamp (gaps filled with
silence, overlaps appended and reported once); audio as played rebuilt from bot_audio/clear events (never
longer than sent, equal to it without clears); a torn last events line is tolerated, a bad middle line is
skipped and named by its line (test_recording_reader.py checks every field); secrets and sensitive fields are
redacted at any depth; finalize is idempotent; an I/O failure never raises into the call; concurrent recorders
never mix their data; store ids cannot escape root.
"""

from __future__ import annotations

import asyncio
import io
import itertools
import json
import shutil
import wave
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import structlog
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.recording import CallRecorder, LocalStore, Recording, RecordingError
from bot.recording.format import sanitize_call_sid
from bot.recording.playback import CutSpan, place_bot_audio, render_heard
from bot.recording.reader import PlayedSegment, played_segments, render_timeline
from bot.recording.store import LocalSink
from bot.recording.writer import CALLER_LEAD_S
from tests.support.clocks import STARTED, FakeClock
from tests.support.fakes import MemorySink

SECRET = "sk-live-0123456789"


class FailingSink(MemorySink):
    def __init__(self, fail_on: str) -> None:
        super().__init__()
        self.fail_on = fail_on
        self.calls = 0

    def append(self, name: str, data: bytes) -> None:
        self.calls += 1
        if self.fail_on == "append":
            raise OSError(28, "No space left on device")
        super().append(name, data)

    def replace(self, name: str, data: bytes) -> None:
        self.calls += 1
        if self.fail_on == "replace":
            raise PermissionError(13, "Permission denied")
        super().replace(name, data)


def frame(value: int, size: int = 160) -> bytes:
    return bytes([value]) * size


def new_recorder(root: Path, clock: FakeClock, call_sid: str = "CA123", **kwargs: Any) -> CallRecorder:
    return CallRecorder(LocalStore(root).create(call_sid, STARTED), clock=clock, **kwargs)


def folder_of(recorder: CallRecorder, root: Path) -> Path:
    return LocalStore(root).open_path(recorder.recording_id)


# --- round trip -----------------------------------------------------------------------------------


def test_round_trip_of_meta_events_and_audio(tmp_path: Path) -> None:
    clock = FakeClock()
    recorder = new_recorder(tmp_path, clock)
    recorder.start(
        call_sid="CA123",
        stream_sid="MZ1",
        started_at=STARTED,
        flow="demo",
        flow_version=3,
        bot_version="0.1.0",
    )
    clock.now += 0.25
    recorder.event("turn", text="hello", n=1, nested={"a": [1, 2.5, None, True]})
    recorder.caller_audio(0, frame(1))
    recorder.caller_audio(20, frame(2))
    clock.now += 0.25
    recorder.bot_audio(frame(3, 800), response_id=1, mark="r1-p0")
    recorder.bot_audio(frame(4, 400), response_id=1, mark="r1-p1")
    clock.now += 0.5
    recorder.clear()
    recorder.finalize(ended_by="caller_hangup", finished_at=datetime(2025, 2, 1, 0, 0, tzinfo=UTC))

    folder = folder_of(recorder, tmp_path)
    assert folder == tmp_path / "2025-01-31" / "CA123"
    assert recorder.recording_id == "2025-01-31/CA123"
    recording = Recording.load(folder)
    meta = recording.meta
    assert meta["format"] == 1 and meta["complete"] is True and recording.complete
    assert meta["call_sid"] == "CA123" and meta["stream_sid"] == "MZ1" and meta["flow"] == "demo"
    assert meta["flow_version"] == 3 and meta["bot_version"] == "0.1.0"
    assert meta["started_at"] == "2025-01-31T23:59:30+00:00"
    assert meta["finished_at"] == "2025-02-01T00:00:00+00:00"
    assert meta["ended_by"] == "caller_hangup" and meta["duration_s"] == 1.0
    assert meta["event_count"] == 4 and meta["caller_audio_bytes"] == 320 and meta["bot_audio_bytes"] == 1200
    assert not recording.torn_tail
    assert recording.events == [
        {"t": 0.25, "type": "turn", "text": "hello", "n": 1, "nested": {"a": [1, 2.5, None, True]}},
        {"t": 0.5, "type": "bot_audio", "offset": 0, "bytes": 800, "response_id": 1, "mark": "r1-p0"},
        {"t": 0.5, "type": "bot_audio", "offset": 800, "bytes": 400, "response_id": 1, "mark": "r1-p1"},
        {"t": 1.0, "type": "clear"},
    ]
    assert [e["mark"] for e in recording.events_of("bot_audio")] == ["r1-p0", "r1-p1"]
    assert recording.caller_ulaw() == frame(1) + frame(2)
    assert recording.bot_sent_ulaw() == frame(3, 800) + frame(4, 400)
    # Both chunks arrive at 0.5 s (offset 4000) and play back to back, all done before the clear at 1.0 s.
    assert recording.bot_played_ulaw() == b"\xff" * 4000 + frame(3, 800) + frame(4, 400)


def test_open_recording_reads_as_incomplete(tmp_path: Path) -> None:
    recorder = new_recorder(tmp_path, FakeClock())
    recorder.start(call_sid="CA123")
    recording = Recording.load(folder_of(recorder, tmp_path))
    assert not recording.complete and recording.meta["complete"] is False
    assert recording.events == [] and recording.caller_ulaw() == b"" and recording.bot_played_ulaw() == b""
    assert "started_at" in recording.meta  # defaults to now
    datetime.fromisoformat(recording.meta["started_at"])


def test_recorder_keys_win_and_calls_outside_start_finalize_are_ignored(tmp_path: Path) -> None:
    clock = FakeClock()
    recorder = new_recorder(tmp_path, clock)
    recorder.event("early")
    recorder.caller_audio(0, frame(1))
    recorder.start(format=99, complete=True)
    recorder.event("x", t=123, type="y")
    recorder.finalize()
    recorder.event("late")
    recorder.bot_audio(frame(1), response_id=1, mark="m")
    recording = Recording.load(folder_of(recorder, tmp_path))
    assert recording.events == [{"t": 0.0, "type": "x"}]
    assert recording.meta["format"] == 1
    assert recording.caller_ulaw() == b"" and recording.bot_sent_ulaw() == b""


def test_values_are_made_json_safe() -> None:
    sink = MemorySink()
    recorder = CallRecorder(sink, clock=FakeClock())
    recorder.start()
    recorder.event(
        "odd",
        when=STARTED,
        blob=b"\x00\x01",
        obj=object.__new__(FakeClock),
        nan=float("nan"),
        items=(1, 2),
        keys={3: "three"},
    )
    event = json.loads(sink.files["events.jsonl"])
    assert event["when"] == "2025-01-31T23:59:30+00:00" and event["blob"] == "<2 bytes>"
    assert event["obj"].startswith("<") and event["nan"] == "nan"
    assert event["items"] == [1, 2] and event["keys"] == {"3": "three"}


# --- caller audio ---------------------------------------------------------------------------------


def test_caller_gaps_filled_with_silence_and_overlaps_appended(tmp_path: Path) -> None:
    recorder = new_recorder(tmp_path, FakeClock())
    recorder.start()
    recorder.caller_audio(0, frame(1))
    recorder.caller_audio(40, frame(2))  # 20 ms lost: 160 bytes of silence first
    recorder.caller_audio(40, frame(3))  # behind the end: appended, reported
    recorder.caller_audio(60, frame(4))  # behind again: appended, not reported twice
    recorder.caller_audio(200, frame(5, 80))  # a shorter frame after a gap
    recorder.finalize()
    recording = Recording.load(folder_of(recorder, tmp_path))
    caller = recording.caller_ulaw()
    assert caller[:160] == frame(1) and caller[160:320] == b"\xff" * 160 and caller[320:480] == frame(2)
    assert caller[480:800] == frame(3) + frame(4)
    assert caller[800:1600] == b"\xff" * 800 and caller[1600:] == frame(5, 80)
    overlaps = recording.events_of("caller_audio_overlap")
    assert len(overlaps) == 1 and overlaps[0]["timestamp_ms"] == 40 and overlaps[0]["end_ms"] == 60
    assert recording.meta["caller_audio_overlaps"] == 2


def test_caller_timestamp_jump_is_not_filled() -> None:
    sink = MemorySink()
    clock = FakeClock()
    recorder = CallRecorder(sink, clock=clock)
    recorder.start()
    recorder.caller_audio(0, frame(1))
    clock.now += 3 * 3600  # even when the call's clock allows it:
    recorder.caller_audio(10_000_000, frame(2))  # 2.8 hours later: a bogus timestamp, not a silence
    assert bytes(sink.files["caller.ulaw"]) == frame(1) + frame(2)
    assert json.loads(sink.files["events.jsonl"])["type"] == "caller_audio_jump"


def test_hostile_timestamps_cannot_grow_the_file_faster_than_the_call_lasts(tmp_path: Path) -> None:
    # Issue 14: 30 frames, each stamped 599 s after the previous one (under the jump limit), made a
    # 144 MB caller.ulaw at once (each gap filled with silence). Placement is bounded by the call's clock.
    clock = FakeClock()
    recorder = new_recorder(tmp_path, clock)
    recorder.start()
    for i in range(30):
        recorder.caller_audio((i + 1) * 599_000, frame(i))
    clock.now += 1
    recorder.finalize()
    recording = Recording.load(folder_of(recorder, tmp_path))
    caller = recording.caller_ulaw()
    lead = int(CALLER_LEAD_S * 8000)
    assert len(caller) == lead + 30 * 160  # 20 840 bytes: silence up to the lead, then the frames appended
    assert caller[:lead] == b"\xff" * lead and caller[lead:] == b"".join(frame(i) for i in range(30))
    ahead = recording.events_of("caller_audio_ahead")
    assert len(ahead) == 1 and ahead[0]["timestamp_ms"] == 599_000  # reported once, not per frame
    assert recording.meta["caller_audio_ahead"] == 30 and recording.meta["caller_audio_overlaps"] == 0


def test_caller_audio_is_placed_by_timestamp_up_to_the_call_clock_plus_the_lead() -> None:
    clock = FakeClock()
    sink = MemorySink()
    recorder = CallRecorder(sink, clock=clock)
    recorder.start()
    clock.now += 10  # a late frame after a pause on a busy machine: its timestamp is behind the clock
    recorder.caller_audio(9_000, frame(1))
    assert len(sink.files["caller.ulaw"]) == 9_000 * 8 + 160  # placed at its timestamp, as before
    recorder.caller_audio(10_000 + int(CALLER_LEAD_S * 1000), frame(2))  # exactly at the lead: fine
    assert len(sink.files["caller.ulaw"]) == (10_000 + CALLER_LEAD_S * 1000) * 8 + 160
    assert b"caller_audio_ahead" not in sink.files.get("events.jsonl", b"")
    recorder.caller_audio(60_000, frame(3))  # 48 s ahead of the clock: appended at the end
    assert len(sink.files["caller.ulaw"]) == (10_000 + CALLER_LEAD_S * 1000) * 8 + 320


def test_caller_audio_is_capped_at_the_limit() -> None:
    clock = FakeClock()
    sink = MemorySink()
    recorder = CallRecorder(sink, clock=clock)
    recorder.start()
    recorder.limit_caller_audio(1.0)  # 8000 bytes
    for i in range(60):  # 1.2 s of frames, in real time
        recorder.caller_audio(i * 20, frame(i))
        clock.now += 0.02
    recorder.finalize()
    caller = bytes(sink.files["caller.ulaw"])
    assert caller == b"".join(frame(i) for i in range(50))
    events = [json.loads(line) for line in bytes(sink.files["events.jsonl"]).splitlines()]
    assert [e["type"] for e in events] == ["caller_audio_full"] and events[0]["timestamp_ms"] == 1000
    meta = json.loads(sink.files["meta.json"])
    assert meta["caller_audio_bytes"] == 8000 and meta["caller_audio_dropped_bytes"] == 1600


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.tuples(st.integers(0, 10**9), st.integers(1, 400), st.floats(0, 5)),  # timestamp, size, clock step
        max_size=40,
    ),
    st.floats(1, 100),
)
def test_caller_file_never_outgrows_the_clock_nor_the_limit(
    frames: list[tuple[int, int, float]], limit_s: float
) -> None:
    clock = FakeClock()
    sink = MemorySink()
    recorder = CallRecorder(sink, clock=clock)
    recorder.start()
    recorder.limit_caller_audio(limit_s)
    received = 0
    for timestamp_ms, size, step in frames:
        clock.now += step
        recorder.caller_audio(timestamp_ms, frame(1, size))
        received += size
        written = len(sink.files.get("caller.ulaw", b""))
        # silence is filled up to the clock plus the lead at most; every frame adds at most its own bytes
        assert written <= (clock.now - 1000.0 + CALLER_LEAD_S) * 8000 + received
        assert written <= int(limit_s * 8000)


# --- audio as played ------------------------------------------------------------------------------


def test_played_audio_with_queueing_and_clear(tmp_path: Path) -> None:
    clock = FakeClock()
    recorder = new_recorder(tmp_path, clock)
    recorder.start()
    recorder.bot_audio(frame(1, 1600), response_id=1, mark="a")  # t=0: plays 0..1600
    clock.now += 0.1
    recorder.bot_audio(frame(2, 1600), response_id=1, mark="b")  # t=0.1: queued, plays 1600..3200
    clock.now += 0.2
    recorder.clear()  # t=0.3 = offset 2400: b is cut after 800 bytes
    clock.now += 0.7
    recorder.bot_audio(frame(3, 400), response_id=2, mark="c")  # t=1.0: plays 8000..8400
    recorder.finalize()
    recording = Recording.load(folder_of(recorder, tmp_path))
    assert recording.bot_played_segments() == [
        PlayedSegment(0, frame(1, 1600), 1, "a"),
        PlayedSegment(1600, frame(2, 800), 1, "b"),
        PlayedSegment(8000, frame(3, 400), 2, "c"),
    ]
    played = recording.bot_played_ulaw()
    assert played == frame(1, 1600) + frame(2, 800) + b"\xff" * 5600 + frame(3, 400)
    assert len(recording.bot_sent_ulaw()) == 3600


@pytest.mark.parametrize("offset", ['"x"', '"0"', "0.0", "true", "-1"])
def test_bad_bot_audio_line_is_skipped_and_named(tmp_path: Path, offset: str) -> None:
    folder = finished_recording(tmp_path)
    with (folder / "events.jsonl").open("ab") as f:
        f.write(b'{"t":0.35,"type":"bot_audio","offset":%s,"bytes":1}\n' % offset.encode())
    recording = Recording.load(folder)
    assert [e["i"] for e in recording.events] == [0, 1, 2] and recording.skipped_lines == 1
    assert recording.skipped[0].startswith("events.jsonl:4: bot_audio event: offset: ")


def test_placement_skips_what_the_reader_refuses_and_what_holds_no_audio() -> None:
    events: list[dict[str, Any]] = [
        {"t": 0.0, "type": "bot_audio", "offset": "x", "bytes": 1, "response_id": 1},
        {"t": 0.0, "type": "bot_audio", "offset": -1, "bytes": 10, "response_id": 1},
        {"t": 0.0, "type": "bot_audio", "offset": 0, "bytes": 0, "response_id": 1},
        {"t": 0.0, "type": "bot_audio", "offset": 100, "bytes": 10, "response_id": 1},  # past the file
        {"t": 0.0, "type": "bot_audio", "offset": 60, "bytes": 80, "response_id": [2]},  # file cut short
    ]
    playback = place_bot_audio(events, 100)
    assert [(c.offset, c.start, c.end, c.response_id) for c in playback.chunks] == [(60, 0, 40, [2])]
    assert [(p.response_id, p.mark) for p in playback.phrases] == [("[2]", "")]


def test_phrases_are_closed_by_marks_and_clears() -> None:
    def audio(t: float, offset: int, rid: int, mark: str = "") -> dict[str, Any]:
        return {"t": t, "type": "bot_audio", "offset": offset, "bytes": 800, "response_id": rid, "mark": mark}

    def mark_sent(t: float, rid: int, mark: str, text: str) -> dict[str, Any]:
        return {"t": t, "type": "mark_sent", "response_id": rid, "mark": mark, "text": text}

    events = [
        audio(0.0, 0, 1),
        audio(0.0, 800, 1),
        mark_sent(0.0, 1, "r1-p1", "Hi."),
        audio(0.0, 1600, 1, mark="own"),  # closes its own phrase; its text comes later
        audio(0.0, 2400, 2),
        mark_sent(0.1, 1, "own", "There."),
        {"t": 0.25, "type": "clear"},  # offset 2000: "There." cut, r2 dropped and its phrase closed unmarked
        audio(0.5, 3200, 2),
        mark_sent(0.5, 2, "r2-p1", "Later."),
        audio(1.0, 4000, 3),  # the call ends before its mark
    ]
    playback = place_bot_audio(events, 4800)
    summary = [(p.response_id, p.mark, p.text, [c.offset for c in p.chunks]) for p in playback.phrases]
    assert summary == [
        ("1", "r1-p1", "Hi.", [0, 800]),
        ("1", "own", "There.", [1600]),
        ("2", "", "", [2400]),
        ("2", "r2-p1", "Later.", [3200]),
        ("3", "", "", [4000]),
    ]
    placed = [(c.start, c.end, c.played_end) for c in playback.chunks]
    assert placed[:2] == [(0, 800, 800), (800, 1600, 1600)]
    assert placed[2:] == [(1600, 2400, 2000), (2400, 3200, 2400), (4000, 4800, 4800), (8000, 8800, 8800)]
    assert playback.cuts == (CutSpan(2000, 3200),)
    assert playback.first_sent() == {"1": 0.0, "2": 0.0, "3": 1.0}
    assert [(s.start, len(s.audio), s.mark) for s in played_segments(events, bytes(4800))] == [
        (0, 800, ""),
        (800, 800, ""),
        (1600, 400, "own"),
        (4000, 800, ""),
        (8000, 800, ""),
    ]


def test_clear_before_audio_starts_drops_it_all() -> None:
    events = [
        {"t": 0.0, "type": "bot_audio", "offset": 0, "bytes": 800, "response_id": 1, "mark": "a"},
        {"t": 0.0, "type": "bot_audio", "offset": 800, "bytes": 800, "response_id": 1, "mark": "b"},
        {"t": 0.1, "type": "clear"},  # offset 800: a done exactly, b not started
    ]
    segments = played_segments(events, frame(1, 800) + frame(2, 800))
    assert segments == [PlayedSegment(0, frame(1, 800), 1, "a")]


operations = st.lists(
    st.one_of(
        st.tuples(st.just("audio"), st.integers(0, 300), st.integers(1, 3000)),
        st.tuples(st.just("clear"), st.integers(0, 300), st.just(0)),
    ),
    max_size=25,
)


def build_events(ops: list[tuple[str, int, int]]) -> tuple[list[dict[str, Any]], bytes]:
    events: list[dict[str, Any]] = []
    sent = bytearray()
    t_ms = 0
    for i, (kind, dt_ms, size) in enumerate(ops):
        t_ms += dt_ms
        if kind == "clear":
            events.append({"t": t_ms / 1000, "type": "clear"})
        else:
            events.append(
                {
                    "t": t_ms / 1000,
                    "type": "bot_audio",
                    "offset": len(sent),
                    "bytes": size,
                    "response_id": i,
                    "mark": f"m{i}",
                }
            )
            sent += bytes([i % 255]) * size
    return events, bytes(sent)


@given(operations)
def test_played_never_longer_than_sent_and_equal_without_clear(ops: list[tuple[str, int, int]]) -> None:
    events, sent = build_events(ops)
    segments = played_segments(events, sent)
    played = b"".join(s.audio for s in segments)
    assert len(played) <= len(sent)
    if not any(kind == "clear" for kind, _, _ in ops):
        assert played == sent
    audio_events = [e for e in events if e["type"] == "bot_audio"]
    arrivals = {e["mark"]: round(e["t"] * 8000) for e in audio_events}
    chunks = {e["mark"]: sent[e["offset"] : e["offset"] + e["bytes"]] for e in audio_events}
    for before, after in itertools.pairwise(segments):
        assert before.end <= after.start  # one voice at a time, in order
    for segment in segments:
        assert segment.start >= arrivals[segment.mark]  # never plays before it arrived
        assert chunks[segment.mark].startswith(segment.audio)  # a clear only cuts the tail


def phone_model(events: list[dict[str, Any]], sent: bytes) -> bytes:
    """An independent model of the phone: its queue is the timeline's unplayed tail, so a chunk is appended
    where the timeline ends (or at its arrival, after silence) and a clear cuts the timeline where it is."""
    timeline = bytearray()
    for event in events:
        at = round(event["t"] * 8000)
        if event["type"] == "clear":
            del timeline[at:]
            timeline = timeline.rstrip(b"\xff")  # silence waiting for dropped audio (no chunk holds 0xFF)
        elif audio := sent[event["offset"] : event["offset"] + event["bytes"]]:
            timeline += b"\xff" * (at - len(timeline)) + audio
    return bytes(timeline)


@given(operations, st.integers(0, 3000))
def test_placement_matches_a_model_of_the_phone(ops: list[tuple[str, int, int]], crash_cut: int) -> None:
    events, sent = build_events(ops)
    sent = sent[: max(0, len(sent) - crash_cut)]  # a bot.ulaw cut short: bytes past its end never played
    playback = place_bot_audio(events, len(sent))
    assert render_heard(playback.chunks, sent) == phone_model(events, sent)
    assert render_heard(playback.chunks, sent) == render_timeline(played_segments(events, sent))
    assert sorted(c.offset for p in playback.phrases for c in p.chunks) == [c.offset for c in playback.chunks]
    dropped = sum(c.end - c.played_end for c in playback.chunks)
    assert sum(cut.end - cut.start for cut in playback.cuts) == dropped  # cut spans: what the clears dropped


# --- events file robustness -----------------------------------------------------------------------


def finished_recording(root: Path) -> Path:
    clock = FakeClock()
    recorder = new_recorder(root, clock)
    recorder.start()
    for i in range(3):
        clock.now += 0.1
        recorder.event("tick", i=i)
    recorder.finalize()
    return folder_of(recorder, root)


def test_torn_last_line_is_skipped_and_reported(tmp_path: Path) -> None:
    folder = finished_recording(tmp_path)
    with (folder / "events.jsonl").open("ab") as f:
        f.write(b'{"t":0.4,"type":"ti')
    recording = Recording.load(folder)
    assert recording.torn_tail and [e["i"] for e in recording.events] == [0, 1, 2]


def test_complete_last_line_without_newline_is_kept(tmp_path: Path) -> None:
    folder = finished_recording(tmp_path)
    events_file = folder / "events.jsonl"
    events_file.write_bytes(events_file.read_bytes().rstrip(b"\n"))
    recording = Recording.load(folder)
    assert not recording.torn_tail and len(recording.events) == 3


@pytest.mark.parametrize(
    ("bad_line", "message"),
    [
        (b"{not json", "events.jsonl:2: not JSON"),
        (b"[1, 2]", "events.jsonl:2: not a JSON object"),
        (b'{"type": "x"}', "events.jsonl:2: x event: t: Field required"),
        (b"", "events.jsonl:2: not JSON"),
    ],
)
def test_bad_middle_line_is_skipped_and_named_by_its_line_number(
    tmp_path: Path, bad_line: bytes, message: str
) -> None:
    folder = finished_recording(tmp_path)
    events_file = folder / "events.jsonl"
    lines = events_file.read_bytes().split(b"\n")
    events_file.write_bytes(b"\n".join([lines[0], bad_line, *lines[1:]]))
    recording = Recording.load(folder)
    assert [e["i"] for e in recording.events] == [0, 1, 2] and not recording.torn_tail
    assert recording.skipped_lines == 1 and recording.skipped[0].startswith(message)


def test_unreadable_meta_is_an_error(tmp_path: Path) -> None:
    folder = finished_recording(tmp_path)
    meta_file = folder / "meta.json"
    meta_file.write_text(json.dumps({"format": 2}))
    with pytest.raises(RecordingError, match="format 2"):
        Recording.load(folder)
    meta_file.write_text("{")
    with pytest.raises(RecordingError, match=r"meta\.json: not JSON"):
        Recording.load(folder)
    meta_file.unlink()
    with pytest.raises(RecordingError, match=r"meta\.json: missing"):
        Recording.load(folder)
    with pytest.raises(RecordingError, match="not a recording folder"):
        Recording.load(tmp_path / "nowhere")


# --- redaction ------------------------------------------------------------------------------------


def test_secrets_and_sensitive_fields_are_redacted_at_any_depth() -> None:
    sink = MemorySink()
    recorder = CallRecorder(
        sink, clock=FakeClock(), secrets=[SECRET, "abc"], sensitive_fields=["card_number", "Authorization"]
    )
    recorder.start(flow="demo", api_key=f"key={SECRET}")
    recorder.event(
        "tool_call",
        args={"order": {"items": [{"card_number": 4111111111111111, "qty": 1}]}},
        headers={"authorization": "Bearer abc"},
        note=[f"see {SECRET}!", ("x", SECRET)],
    )
    recorder.finalize(ended_by="bot", detail={"card_number": "4111-0000-card"})
    events_text = sink.files["events.jsonl"].decode()
    meta_text = sink.files["meta.json"].decode()
    # Whole card values: a bare "4111" may turn up in a wall-clock timestamp of the meta (a flaky match).
    assert SECRET not in events_text + meta_text
    assert "4111111111111111" not in events_text and "4111-0000-card" not in meta_text
    event = json.loads(events_text)
    assert event["args"] == {"order": {"items": [{"card_number": "[redacted]", "qty": 1}]}}
    assert event["headers"] == {"authorization": "[redacted]"}
    assert event["note"] == ["see [redacted]!", ["x", "[redacted]"]]
    meta = json.loads(meta_text)
    assert meta["api_key"] == "key=[redacted]" and meta["detail"] == {"card_number": "[redacted]"}
    assert meta["flow"] == "demo"  # "abc" is too short to be a secret: ordinary text stays readable


def test_a_secrets_json_spelling_and_an_overlapping_secret_are_redacted() -> None:
    # Issue 15: the recorder masked a secret only as written, one secret after another; a tool result
    # holding JSON text showed a secret with a quote in its escaped spelling, and a secret overlapping a
    # longer one kept its first characters. Both now follow bot.core.redact, as tool results did.
    quoted, longer, overlapping = 'pa"ss-word-1234', "abcdefgh12", "wxyzabcd"
    sink = MemorySink()
    recorder = CallRecorder(sink, clock=FakeClock(), secrets=[quoted, longer, overlapping])
    recorder.start()
    recorder.event("tool_result", content=json.dumps({"password": quoted}), said="wxyzabcdefgh12")
    text = sink.files["events.jsonl"].decode()
    assert "ss-word" not in text and "wxyz" not in text
    assert json.loads(text)["said"] == "[redacted]"


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=20,
)


@settings(max_examples=60)
@given(value=json_values, prefix=st.text(max_size=5), suffix=st.text(max_size=5))
def test_a_secret_never_reaches_the_file(value: Any, prefix: str, suffix: str) -> None:
    sink = MemorySink()
    recorder = CallRecorder(sink, clock=FakeClock(), secrets=[SECRET])
    recorder.start()
    recorder.event("e", value=value, leaked={"deep": [value, prefix + SECRET + suffix]})
    text = sink.files["events.jsonl"].decode()
    assert SECRET not in text and SECRET not in json.dumps(json.loads(text), ensure_ascii=False)


# --- finalize and failures ------------------------------------------------------------------------


def test_finalize_is_idempotent(tmp_path: Path) -> None:
    clock = FakeClock()
    recorder = new_recorder(tmp_path, clock)
    recorder.start()
    recorder.event("x")
    recorder.finalize(ended_by="caller")
    folder = folder_of(recorder, tmp_path)
    first = (folder / "meta.json").read_bytes()
    clock.now += 5
    recorder.finalize(ended_by="other")
    assert (folder / "meta.json").read_bytes() == first
    assert not recorder.recording and not recorder.failed
    assert sorted(p.name for p in folder.iterdir()) == ["events.jsonl", "meta.json"]  # no temp file left


@pytest.mark.parametrize("fail_on", ["append", "replace"])
def test_sink_failure_is_logged_once_and_stops_recording(fail_on: str) -> None:
    sink = FailingSink(fail_on)
    recorder = CallRecorder(sink, clock=FakeClock())
    with structlog.testing.capture_logs() as logs:
        recorder.start()
        for i in range(5):
            recorder.event("x", i=i)
            recorder.caller_audio(i * 20, frame(1))
            recorder.bot_audio(frame(2), response_id=i, mark=f"m{i}")
            recorder.clear()
        recorder.finalize()
    failures = [entry for entry in logs if entry["event"] == "recording_failed"]
    assert len(failures) == 1 and failures[0]["log_level"] == "warning"
    assert failures[0]["recording_id"] == "mem/1"
    assert ("No space left" if fail_on == "append" else "Permission denied") in failures[0]["error"]
    assert recorder.failed and sink.closed
    assert sink.calls == (2 if fail_on == "append" else 1)  # nothing tried after the first failure


def test_folder_removed_before_a_file_is_opened_never_raises(tmp_path: Path) -> None:
    recorder = new_recorder(tmp_path, FakeClock())
    recorder.start()
    recorder.event("x")
    shutil.rmtree(folder_of(recorder, tmp_path))
    with structlog.testing.capture_logs() as logs:
        recorder.bot_audio(frame(1), response_id=1, mark="m")  # opens bot.ulaw: fails
        recorder.event("y")
        recorder.finalize()
    assert recorder.failed
    assert [entry["during"] for entry in logs if entry["event"] == "recording_failed"] == ["bot_audio"]


def test_folder_removed_mid_call_fails_at_finalize_without_raising(tmp_path: Path) -> None:
    recorder = new_recorder(tmp_path, FakeClock())
    recorder.start()
    recorder.event("x")
    recorder.caller_audio(0, frame(1))
    shutil.rmtree(folder_of(recorder, tmp_path))
    with structlog.testing.capture_logs() as logs:
        recorder.event("y")  # still-open descriptors write into the removed files: no error yet
        recorder.finalize()
    assert recorder.failed
    assert [entry["during"] for entry in logs if entry["event"] == "recording_failed"] == ["finalize"]


def test_store_root_not_a_folder_raises_oserror_at_create(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(OSError):
        LocalStore(blocker).create("CA1", STARTED)


# --- concurrency ----------------------------------------------------------------------------------


async def test_concurrent_recorders_keep_their_own_data(tmp_path: Path) -> None:
    store = LocalStore(tmp_path)

    async def call(n: int) -> str:
        recorder = CallRecorder(store.create(f"CA{n:02d}", STARTED))
        recorder.start(call_sid=f"CA{n:02d}")
        for i in range(30):
            recorder.event("tick", call=n, i=i)
            await asyncio.sleep(0)
            recorder.caller_audio(i * 20, frame(n))
            await asyncio.sleep(0)
            if i % 5 == 0:
                recorder.bot_audio(frame(n + 100, 400), response_id=n, mark=f"{n}-{i}")
            await asyncio.sleep(0)
        recorder.finalize(ended_by="test")
        return recorder.recording_id

    ids = await asyncio.wait_for(asyncio.gather(*(call(n) for n in range(20))), timeout=30)
    assert len(set(ids)) == 20
    for n, recording_id in enumerate(ids):
        recording = Recording.load(store.open_path(recording_id))
        assert recording.complete and recording.meta["call_sid"] == f"CA{n:02d}"
        ticks = recording.events_of("tick")
        assert [e["i"] for e in ticks] == list(range(30)) and {e["call"] for e in ticks} == {n}
        assert {e["response_id"] for e in recording.events_of("bot_audio")} == {n}
        assert recording.caller_ulaw() == frame(n) * 30
        assert recording.bot_sent_ulaw() == frame(n + 100, 400) * 6


# --- store ----------------------------------------------------------------------------------------


def test_call_sid_is_sanitized_and_collisions_get_a_suffix(tmp_path: Path) -> None:
    store = LocalStore(tmp_path)
    assert sanitize_call_sid("../../etc/passwd") == "______etc_passwd"
    assert sanitize_call_sid("") == "unknown" and sanitize_call_sid("..") == "__"
    first = store.create("CA/1", STARTED)
    second = store.create("CA:1", STARTED)
    assert (first.id, second.id) == ("2025-01-31/CA_1", "2025-01-31/CA_1-2")
    assert isinstance(first, LocalSink) and first.path.parent.parent == tmp_path


def test_list_recent_newest_first_and_open_path_checks_ids(tmp_path: Path) -> None:
    store = LocalStore(tmp_path)
    assert store.list_recent(5) == []
    starts = [
        datetime(2025, 1, 30, 10, tzinfo=UTC),
        datetime(2025, 1, 31, 9, tzinfo=UTC),
        datetime(2025, 1, 31, 11, tzinfo=UTC),
        datetime(2025, 1, 31, 10, tzinfo=UTC),
    ]
    for n, started in enumerate(starts):
        recorder = CallRecorder(store.create(f"CA{n}", started))
        recorder.start(started_at=started)
    (tmp_path / "not-a-day").mkdir()
    assert store.list_recent(10) == ["2025-01-31/CA2", "2025-01-31/CA3", "2025-01-31/CA1", "2025-01-30/CA0"]
    assert store.list_recent(2) == ["2025-01-31/CA2", "2025-01-31/CA3"]
    assert store.open_path("2025-01-30/CA0") == tmp_path / "2025-01-30" / "CA0"
    for bad in ["../x", "2025-01-30/..", "2025-01-30/CA0/meta.json", "/etc", "2025-01-30"]:
        with pytest.raises(ValueError):
            store.open_path(bad)
    with pytest.raises(FileNotFoundError):
        store.open_path("2025-01-30/CA9")


# --- listening ------------------------------------------------------------------------------------


def test_stereo_wav_has_caller_left_and_played_bot_right(tmp_path: Path) -> None:
    clock = FakeClock()
    recorder = new_recorder(tmp_path, clock)
    recorder.start()
    recorder.caller_audio(0, frame(0x00, 160))  # loud caller (μ-law 0x00 = most negative sample)
    clock.now += 0.04
    recorder.bot_audio(frame(0x80, 320), response_id=1, mark="m")  # loud bot from offset 320
    recorder.finalize()
    data = Recording.load(folder_of(recorder, tmp_path)).stereo_wav()
    with wave.open(io.BytesIO(data)) as reader:
        assert (reader.getnchannels(), reader.getframerate(), reader.getsampwidth()) == (2, 8000, 2)
        assert reader.getnframes() == 640
        samples = memoryview(reader.readframes(640)).cast("h")
    left, right = samples[0::2], samples[1::2]
    assert all(v != 0 for v in left[:160]) and all(v == 0 for v in left[160:])
    assert all(v == 0 for v in right[:320]) and all(v != 0 for v in right[320:])
