"""A recording as a plain data model for the inspector page: what happened when, on one time axis.

Rules:
- Pure: works on a loaded ``Recording`` only (no I/O, no clocks). Times are seconds from the recording's
  t = 0, which is also offset 0 of both audio timelines (8 kHz μ-law, 8000 bytes/s).
- Tolerant: a wrong-typed or missing field reads as "unknown" (``None``/empty), an unknown event type is
  listed in ``other_events``; nothing in the events can make ``build_timeline`` raise. Times and sizes
  are the reader's (``bot.recording.events``: finite, within the call), so the duration, the waveform
  and the axis are bounded by the call; the lines the reader skipped are counted here for the page.
- Bot audio and phrases are placed by ``bot.recording.playback`` (the format's rule, never raising);
  phrases are shown in the order they start playing.
- Responses named in a turn's ``said`` are its answers. When the turn says it had a filler (tool or
  silence: one each), the filler is the highest-numbered other response between the previous turn's
  answers and this turn's, sent after the previous turn was logged and late enough for the caller's
  speech to fit before it (so a greeting or a reprompt is not taken for one). Everything else is
  "other" (greeting, goodbye, reprompt...).
- Turn figures count from the endpointer's decision; ``first_audio_sent_ms`` anchors that decision on the
  timeline (the turn's first chunk's ``t`` minus it). The caller's last word is ``end_silence_ms`` earlier
  (``voice_to_voice_ms`` minus heard-or-sent), their speech ``utterance_ms`` long before that. Caller speech
  is also found independently from audio energy, so both can be compared on the page.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Final

from bot.inspector.waveform import Peaks, Span, placed_peaks, speech_spans, waveform_peaks
from bot.recording.format import BYTES_PER_SECOND
from bot.recording.playback import PlacedPhrase, place_bot_audio
from bot.recording.reader import Recording

PIXELS_PER_SECOND: Final = 40
MIN_BUCKETS: Final = 600
MAX_BUCKETS: Final = 4000
# Shown by their own means (phrases, turns, markers); every other type is listed as it is.
_KNOWN_EVENTS: Final = frozenset(
    {"bot_audio", "mark_sent", "mark_echoed", "turn", "clear", "barge_in", "dtmf", "dtmf_entry"}
)


@dataclass(frozen=True)
class BotPhrase:
    response_id: str
    mark: str
    text: str
    kind: str  # "answer" | "filler" | "other"
    turn: int | None
    sent_s: float  # when its first chunk was sent
    start_s: float | None  # heard from (None: cleared before any of it played)
    end_s: float | None  # heard until
    scheduled_end_s: float  # where it would have ended without a clear
    cut: bool  # a clear dropped some of it
    echo: str | None  # the mark echo's result ("played", "cleared"...), None if never echoed


@dataclass(frozen=True)
class ToolCall:
    name: str
    ok: bool | None
    ms: int | None
    args: str


@dataclass(frozen=True)
class LlmRound:
    messages: str
    text: str
    tool_calls: tuple[str, ...]  # "name(arguments)"
    tool_results: tuple[str, ...]


@dataclass(frozen=True)
class Latency:
    """A turn's figures in ms; all but ``end_silence_ms`` count from the endpointer's decision."""

    end_silence_ms: int | None  # the caller's last word to the decision
    stt_ms: int | None
    llm_first_token_ms: int | None
    first_audio_sent_ms: int | None
    first_audio_heard_ms: int | None
    voice_to_voice_ms: int | None  # the caller's last word to the bot's first audio heard


@dataclass(frozen=True)
class TurnView:
    number: int
    finished_s: float
    typed: bool
    transcript: str
    answers: tuple[tuple[str, str], ...]  # (response id, text) as the turn said it
    fillers: tuple[str, ...]  # texts of the filler phrases played for this turn
    tool_filler: bool
    silence_filler: bool
    tools: tuple[ToolCall, ...]
    llm: tuple[LlmRound, ...]
    latency: Latency
    decided_s: float | None  # the endpointer's decision on the timeline (None: no anchor)
    speech: Span | None  # the caller's speech, from the figures
    barge_in: bool
    error: str | None


@dataclass(frozen=True)
class Marker:
    t_s: float
    type: str
    label: str
    detail: str  # the event's other fields as compact JSON


@dataclass(frozen=True)
class BargeIn:
    t_s: float
    clear_ms: int | None
    cut_responses: tuple[str, ...]


@dataclass(frozen=True)
class CallTimeline:
    title: str  # the call sid, or the folder name
    meta: tuple[tuple[str, str], ...]
    duration_s: float
    complete: bool
    torn_tail: bool
    skipped_lines: int  # damaged event lines the reader skipped (``skipped``: the first ones, described)
    skipped: tuple[str, ...]
    caller_bytes_ignored: int
    caller_peaks: Peaks
    bot_peaks: Peaks
    caller_speech: tuple[Span, ...]  # from audio energy
    phrases: tuple[BotPhrase, ...]
    cut_spans: tuple[Span, ...]  # bot audio queued but dropped by a clear
    turns: tuple[TurnView, ...]
    barge_ins: tuple[BargeIn, ...]
    clears: tuple[float, ...]
    dtmf: tuple[Marker, ...]
    other_events: tuple[Marker, ...]


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _num(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def _text(value: Any) -> str:
    if value is None:
        return ""
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, default=repr)


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _rid(value: Any) -> str:
    return "" if value is None else str(value)


def _detail(event: dict[str, Any], skip: tuple[str, ...] = ("t", "type")) -> str:
    rest = {k: v for k, v in event.items() if k not in skip}
    return json.dumps(rest, ensure_ascii=False, separators=(",", ":"), default=repr) if rest else ""


# ---- bot phrases ---------------------------------------------------------------------------------------


def _owners(turns: list[dict[str, Any]], first_sent: dict[str, float]) -> dict[str, tuple[int, str]]:
    """response id -> (turn number, "answer" | "filler") for the responses a turn owns (see the rules)."""
    owners: dict[str, tuple[int, str]] = {}
    unowned = sorted((int(r) for r in first_sent if r.isdigit()), reverse=True)
    low, previous_t = -1, float("-inf")
    for turn in turns:
        number = _int(turn.get("turn")) or 0
        said = _dict(turn.get("said"))
        owners.update({str(key): (number, "answer") for key in said})
        numeric = [int(k) for k in said if str(k).isdigit()]
        fillers = (turn.get("tool_filler") is True) + (turn.get("silence_filler") is True)
        # The caller spoke, then was heard out, before any filler: it cannot be sent earlier than that.
        sent_ms = _int(turn.get("first_audio_sent_ms")) or 0
        spoken_ms = (_int(turn.get("voice_to_voice_ms")) or 0) - (
            _int(turn.get("first_audio_heard_ms")) or sent_ms
        )
        earliest = max(
            previous_t, (sent_ms + max(0, spoken_ms) + (_int(turn.get("utterance_ms")) or 0)) / 1000
        )
        if numeric and fillers:
            for rid in unowned:  # highest first: a reprompt or greeting before the speech stays "other"
                late_enough = first_sent[str(rid)] >= earliest - 0.05
                if fillers and low < rid < min(numeric) and str(rid) not in owners and late_enough:
                    owners[str(rid)] = (number, "filler")
                    fillers -= 1
        if numeric:
            low = max(numeric)
        previous_t = float(turn["t"])
    return owners


def _seconds(offset: int) -> float:
    return round(offset / BYTES_PER_SECOND, 3)


def _phrase(draft: PlacedPhrase, owner: tuple[int, str] | None, echo: str | None) -> BotPhrase:
    heard = [c for c in draft.chunks if c.heard]
    return BotPhrase(
        response_id=draft.response_id,
        mark=draft.mark,
        text=draft.text,
        kind=owner[1] if owner else "other",
        turn=owner[0] if owner else None,
        sent_s=round(draft.chunks[0].sent_s, 3),
        start_s=_seconds(heard[0].start) if heard else None,
        end_s=_seconds(max(c.played_end for c in heard)) if heard else None,
        scheduled_end_s=_seconds(draft.chunks[-1].end),
        cut=any(c.cut for c in draft.chunks),
        echo=echo,
    )


# ---- turns ------------------------------------------------------------------------------------------------


def _turn(event: dict[str, Any], phrases: list[BotPhrase], first_sent: dict[str, float]) -> TurnView:
    number = _int(event.get("turn")) or 0
    get = event.get
    sent, heard = _int(get("first_audio_sent_ms")), _int(get("first_audio_heard_ms"))
    v2v = _int(get("voice_to_voice_ms"))
    base = heard if heard is not None else sent
    end_silence = v2v - base if v2v is not None and base is not None else None
    owned = [p for p in phrases if p.turn == number]
    sends = [first_sent[p.response_id] for p in owned if p.response_id in first_sent]
    decided = round(min(sends) - sent / 1000, 3) if sends and sent is not None else None
    typed = get("typed") is True
    utterance = _int(get("utterance_ms"))
    speech = None
    if decided is not None and not typed and utterance:
        last_word = decided - (end_silence or 0) / 1000
        speech = Span(round(max(0.0, last_word - utterance / 1000), 3), round(max(0.0, last_word), 3))
    said, tools, rounds = _dict(get("said")), _list(get("tools")), _list(get("llm"))
    return TurnView(
        number=number,
        finished_s=round(float(event["t"]), 3),
        typed=typed,
        transcript=_text(get("transcript")),
        answers=tuple((str(k), _text(v)) for k, v in said.items()),
        fillers=tuple(p.text or p.mark for p in owned if p.kind == "filler"),
        tool_filler=get("tool_filler") is True,
        silence_filler=get("silence_filler") is True,
        tools=tuple(
            ToolCall(
                _text(t.get("name")),
                t.get("ok") if isinstance(t.get("ok"), bool) else None,
                _int(t.get("ms")),
                _text(t.get("args")),
            )
            for t in tools
            if isinstance(t, dict)
        ),
        llm=tuple(_llm_round(r) for r in rounds if isinstance(r, dict)),
        latency=Latency(end_silence, _int(get("stt_ms")), _int(get("llm_first_token_ms")), sent, heard, v2v),
        decided_s=decided,
        speech=speech,
        barge_in=get("barge_in") is True,
        error=None if get("error") is None else _text(get("error")),
    )


def _llm_round(entry: dict[str, Any]) -> LlmRound:
    calls, results = _list(entry.get("tool_calls")), _list(entry.get("tool_results"))
    return LlmRound(
        messages=_text(entry.get("messages")),
        text=_text(entry.get("text")),
        tool_calls=tuple(
            f"{_text(c.get('name'))}({_text(c.get('arguments'))})" for c in calls if isinstance(c, dict)
        ),
        tool_results=tuple(_text(r) for r in results),
    )


# ---- the whole call ---------------------------------------------------------------------------------------


def build_timeline(recording: Recording, *, buckets: int | None = None) -> CallTimeline:
    """The inspector's model of one recording; ``buckets`` = waveform width (default: 40 per second)."""
    events = recording.events
    caller = recording.caller_ulaw()
    sent = recording.bot_sent_ulaw()
    playback = place_bot_audio(events, len(sent))
    drafts = sorted(playback.phrases, key=lambda phrase: phrase.chunks[0].start)
    first_sent = playback.first_sent()
    turn_events = [e for e in events if e["type"] == "turn"]
    owners = _owners(turn_events, first_sent)
    echoes = {_text(e.get("mark")): _text(e.get("result")) for e in events if e["type"] == "mark_echoed"}
    phrases = [_phrase(d, owners.get(d.response_id), echoes.get(d.mark) if d.mark else None) for d in drafts]
    turns = tuple(_turn(e, phrases, first_sent) for e in turn_events)

    meta = recording.meta
    ends = [len(caller) / BYTES_PER_SECOND, *(p.end_s or 0.0 for p in phrases)]
    ends += [float(events[-1]["t"])] if events else []
    ends += [_num(meta.get("duration_s")) or 0.0]
    duration = max(0.1, *ends)
    if buckets is None:
        buckets = max(MIN_BUCKETS, min(MAX_BUCKETS, round(duration * PIXELS_PER_SECOND)))

    barge_ins, clears, dtmf, others = [], [], [], []
    for event in events:
        kind, t = event["type"], round(float(event["t"]), 3)
        if kind == "barge_in":
            cut = event.get("cut_responses")
            cut_ids = tuple(_rid(r) for r in cut) if isinstance(cut, list) else ()
            barge_ins.append(BargeIn(t, _int(event.get("clear_ms")), cut_ids))
        elif kind == "clear":
            clears.append(t)
        elif kind in ("dtmf", "dtmf_entry"):  # a key, or a whole entry (its digit count)
            label = _text(event.get("digit")) if kind == "dtmf" else f"{_text(event.get('digits'))} keys"
            dtmf.append(Marker(t, kind, label, _detail(event)))
        elif kind not in _KNOWN_EVENTS:
            others.append(Marker(t, kind, kind, _detail(event)))
    sid = meta.get("call_sid")
    return CallTimeline(
        title=sid if isinstance(sid, str) and sid else recording.path.name,
        meta=tuple((str(k), _text(v)) for k, v in meta.items() if k != "format"),
        duration_s=round(duration, 3),
        complete=recording.complete,
        torn_tail=recording.torn_tail,
        skipped_lines=recording.skipped_lines,
        skipped=recording.skipped,
        caller_bytes_ignored=recording.caller_bytes_ignored,
        caller_peaks=waveform_peaks(caller, buckets, duration),
        bot_peaks=placed_peaks(
            ((c.start, c.played_audio(sent)) for c in playback.chunks if c.heard), buckets, duration
        ),
        caller_speech=speech_spans(caller),
        phrases=tuple(phrases),
        cut_spans=tuple(Span(_seconds(cut.start), _seconds(cut.end)) for cut in playback.cuts),
        turns=turns,
        barge_ins=tuple(barge_ins),
        clears=tuple(clears),
        dtmf=tuple(dtmf),
        other_events=tuple(others),
    )
