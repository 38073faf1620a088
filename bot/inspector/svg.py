"""The inspector's timeline: one SVG, one time axis, for the caller's and the bot's side of a call.

Rules:
- Pure: model in, markup out. x = ``t / duration * width``, width = the number of waveform buckets, so
  one bucket is one pixel. Lanes top to bottom: time axis, caller (waveform, speech found by energy,
  keys), turns (the caller's speech from the figures, then the voice-to-voice gap), bot as heard
  (phrases by kind, spans a clear dropped, waveform), phrase labels, events (barge-ins, other events).
- Every text from the recording goes through ``esc`` (``html.escape``, quotes too); a label is clipped
  by a nested ``<svg>`` so it never spills over the next one; hovering shows the whole text (``<title>``).
- Ids ``timeline``, ``waveform-caller``, ``waveform-bot``, ``turn-span-<n>``, ``playhead``; classes
  ``phrase`` + ``answer``/``filler``/``other``, ``cut``, ``speech``, ``turn-span``, ``gap``,
  ``barge-in``, ``clear``, ``dtmf``, ``event``. Marks with a size in both directions (thin rects, not
  lines), so a browser reports them as visible.
"""

from __future__ import annotations

import html
from collections.abc import Iterable

from bot.inspector.timeline import BotPhrase, CallTimeline, TurnView
from bot.inspector.waveform import Peaks

AXIS_H = 22
LANE_H = 90
CALLER_Y = AXIS_H + 2
TURN_Y = CALLER_Y + LANE_H + 2
TURN_H = 16
BOT_Y = TURN_Y + TURN_H + 4
LABEL_Y = BOT_Y + LANE_H + 2
LABEL_H = 16
EVENTS_Y = LABEL_Y + LABEL_H + 2
EVENTS_H = 22
SVG_H = EVENTS_Y + EVENTS_H + 2
BARGE_H = EVENTS_Y + EVENTS_H - CALLER_Y  # a barge-in mark crosses every lane below the axis
_TICK_STEPS = (0.5, 1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 1800)


def esc(value: object) -> str:
    return html.escape(str(value), quote=True)


def clock(seconds: float) -> str:
    """``m:ss.s`` on the recording's timeline."""
    minutes, rest = divmod(max(0.0, seconds), 60)
    return f"{int(minutes)}:{rest:04.1f}"


def fmt_ms(value: int | None) -> str:
    return "–" if value is None else f"{value} ms"


class _Axis:
    def __init__(self, duration_s: float, width: int) -> None:
        self.duration_s, self.width = duration_s, width

    def x(self, t: float) -> float:
        return round(min(max(t, 0.0), self.duration_s) / self.duration_s * self.width, 1)

    def w(self, start: float, end: float, minimum: float = 1.0) -> float:
        return max(minimum, round(self.x(end) - self.x(start), 1))


def _wave_path(peaks: Peaks, top: int, height: int) -> str:
    """A filled band from each bucket's highest to its lowest sample (bucket i = pixel i)."""
    middle, half = top + height / 2, height / 2 - 3
    upper = [f"{i},{middle - hi * half:.1f}" for i, hi in enumerate(peaks.highs)]
    lower = [f"{i},{middle - lo * half:.1f}" for i, lo in reversed(list(enumerate(peaks.lows)))]
    if not upper:
        return ""
    return "M" + " L".join(upper + lower) + " Z"


def _clipped_text(x: float, y: int, width: float, height: int, text: str, cls: str = "") -> str:
    # A nested <svg> clips its content: long labels never spill over the next phrase.
    attr = f' class="{cls}"' if cls else ""
    return (
        f'<svg x="{x}" y="{y}" width="{max(width, 1.0)}" height="{height}"{attr}>'
        f'<text x="2" y="{height - 4}">{esc(text)}</text></svg>'
    )


def _phrase_label(phrase: BotPhrase, answers: dict[str, str]) -> str:
    # Recordings from before mark_sent carried text: the response's text as the turn said it, once.
    return (
        phrase.text or answers.pop(phrase.response_id, "") or phrase.mark or f"response {phrase.response_id}"
    )


def _axis(axis: _Axis) -> Iterable[str]:
    step = next((s for s in _TICK_STEPS if s / axis.duration_s * axis.width >= 70), _TICK_STEPS[-1])
    yield '<g class="axis">'
    t = 0.0
    while t <= axis.duration_s:
        x = axis.x(t)
        yield f'<line x1="{x}" x2="{x}" y1="{AXIS_H - 6}" y2="{SVG_H}"/>'
        yield f'<text x="{x + 2}" y="{AXIS_H - 8}">{esc(clock(t))}</text>'
        t += step
    yield "</g>"


def timeline_svg(model: CallTimeline) -> str:
    width = len(model.caller_peaks.highs)
    axis = _Axis(model.duration_s, width)
    answers = {rid: text for turn in model.turns for rid, text in turn.answers}
    out = [
        f'<svg id="timeline" width="{width}" height="{SVG_H}" viewBox="0 0 {width} {SVG_H}" '
        f'data-duration="{model.duration_s}" data-width="{width}" role="img" aria-label="call timeline">',
        '<defs><pattern id="hatch" width="6" height="6" patternUnits="userSpaceOnUse" '
        'patternTransform="rotate(45)"><rect width="6" height="6" fill="#fdecea"/>'
        '<rect width="2" height="6" fill="#c0392b" fill-opacity=".5"/></pattern></defs>',
        *_axis(axis),
        '<g id="waveform-caller" class="waveform">',
        f'<rect class="lane-bg" x="0" y="{CALLER_Y}" width="{width}" height="{LANE_H}"/>',
    ]
    for span in model.caller_speech:
        out.append(
            f'<rect class="speech" x="{axis.x(span.start_s)}" y="{CALLER_Y}" '
            f'width="{axis.w(span.start_s, span.end_s)}" height="{LANE_H}"><title>caller speech (energy) '
            f"{esc(clock(span.start_s))}–{esc(clock(span.end_s))}</title></rect>"
        )
    out.append(f'<path class="wave-caller" d="{_wave_path(model.caller_peaks, CALLER_Y, LANE_H)}"/>')
    out.append(f'<text class="lane-name" x="4" y="{CALLER_Y + 12}">caller</text>')
    out.append("</g>")  # a waveform group holds nothing that can stick out of its lane
    for marker in model.dtmf:
        x = axis.x(marker.t_s)
        out.append(
            f'<g class="dtmf"><rect x="{x}" y="{CALLER_Y}" width="2" height="{LANE_H}"/>'
            f'<text x="{x + 3}" y="{CALLER_Y + 24}">{esc(marker.label)}</text>'
            f"<title>{esc(marker.type)} {esc(marker.detail)}</title></g>"
        )
    for turn in model.turns:
        out.extend(_turn_marks(turn, axis))
    out += [
        '<g id="waveform-bot" class="waveform">',
        f'<rect class="lane-bg" x="0" y="{BOT_Y}" width="{width}" height="{LANE_H}"/>',
    ]
    labels = []
    for phrase in model.phrases:
        label = _phrase_label(phrase, answers)
        if phrase.start_s is not None and phrase.end_s is not None:
            x, w = axis.x(phrase.start_s), axis.w(phrase.start_s, phrase.end_s)
            owner = f"turn {phrase.turn} " if phrase.turn is not None else ""
            title = f"{owner}{phrase.kind} {clock(phrase.start_s)}: {label}"
            out.append(
                f'<rect class="phrase {esc(phrase.kind)}" x="{x}" y="{BOT_Y}" width="{w}" height="{LANE_H}">'
                f"<title>{esc(title)}</title></rect>"
            )
            labels.append(_clipped_text(x, LABEL_Y, w, LABEL_H, label, f"phrase-label {phrase.kind}"))
    for span in model.cut_spans:
        out.append(
            f'<rect class="cut" x="{axis.x(span.start_s)}" y="{BOT_Y}" '
            f'width="{axis.w(span.start_s, span.end_s)}" height="{LANE_H}"><title>dropped by a clear: '
            f"{esc(clock(span.start_s))}–{esc(clock(span.end_s))}</title></rect>"
        )
    out.append(f'<path class="wave-bot" d="{_wave_path(model.bot_peaks, BOT_Y, LANE_H)}"/>')
    out.append(f'<text class="lane-name" x="4" y="{BOT_Y + 12}">bot (as heard)</text>')
    out.append("</g>")
    out.extend(labels)
    out.extend(_event_marks(model, axis))
    out.append(
        f'<rect id="playhead" class="playhead" x="0" y="{AXIS_H}" width="2" height="{SVG_H - AXIS_H}" '
        'style="display:none"/>'
    )
    out.append("</svg>")
    return "\n".join(out)


def _turn_marks(turn: TurnView, axis: _Axis) -> Iterable[str]:
    title = f"turn {turn.number}: {turn.transcript}"
    if turn.speech is not None:
        x, w = axis.x(turn.speech.start_s), axis.w(turn.speech.start_s, turn.speech.end_s)
        yield (
            f'<g class="turn-span" id="turn-span-{turn.number}"><rect x="{x}" y="{TURN_Y}" width="{w}" '
            f'height="{TURN_H}"/><title>{esc(title)}</title></g>'
        )
        yield _clipped_text(x, TURN_Y, w, TURN_H, f"T{turn.number} {turn.transcript}")
        v2v = turn.latency.voice_to_voice_ms
        if v2v is not None:
            end = turn.speech.end_s + v2v / 1000
            yield (
                f'<rect class="gap" x="{axis.x(turn.speech.end_s)}" y="{TURN_Y + 4}" '
                f'width="{axis.w(turn.speech.end_s, end)}" height="{TURN_H - 8}">'
                f"<title>turn {turn.number}: voice to voice {v2v} ms</title></rect>"
            )
    else:  # typed, or no anchor: a mark where the turn was decided (or finished)
        at = turn.decided_s if turn.decided_s is not None else turn.finished_s
        yield (
            f'<g class="turn-span" id="turn-span-{turn.number}"><rect x="{axis.x(at)}" y="{TURN_Y}" '
            f'width="3" height="{TURN_H}"/><title>{esc(title)}</title></g>'
        )
        yield _clipped_text(axis.x(at) + 3, TURN_Y, 160, TURN_H, f"T{turn.number} {turn.transcript}")


def _event_marks(model: CallTimeline, axis: _Axis) -> Iterable[str]:
    barge_times = {b.t_s for b in model.barge_ins}
    for t in model.clears:
        if not any(abs(t - b) < 0.05 for b in barge_times):
            yield (
                f'<rect class="clear" x="{axis.x(t)}" y="{BOT_Y}" width="2" height="{LANE_H}">'
                f"<title>clear at {esc(clock(t))}</title></rect>"
            )
    for barge in model.barge_ins:
        x = axis.x(barge.t_s)
        cut = ", ".join(barge.cut_responses) or "none"
        title = f"barge-in at {clock(barge.t_s)}: clear in {fmt_ms(barge.clear_ms)}, cut responses {cut}"
        yield (
            f'<g class="barge-in"><rect x="{x}" y="{CALLER_Y}" width="3" height="{BARGE_H}"/>'
            f'<text x="{x + 4}" y="{EVENTS_Y + 14}">barge-in</text><title>{esc(title)}</title></g>'
        )
    xs = [axis.x(marker.t_s) for marker in model.other_events]
    for index, (marker, x) in enumerate(zip(model.other_events, xs, strict=True)):
        yield (
            f'<g class="event"><rect x="{x}" y="{EVENTS_Y}" width="2" height="{EVENTS_H}"/>'
            f"<title>{esc(clock(marker.t_s))} {esc(marker.type)} {esc(marker.detail)}</title></g>"
        )
        room = min([120.0] + [later - x - 4 for later in xs[index + 1 :] if later > x])  # up to the next mark
        if room >= 8:
            yield _clipped_text(x + 3, EVENTS_Y, room, EVENTS_H, marker.label)
