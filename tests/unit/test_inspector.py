"""The call inspector: recording -> timeline model -> one self-contained HTML page, and ``bot inspect``.

Rules checked here: the model's numbers on a known synthetic call (turn anchoring from the figures, speech
found by energy, fillers, cut spans, barge-ins, keys, other events); bot audio shown exactly as the reader
places it (property); any event content, however malformed, builds and renders (property); recording text
is escaped; an incomplete, torn recording renders; the page references nothing outside itself; the CLI.

``write_sample_call`` is shared with the route and browser tests: a realistic call written through
``CallRecorder`` with a fake clock (greeting; a tool call with a filler; an answer cut by a barge-in; a
typed turn; unknown events).
"""

from __future__ import annotations

import argparse
import html
import re
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bot.inspector import build_timeline, render_page
from bot.inspector import cli as inspector_cli
from bot.inspector.waveform import waveform_peaks
from bot.recording import CallRecorder, LocalStore, Recording
from tests.support.sample_call import CALLER_SPEECH, DURATION, SID, STARTED, XSS, tone, write_sample_call


@pytest.fixture(scope="module")
def sample(tmp_path_factory: pytest.TempPathFactory) -> Recording:
    return Recording.load(write_sample_call(tmp_path_factory.mktemp("rec"), transcript=XSS))


def test_timeline_numbers(sample: Recording) -> None:
    model = build_timeline(sample, buckets=400)
    assert model.title == SID and model.complete and not model.torn_tail
    assert model.duration_s == pytest.approx(DURATION, abs=0.01)
    assert len(model.caller_peaks.highs) == len(model.bot_peaks.lows) == 400
    assert max(model.caller_peaks.highs) > 0.2 and min(model.bot_peaks.lows) < -0.2
    assert [(s.start_s, s.end_s) for s in model.caller_speech] == [
        pytest.approx(span, abs=0.03) for span in CALLER_SPEECH
    ]
    one, two, three, four = model.turns
    assert one.decided_s == pytest.approx(4.0) and one.speech is not None
    assert (one.speech.start_s, one.speech.end_s) == pytest.approx((2.0, 3.5))
    assert one.fillers == ("One moment.",) and one.tool_filler
    assert [(t.name, t.ok, t.ms) for t in one.tools] == [("lookup_order", True, 800)]
    assert one.llm[0].tool_calls == ('lookup_order({"order_id":"1234"})',)
    assert one.latency.end_silence_ms == 500 and one.latency.voice_to_voice_ms == 920
    assert two.speech is not None and (two.speech.start_s, two.speech.end_s) == pytest.approx((8.0, 9.2))
    assert two.barge_in and two.transcript == XSS
    assert three.speech is not None and (three.speech.start_s, three.speech.end_s) == pytest.approx(
        (13.0, 14.0)
    )
    assert four.typed and four.speech is None and four.decided_s == pytest.approx(17.0)

    kinds = [(p.response_id, p.kind, p.turn) for p in model.phrases]
    assert kinds == [
        ("1", "other", None),
        ("3", "filler", 1),
        ("4", "answer", 1),
        ("5", "answer", 2),
        ("5", "answer", 2),
        ("7", "answer", 3),
        ("8", "answer", 4),
    ]
    first, second = model.phrases[3:5]
    assert (first.start_s, first.end_s, first.cut, first.echo) == (10.3, 12.3, False, "played")
    assert (second.text, second.start_s, second.end_s) == ("And we close at five on weekdays.", 12.3, 13.3)
    assert second.cut and second.echo == "cleared" and second.scheduled_end_s == pytest.approx(15.3)
    assert [(s.start_s, s.end_s) for s in model.cut_spans] == [(13.3, 15.3)]
    assert [(b.t_s, b.clear_ms, b.cut_responses) for b in model.barge_ins] == [(13.3, 2, ("5",))]
    assert model.clears == (13.3,)
    assert [m.label for m in model.dtmf] == ["1", "2", "2 keys"]
    assert [m.type for m in model.other_events] == [
        "mystery_event",
        "transfer_started",
        "hanging_up",
        "call_ended",
    ]


def test_page_has_every_part_and_escapes_text(sample: Recording) -> None:
    page = render_page(build_timeline(sample))
    for hook in ('id="waveform-caller"', 'id="waveform-bot"', 'id="timeline"', 'id="latency"', 'id="turns"'):
        assert hook in page
    assert len(re.findall(r'<tr class="turn[ "]', page)) == 4
    assert page.count('class="latency-bar"') == 4 and page.count('class="tool-call"') == 1
    assert 'class="barge-in"' in page and 'class="filler"' in page and 'class="phrase filler"' in page
    assert "<script" not in page  # no player, no script; and the transcript stays text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page and "&lt;b&gt;bold&lt;/b&gt;" in page
    assert "<b>bold" not in page


def test_page_references_nothing_outside(sample: Recording) -> None:
    page = render_page(build_timeline(sample), audio_url="/calls/x/call.wav?token=a&b", back_url="/calls")
    assert "http://" not in page and "https://" not in page and "//" not in page.replace("://", "")
    assert "<link" not in page and "@import" not in page and "@font-face" not in page
    assert re.findall(r"url\(([^)]*)\)", page) == ["#hatch"]
    assert re.findall(r'\ssrc="([^"]*)"', page) == ["/calls/x/call.wav?token=a&amp;b"]
    assert page.count("<script>") == 1 and "default-src 'none'" in html.unescape(page)


def test_incomplete_torn_recording_renders(tmp_path: Path) -> None:
    folder = write_sample_call(tmp_path, until_s=10.3005)  # killed after r5's audio, before its mark
    with (folder / "events.jsonl").open("ab") as events:
        events.write(b'{"t":10.4,"type":"tu')
    recording = Recording.load(folder)
    model = build_timeline(recording)
    assert not model.complete and model.torn_tail
    assert (
        model.phrases[-1].response_id == "5" and model.phrases[-1].mark == "" and model.phrases[-1].text == ""
    )
    assert len(model.turns) == 1 and model.duration_s >= 10.3
    page = render_page(model)
    assert 'class="incomplete"' in page and 'id="waveform-bot"' in page


def test_empty_recording_renders(tmp_path: Path) -> None:
    sink = LocalStore(tmp_path).create("CAempty", STARTED)
    CallRecorder(sink).start(call_sid="CAempty")
    model = build_timeline(Recording.load(sink.path))
    assert model.turns == () and model.phrases == () and model.duration_s > 0
    assert 'id="waveform-caller"' in render_page(model)


def test_peaks_are_min_and_max_per_bucket() -> None:
    audio = b"\xff" * 800 + tone(0.1, 400, 16000)
    peaks = waveform_peaks(audio, 2, 0.2)
    assert (peaks.lows[0], peaks.highs[0]) == (0.0, 0.0)
    assert peaks.highs[1] == pytest.approx(0.49, abs=0.02) and peaks.lows[1] == pytest.approx(-0.49, abs=0.02)
    assert waveform_peaks(b"", 3, 1.0).highs == (0.0, 0.0, 0.0)


# The page's bot audio and phrases must be the reader's, whatever the order of sends, marks and clears (the
# placement itself is checked against a model of the phone in test_recording).
_bot_events = st.lists(
    st.tuples(
        st.sampled_from(["audio", "audio", "clear", "mark"]),
        st.floats(0, 2),
        st.integers(0, 3),
        st.integers(1, 4000),
    ),
    max_size=25,
)


@given(_bot_events)
@settings(max_examples=150, deadline=None)
def test_bot_audio_shown_as_the_reader_places_it(steps: list[tuple[str, float, int, int]]) -> None:
    events: list[dict[str, Any]] = []
    sent, t = 0, 0.0
    for kind, gap, rid, size in steps:
        t += gap
        if kind == "audio":
            events.append(
                {"t": t, "type": "bot_audio", "offset": sent, "bytes": size, "response_id": rid, "mark": ""}
            )
            sent += size
        elif kind == "clear":
            events.append({"t": t, "type": "clear"})
        else:
            events.append(
                {"t": t, "type": "mark_sent", "mark": f"m{len(events)}", "response_id": rid, "text": "x"}
            )
    # A duration past everything (25 gaps of 2 s, 25 chunks of 0.5 s) keeps the page's axis exact.
    recording = Recording(
        Path("mem"), {"format": 1, "duration_s": 64.0}, events, False, b"", tone(sent / 8000, 300)
    )
    model = build_timeline(recording, buckets=640)
    assert model.bot_peaks == waveform_peaks(recording.bot_played_ulaw(), 640, 64.0)
    heard_starts = {p.start_s for p in model.phrases if p.start_s is not None}
    assert heard_starts <= {round(s.start / 8000, 3) for s in recording.bot_played_segments()}
    assert len(model.cut_spans) <= sum(1 for e in events if e["type"] == "clear")


_json = st.recursive(
    st.none() | st.booleans() | st.integers(-5, 50) | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3),
    max_leaves=8,
)
_field_names = st.sampled_from(
    [
        "offset",
        "bytes",
        "response_id",
        "mark",
        "text",
        "said",
        "tools",
        "llm",
        "turn",
        "first_audio_sent_ms",
        "voice_to_voice_ms",
        "utterance_ms",
        "cut_responses",
        "digit",
        "digits",
        "typed",
        "result",
        "clear_ms",
        "tool_filler",
    ]
)
_any_event = st.fixed_dictionaries(
    {
        "t": st.floats(0, 30),
        "type": st.sampled_from(
            [
                "bot_audio",
                "mark_sent",
                "mark_echoed",
                "turn",
                "clear",
                "barge_in",
                "dtmf",
                "dtmf_entry",
                "weird",
            ]
        ),
    }
).flatmap(lambda head: st.dictionaries(_field_names, _json, max_size=6).map(lambda rest: rest | head))


@given(st.lists(_any_event, max_size=12), _json)
@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_any_event_content_builds_and_renders(events: list[dict[str, Any]], meta_value: Any) -> None:
    events.sort(key=lambda e: e["t"])
    recording = Recording(
        Path("mem"), {"format": 1, "call_sid": meta_value}, events, True, b"\x00" * 80, b"\x10" * 900
    )
    page = render_page(build_timeline(recording, buckets=50))
    assert page.startswith("<!DOCTYPE html>") and "<script" not in page


def test_cli_writes_the_page_named_after_the_call(
    sample: Recording, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    parser = argparse.ArgumentParser()
    inspector_cli.add_arguments(parser)
    monkeypatch.chdir(tmp_path)
    assert inspector_cli.run(parser.parse_args([str(sample.path)])) == 0
    assert capsys.readouterr().out.strip() == f"{SID}.html"
    assert 'id="waveform-bot"' in (tmp_path / f"{SID}.html").read_text(encoding="utf-8")
    target = tmp_path / "out" / "page.html"
    target.parent.mkdir()
    assert inspector_cli.run(parser.parse_args([str(sample.path), "-o", str(target)])) == 0
    assert capsys.readouterr().out.strip() == str(target) and target.is_file()


def test_cli_unreadable_recording_exits_1(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    parser = argparse.ArgumentParser()
    inspector_cli.add_arguments(parser)
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / "meta.json").write_text("{not json")
    for folder in (tmp_path / "missing", tmp_path / "broken"):
        assert inspector_cli.run(parser.parse_args([str(folder), "-o", str(tmp_path / "x.html")])) == 1
        captured = capsys.readouterr()
        assert captured.out == "" and captured.err.startswith("bot inspect: ") and str(folder) in captured.err
    assert not (tmp_path / "x.html").exists()
