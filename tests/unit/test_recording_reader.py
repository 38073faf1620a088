"""The reader against tampered and odd recordings (issue 14, item 12).

Rules checked here: a line with a time far past the call (``t: 2e5``, 79 bytes) is skipped and cannot make
the inspector or the WAV allocate by it (tracemalloc); ``NaN``/``Infinity`` and numbers beyond a double are
refused where they stand, the rest of the call is shown; a time past the call cannot hang the page's axis;
a malformed turn, a bad meta, a missing or unreadable file make ``bot replay`` exit 2 with one line, never 1,
never a traceback; any events.jsonl content (hypothesis) loads without raising anything, and what the reader
hands on is finite, within the call and readable by everything downstream (inspector, replay).
"""

from __future__ import annotations

import asyncio
import json
import math
import tracemalloc
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bot.cli import main
from bot.inspector import build_timeline, render_page
from bot.inspector.slots import InspectorSlots
from bot.inspector.wav_cache import WavCache, WavTooLong, recording_key
from bot.inspector.waveform import placed_peaks, waveform_peaks
from bot.recording import Recording, RecordingError
from bot.recording.events import MAX_CALL_S, TIME_MARGIN_S, time_limit_s
from bot.recording.playback import ulaw_timeline
from bot.sim.replay import recorded, schedule
from tests.support.sample_call import DURATION, write_sample_call

LINE_2E5 = b'{"t":2e5,"type":"bot_audio","offset":0,"bytes":8000,"response_id":9,"mark":"x"}'


@pytest.fixture(scope="module")
def sample_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_sample_call(tmp_path_factory.mktemp("sample"))


def tampered(sample: Path, tmp_path: Path, line: bytes, *, at: int | None = None) -> Path:
    """A copy of the sample call with ``line`` inserted before line ``at`` (1-based; None: appended)."""
    folder = tmp_path / sample.name
    folder.mkdir()
    for file in sample.iterdir():
        (folder / file.name).write_bytes(file.read_bytes())
    lines = (folder / "events.jsonl").read_bytes().split(b"\n")[:-1]
    lines.insert(len(lines) if at is None else at - 1, line)
    (folder / "events.jsonl").write_bytes(b"\n".join(lines) + b"\n")
    return folder


def with_a_late_chunk_unfinished(sample: Path, tmp_path: Path, **meta: float | None) -> Path:
    """A copy of the sample call with a bot chunk at t = 80,000 s appended, its meta saying the call is not
    complete, with ``meta`` on top."""
    late = b'{"t":80000,"type":"bot_audio","offset":0,"bytes":8000,"response_id":9,"mark":"x"}'
    folder = tampered(sample, tmp_path, late)
    written = json.loads((folder / "meta.json").read_text())
    (folder / "meta.json").write_text(json.dumps({**written, "complete": False, **meta}))
    return folder


def test_the_79_byte_line_at_t_2e5_is_skipped_and_allocates_nothing_by_it(
    sample_folder: Path, tmp_path: Path
) -> None:
    assert len(LINE_2E5) == 79
    folder = tampered(sample_folder, tmp_path, LINE_2E5)
    tracemalloc.start()
    try:
        recording = Recording.load(folder)
        page = render_page(build_timeline(recording))
        page_peak = tracemalloc.get_traced_memory()[1]
        # Before: 3.2 GB (a 1.6 GB timeline of silence, then its ranks); the WAV then took 19.8 GB.
        assert page_peak < 100_000_000, page_peak
        tracemalloc.reset_peak()
        wav = recording.stereo_wav()
        wav_peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert wav_peak < 100_000_000, wav_peak
    assert recording.skipped_lines == 1 and "200000 s is outside the call (0 to 30 s)" in recording.skipped[0]
    assert 'id="skipped-lines"' in page and len(wav) < 44 + 4 * 8000 * (DURATION + TIME_MARGIN_S)


def test_a_late_chunk_in_an_incomplete_call_costs_the_page_no_memory_by_its_time(
    sample_folder: Path, tmp_path: Path
) -> None:
    folder = with_a_late_chunk_unfinished(sample_folder, tmp_path, duration_s=None)
    tracemalloc.start()
    try:
        recording = Recording.load(folder)  # no duration: a time up to Twilio's longest call is kept
        model = build_timeline(recording)
        page = render_page(model)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    # Before: the bot's side laid out for 80,000 s (640 MB), then ranked (640 MB more).
    assert peak < 100_000_000, peak
    assert recording.skipped_lines == 0 and model.duration_s == 80001.0 and "skipped-lines" not in page


@given(
    pieces=st.lists(st.tuples(st.integers(0, 3000), st.binary(min_size=1, max_size=400)), max_size=6),
    buckets=st.integers(1, 40),
    duration=st.floats(0.01, 0.5),
)
@settings(max_examples=300, deadline=None)
def test_placed_peaks_are_the_peaks_of_the_laid_out_timeline(
    pieces: list[tuple[int, bytes]], buckets: int, duration: float
) -> None:
    laid: list[tuple[int, bytes]] = []
    end = 0
    for start, audio in sorted(pieces):  # played chunks never overlap
        laid.append((max(start, end), audio))
        end = max(start, end) + len(audio)
    expected = waveform_peaks(ulaw_timeline(laid), buckets, duration)
    assert placed_peaks(laid, buckets, duration) == expected


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        (b'{"t":Infinity,"type":"clear"}', "Infinity is not a JSON number"),
        (b'{"t":-Infinity,"type":"clear"}', "-Infinity is not a JSON number"),
        (b'{"t":NaN,"type":"clear"}', "NaN is not a JSON number"),
        (b'{"t":1e400,"type":"clear"}', "does not fit a double"),
        (b'{"t":1.0,"type":"bot_audio","offset":0,"bytes":NaN,"response_id":9}', "NaN"),
        (b'{"t":1.0,"type":"turn","turn":2,"voice_to_voice_ms":Infinity}', "Infinity"),
        (b'{"t":1.0,"type":"note","n":123456789012345678901234}', "beyond 2**53"),
        (b'{"t":1e300,"type":"note"}', "outside the call"),  # before: the page's axis looped forever
        (b'{"t":-1,"type":"clear"}', "outside the call"),
        (b'{"t":true,"type":"clear"}', "t: Input should be a valid number"),
        (
            b'{"t":1.0,"type":"turn","turn":1,"said":{"1":"hi"},"llm":[{"tool_calls":[{"id":"\\u00e9",'
            b'"name":"x","arguments":"{}"}]}]}',
            "llm.0.tool_calls.0.id",
        ),
        (b"[" * 100 + b"]" * 100, "nested deeper"),
        (b"[" * 100_000, "nested deeper"),
    ],
)
def test_non_finite_and_odd_numbers_are_refused_where_they_stand(
    sample_folder: Path, tmp_path: Path, line: bytes, reason: str
) -> None:
    folder = tampered(sample_folder, tmp_path, line, at=5)
    recording = Recording.load(folder)
    assert recording.skipped_lines == 1 and recording.skipped[0].startswith("events.jsonl:5: ")
    assert reason in recording.skipped[0]
    assert len(recording.events) == len(Recording.load(sample_folder).events)
    model = build_timeline(recording)
    assert model.duration_s <= DURATION + TIME_MARGIN_S and model.skipped_lines == 1
    assert render_page(model).encode("utf-8") and recording.stereo_wav()


def test_bad_meta_numbers_are_a_recording_error(sample_folder: Path, tmp_path: Path) -> None:
    folder = tampered(sample_folder, tmp_path, b'{"t":1,"type":"note"}')
    meta = json.loads((folder / "meta.json").read_text())
    for field, value, message in [
        ("duration_s", "NaN", "NaN is not a JSON number"),
        ("duration_s", "1e9", "duration_s: Input should be less than or equal to"),
        ("duration_s", '"20"', "duration_s: Input should be a valid number"),
        ("call_sid", '"CA\\u00e9"', "call_sid: String should match pattern"),
        ("format", "true", "format True"),
    ]:
        text = json.dumps({**meta, field: "@"}).replace('"@"', value)
        (folder / "meta.json").write_text(text)
        with pytest.raises(RecordingError, match=message) as caught:
            Recording.load(folder)
        assert "meta.json" in str(caught.value)


def test_a_lone_surrogate_becomes_a_replacement_character(sample_folder: Path, tmp_path: Path) -> None:
    line = b'{"t":1,"type":"turn","turn":7,"transcript":"caf\\ud800","said":{"1":"\\udfff"}}'
    recording = Recording.load(tampered(sample_folder, tmp_path, line, at=3))
    turn = next(e for e in recording.events_of("turn") if e["turn"] == 7)
    assert turn["transcript"] == "caf\ufffd" and turn["said"] == {"1": "\ufffd"}
    assert render_page(build_timeline(recording)).encode("utf-8")


def test_caller_audio_past_the_call_is_not_read(sample_folder: Path, tmp_path: Path) -> None:
    folder = tampered(sample_folder, tmp_path, b'{"t":1,"type":"note"}')
    caller = (folder / "caller.ulaw").read_bytes()
    (folder / "caller.ulaw").write_bytes(caller + b"\x00" * 8000 * 600)  # ten minutes more
    recording = Recording.load(folder)
    limit = round(time_limit_s(recording.meta) * 8000)
    assert len(recording.caller_ulaw()) == limit
    assert recording.caller_bytes_ignored == len(caller) + 8000 * 600 - limit
    assert "past the end of the call" in render_page(build_timeline(recording))


# ---- bot replay: every load error exits 2 ---------------------------------------------------------------


def _replay(folder: Path, capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    status = main(["replay", str(folder)])
    captured = capsys.readouterr()
    assert "Traceback" not in captured.out + captured.err
    return status, captured.out


@pytest.mark.parametrize(
    "line",
    [
        b'{"t":5,"type":"turn","turn":"x","said":{"1":"hi"}}',  # before: ValueError traceback, exit 1
        b'{"t":5,"type":"turn","turn":1,"said":"hello"}',  # before: TypeError traceback, exit 1
        b'{"t":5,"type":"turn","turn":1,"tools":[1]}',  # before: AttributeError traceback, exit 1
        b'{"t":NaN,"type":"turn","turn":1}',  # before: replayed without it: "CHANGED", exit 1
        b'{"t":5,"type":"dtmf","digit":7}',
    ],
)
def test_a_malformed_turn_makes_replay_exit_2_with_one_line(
    sample_folder: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], line: bytes
) -> None:
    folder = tampered(sample_folder, tmp_path, line, at=6)
    status, out = _replay(folder, capsys)
    assert status == 2
    assert out.splitlines()[1] == (
        f"cannot replay {folder}: 1 damaged line(s) in its events, first events.jsonl:6: "
        + Recording.load(folder).skipped[0].split("events.jsonl:6: ", 1)[1]
        + " (a damaged recording is no reference; bot inspect shows the rest)"
    )


def test_replay_exits_2_on_a_missing_or_unreadable_recording(
    sample_folder: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    status, out = _replay(tmp_path / "nowhere", capsys)
    assert status == 2 and "not a recording folder" in out
    cases = {
        "meta": ("meta.json", b'{"format":1,"duration_s":Infinity}', "meta.json: not JSON"),
        "format": ("meta.json", b'{"format":2}', "format 2"),
        "caller": ("caller.ulaw", None, "caller.ulaw: cannot read"),
        "bot": ("bot.ulaw", None, "bot.ulaw: cannot read"),
        "events": ("events.jsonl", None, "events.jsonl: cannot read"),
    }
    for name, (file, content, message) in cases.items():
        folder = tmp_path / name
        folder.mkdir()
        for source in sample_folder.iterdir():
            (folder / source.name).write_bytes(source.read_bytes())
        (folder / file).unlink()
        if content is None:
            (folder / file).mkdir()  # a folder where the file should be: reading it fails
        else:
            (folder / file).write_bytes(content)
        status, out = _replay(folder, capsys)
        assert status == 2 and message in out and len(out.splitlines()) == 2, (name, out)


# ---- any content ------------------------------------------------------------------------------------------

_TYPES = ["bot_audio", "mark_sent", "mark_echoed", "turn", "clear", "barge_in", "dtmf", "dtmf_entry", "x"]
_numbers = st.one_of(
    st.integers(-(2**70), 2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([2e5, 1e300]),
)
_scalars = st.one_of(
    st.none(), st.booleans(), _numbers, st.text(max_size=8), st.sampled_from(["1", "r1", "[redacted]"])
)
_json = st.recursive(
    _scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3), st.dictionaries(st.sampled_from(["1", "2", "id", "name", "x"]), inner)
    ),
    max_leaves=8,
)
_fields = st.sampled_from(
    [
        "offset", "bytes", "response_id", "mark", "text", "result", "said", "tools", "llm", "turn", "typed",
        "transcript", "first_audio_sent_ms", "first_audio_heard_ms", "voice_to_voice_ms", "utterance_ms",
        "cut_responses", "clear_ms", "digit", "digits", "error", "tool_filler",
    ]
)  # fmt: skip
_event = st.fixed_dictionaries(
    {"t": st.one_of(st.floats(0, 30), _numbers), "type": st.sampled_from(_TYPES)}
).flatmap(lambda head: st.dictionaries(_fields, _json, max_size=5).map(lambda rest: rest | head))
_good_audio = st.builds(
    lambda t, offset, rid, mark: {
        "t": t, "type": "bot_audio", "offset": offset, "bytes": 400, "response_id": rid, "mark": mark
    },
    st.floats(0, 30), st.integers(0, 1200), st.integers(0, 3), st.sampled_from(["", "m1", "m2"]),
)  # fmt: skip
_line = st.one_of(
    _event.map(lambda e: json.dumps(e).encode()),  # json.dumps writes NaN and Infinity as Python reads them
    _good_audio.map(lambda e: json.dumps(e).encode()),
    st.binary(max_size=40),
    _event.map(lambda e: json.dumps(e).encode()).flatmap(
        lambda b: st.integers(0, len(b)).map(lambda n: b[:n])
    ),
)


def _numbers_in(value: Any) -> list[int | float]:
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return []
    if isinstance(value, int | float):
        return [value]
    items = value.values() if isinstance(value, dict) else value
    return [n for item in items for n in _numbers_in(item)]


@given(
    lines=st.lists(_line, max_size=12),
    duration=st.one_of(st.none(), st.floats(0, 20)),
    newline=st.booleans(),
)
@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_any_events_file_loads_and_what_it_hands_on_is_finite_and_within_the_call(
    tmp_path_factory: pytest.TempPathFactory, lines: list[bytes], duration: float | None, newline: bool
) -> None:
    folder = tmp_path_factory.mktemp("fuzz")
    meta: dict[str, Any] = {"format": 1, "call_sid": "CAfuzz"}
    if duration is not None:
        meta |= {"complete": True, "duration_s": duration}
    (folder / "meta.json").write_text(json.dumps(meta))
    written = b"\n".join(lines) + (b"\n" if newline and lines else b"")
    (folder / "events.jsonl").write_bytes(written)
    (folder / "caller.ulaw").write_bytes(bytes(range(256)) * 4)
    (folder / "bot.ulaw").write_bytes(b"\x10\x90" * 800)
    try:
        recording = Recording.load(folder)
    except RecordingError:  # the only error the reader raises, and never for event content
        pytest.fail("events.jsonl content made the reader raise")
    limit = (duration + TIME_MARGIN_S) if duration is not None else MAX_CALL_S + TIME_MARGIN_S
    as_read = written.split(b"\n")[: -1 if written.endswith(b"\n") else None] if written else []
    assert len(recording.events) + recording.skipped_lines + recording.torn_tail == len(as_read)
    for event in recording.events:
        assert 0 <= event["t"] <= limit and isinstance(event["type"], str) and event["type"].isascii()
        numbers = _numbers_in(event)
        assert all(math.isfinite(n) for n in numbers) and all(
            abs(n) < 2**53 for n in numbers if isinstance(n, int)
        )
    model = build_timeline(recording)
    assert model.duration_s <= max(limit, 0.1) + len(recording.bot_sent_ulaw()) / 8000
    assert render_page(model).encode("utf-8")
    assert len(recording.stereo_wav()) <= 44 + 4 * round((model.duration_s + 0.001) * 8000)
    recorded.turns(recording), recorded.answers(recording), recorded.phrase_audio(recording)
    schedule.cues(recording, recorded.keys(recording))


@given(meta=_json, extra=st.dictionaries(st.sampled_from(["duration_s", "complete", "call_sid"]), _json))
@settings(max_examples=150, deadline=None)
def test_any_meta_loads_or_is_a_recording_error(
    tmp_path_factory: pytest.TempPathFactory, meta: Any, extra: dict[str, Any]
) -> None:
    folder = tmp_path_factory.mktemp("meta")
    content = {"format": 1, **extra} if isinstance(meta, dict) else meta
    (folder / "meta.json").write_text(json.dumps(content))
    (folder / "events.jsonl").write_bytes(b'{"t":1,"type":"x"}\n')
    try:
        recording = Recording.load(folder)
    except RecordingError as exc:
        assert "meta.json" in str(exc)
        return
    assert render_page(build_timeline(recording)).encode("utf-8")


def test_a_field_an_operator_redacted_is_kept_and_read_as_missing(
    sample_folder: Path, tmp_path: Path
) -> None:
    line = (
        b'{"t":1,"type":"turn","turn":"[redacted]","said":"[redacted]","tools":"[redacted]",'
        b'"llm":[{"tool_calls":"[redacted]"}],"voice_to_voice_ms":"[redacted]"}'
    )
    recording = Recording.load(tampered(sample_folder, tmp_path, line, at=3))
    assert recording.skipped_lines == 0
    first = recorded.turns(recording)[0]
    assert (first.number, first.answer, first.tools, first.voice_to_voice_ms) == (1, "", (), None)
    assert render_page(build_timeline(recording)).encode("utf-8")


def test_an_incomplete_call_is_bounded_by_its_longest_duration_in_the_meta(
    sample_folder: Path, tmp_path: Path
) -> None:
    # What today's bot writes at the start: the line's max_call_s plus the goodbye's allowance.
    folder = with_a_late_chunk_unfinished(sample_folder, tmp_path, max_duration_s=960.0)
    recording = Recording.load(folder)
    # Before: kept (a time up to 24 h), so the call's WAV was 80,000 s long: 2.56 GB in the cache.
    assert recording.skipped_lines == 1 and "outside the call (0 to 970 s)" in recording.skipped[0]
    assert len(recording.bot_played_ulaw()) < 30 * 8000


def test_a_wav_over_the_cache_is_refused_before_it_is_built(sample_folder: Path, tmp_path: Path) -> None:
    async def build() -> None:
        cache = WavCache(InspectorSlots(), tmp_path / "wav", max_bytes=100_000)  # the sample: ~20 s
        await cache.open("2026-12-03/CA1", sample_folder, recording_key("2026-12-03/CA1", sample_folder))

    with pytest.raises(WavTooLong, match="over the inspector's WAV cache"):
        asyncio.run(build())
    assert [p.name for p in (tmp_path / "wav").iterdir()] == []  # nothing written, not even a temp file
