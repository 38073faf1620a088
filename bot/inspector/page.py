"""The inspector page: a ``CallTimeline`` as one self-contained HTML document.

Rules:
- Pure: model in, string out. Everything is inline (CSS, SVG, the optional script); the page references
  nothing outside itself, and its Content-Security-Policy forbids loading anything else anyway (only the
  recording's own audio, from the same origin, when ``audio_url`` is given).
- Every text that came from a recording goes through ``html.escape`` (attributes too): transcripts, tool
  arguments and model output are caller- or model-controlled.
- Sections: summary, what the reader could not use (incomplete call, torn or damaged event lines with
  their reasons, caller audio past the call's end), the timeline (``bot.inspector.svg``: both waveforms
  on one time axis), a latency bar per turn (last word -> decision -> first audio sent -> heard, ticks
  for transcript and first token, one scale for all turns), the turn table, the other events, the meta.
- Stable hooks for tests and readers (besides the SVG's): ids ``latency``, ``latency-<n>``, ``turns``,
  ``turn-<n>``, ``events``, ``meta``, ``audio``, ``skipped-lines``; classes ``turn``, ``filler``,
  ``tool-call``, ``latency-bar``, ``barge-in``, ``incomplete``. The legend uses plain colours, never those
  classes.
"""

from __future__ import annotations

import statistics

from bot.inspector.svg import clock, esc, fmt_ms, timeline_svg
from bot.inspector.timeline import CallTimeline, Latency, TurnView

LATENCY_PX = 560  # width of the longest latency bar's track
TOOL_PX_PER_S = 120
_CSP = (
    "default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline'; "
    "media-src 'self'; img-src data:; base-uri 'none'; form-action 'none'"
)

_CSS = """
body{font:14px/1.4 system-ui,sans-serif;margin:16px 24px;color:#1d2330;background:#fafbfc}
h1{font-size:20px;margin:0 0 4px}h2{font-size:16px;margin:22px 0 8px}
code{font:12px ui-monospace,monospace}
.summary{display:flex;flex-wrap:wrap;gap:6px 22px;margin:6px 0}.summary b{font-weight:600}
.incomplete{background:#fff3cd;border:1px solid #e0b84c;padding:6px 10px;border-radius:4px}
.scroll{overflow-x:auto;border:1px solid #d5dae1;background:#fff;border-radius:4px}
svg text{font:10px system-ui,sans-serif;fill:#3c4656}
.lane-bg{fill:#f4f6f9}.lane-name{font-weight:600;fill:#6b7585}
.wave-caller{fill:#2f6fb3}.wave-bot{fill:#2e8b57}
.speech{fill:#2f6fb3;fill-opacity:.12}.turn-span{fill:#2f6fb3;fill-opacity:.55}.gap{fill:#c0392b;fill-opacity:.35}
.phrase.answer{fill:#2e8b57;fill-opacity:.16}.phrase.filler{fill:#d68910;fill-opacity:.3}
.phrase.other{fill:#7d3c98;fill-opacity:.14}.cut{fill:url(#hatch)}
.barge-in{fill:#c0392b}.clear{fill:#c0392b;fill-opacity:.45}.dtmf{fill:#7d3c98}.event{fill:#5d6d7e}
.axis line{stroke:#c5ccd6}.playhead{fill:#111}
.legend span{display:inline-block;margin-right:14px}.legend i{display:inline-block;width:12px;height:10px;
margin-right:4px;vertical-align:middle}
table{border-collapse:collapse;background:#fff;width:100%}
td,th{border:1px solid #d5dae1;padding:4px 6px;vertical-align:top;text-align:left}th{background:#eef1f5}
td.figures{white-space:nowrap}
tr.turn.barge td:first-child{border-left:4px solid #c0392b}
.filler{color:#9a6400}.filler::before{content:"filler: ";font-weight:600}
.tool-call{margin:2px 0}.tool-bar{display:inline-block;height:8px;background:#5d6d7e;margin-left:6px}
.ok{color:#1e7b45}.failed{color:#c0392b;font-weight:600}
span.barge-in{background:#c0392b;color:#fff;padding:0 4px;border-radius:3px}
.latency-row{display:flex;align-items:center;gap:8px;margin:3px 0}.latency-label{width:34px}
.latency-track{position:relative;height:16px;background:#eef1f5}
.latency-bar{display:flex;height:16px}.latency-bar span{height:100%}
.seg-endpoint{background:#aab7c4}.seg-respond{background:#2f6fb3}.seg-playout{background:#2e8b57}
.tick{position:absolute;top:-3px;width:2px;height:22px}.tick-stt{background:#d68910}.tick-llm{background:#7d3c98}
details.llm pre{white-space:pre-wrap;margin:2px 0;font:12px ui-monospace,monospace}
"""

_SCRIPT = """(function(){var a=document.getElementById('audio'),s=document.getElementById('timeline'),
p=document.getElementById('playhead');if(!a||!s||!p)return;var d=+s.dataset.duration,w=+s.dataset.width;
function draw(){p.setAttribute('x',(a.currentTime/d*w).toFixed(1));p.style.display='';
if(!a.paused)requestAnimationFrame(draw);}a.addEventListener('play',draw);a.addEventListener('seeked',draw);
s.addEventListener('click',function(e){var r=s.getBoundingClientRect();
a.currentTime=Math.max(0,(e.clientX-r.left)/r.width*d);draw();});})();"""


def _latency_rows(turns: tuple[TurnView, ...]) -> str:
    longest = 1000  # ms; one scale for every turn, so bars compare at a glance
    for turn in turns:
        lat = turn.latency
        endpoint = max(0, lat.end_silence_ms or 0)
        ticks = [endpoint + v for v in (lat.stt_ms, lat.llm_first_token_ms) if v is not None]
        longest = max(longest, lat.voice_to_voice_ms or 0, *ticks)
    scale = LATENCY_PX / longest
    rows = []
    for turn in turns:
        lat = turn.latency
        rows.append(
            f'<div class="latency-row" id="latency-{turn.number}">'
            f'<span class="latency-label">T{turn.number}</span>'
        )
        rows.append(f'<div class="latency-track" style="width:{LATENCY_PX}px">')
        if lat.voice_to_voice_ms is None:
            rows.append("</div><span>no bot audio</span></div>")
            continue
        rows.append(
            f'<div class="latency-bar" style="width:{round(lat.voice_to_voice_ms * scale)}px" '
            f'title="{esc(_latency_title(lat))}">'
        )
        endpoint = max(0, lat.end_silence_ms or 0)
        respond = max(0, lat.first_audio_sent_ms or 0)
        heard = lat.first_audio_heard_ms
        playout = max(0, heard - respond) if heard is not None else 0
        for name, ms in (("endpoint", endpoint), ("respond", respond), ("playout", playout)):
            rows.append(f'<span class="seg-{name}" style="width:{round(ms * scale)}px"></span>')
        rows.append("</div>")
        for name, at, what in (
            ("stt", lat.stt_ms, "transcript ready"),
            ("llm", lat.llm_first_token_ms, "first token"),
        ):
            if at is not None:  # counted from the decision, which is `endpoint` into the bar
                left = round(min(max(endpoint + at, 0), longest) * scale)
                rows.append(
                    f'<span class="tick tick-{name}" style="left:{left}px" title="{what}: {esc(fmt_ms(at))} '
                    'after the decision"></span>'
                )
        rows.append(f"</div><span>{esc(fmt_ms(lat.voice_to_voice_ms))}</span></div>")
    return "\n".join(rows)


def _latency_title(lat: Latency) -> str:
    return (
        f"last word → decision {fmt_ms(lat.end_silence_ms)}; "
        f"decision → first audio sent {fmt_ms(lat.first_audio_sent_ms)}, "
        f"heard {fmt_ms(lat.first_audio_heard_ms)}; voice to voice {fmt_ms(lat.voice_to_voice_ms)}"
    )


def _turn_row(turn: TurnView) -> str:
    span = turn.speech
    when = f"{clock(span.start_s)}–{clock(span.end_s)}" if span else clock(turn.decided_s or turn.finished_s)
    caller = f'<div class="when">{esc(when)}</div>' + ("<i>typed</i> " if turn.typed else "")
    caller += f'<div class="transcript">{esc(turn.transcript)}</div>'
    bot = "".join(f'<div class="answer">{esc(text)}</div>' for _, text in turn.answers)
    bot += "".join(f'<div class="filler">{esc(text)}</div>' for text in turn.fillers)
    if turn.llm:
        bot += f'<details class="llm"><summary>{len(turn.llm)} model request(s)</summary>'
        for number, entry in enumerate(turn.llm, 1):
            lines = [f"#{number} ({entry.messages} messages)"]
            lines += [f"text: {entry.text}"] if entry.text else []
            lines += [f"tool call: {call}" for call in entry.tool_calls]
            lines += [f"tool result: {result}" for result in entry.tool_results]
            bot += f"<pre>{esc(chr(10).join(lines))}</pre>"
        bot += "</details>"
    tools = ""
    for tool in turn.tools:
        status = "?" if tool.ok is None else '<span class="ok">ok</span>'
        status = '<span class="failed">failed</span>' if tool.ok is False else status
        bar = round((tool.ms or 0) / 1000 * TOOL_PX_PER_S)
        tools += (
            f'<div class="tool-call"><b>{esc(tool.name)}</b>(<code>{esc(tool.args)}</code>) {status} '
            f'{esc(fmt_ms(tool.ms))}<span class="tool-bar" style="width:{max(bar, 2)}px"></span></div>'
        )
    lat = turn.latency
    figures = "<br>".join(
        f"{name} {esc(fmt_ms(value))}"
        for name, value in (
            ("voice→voice", lat.voice_to_voice_ms),
            ("stt", lat.stt_ms),
            ("first token", lat.llm_first_token_ms),
            ("audio sent", lat.first_audio_sent_ms),
            ("heard", lat.first_audio_heard_ms),
        )
    )
    notes = '<span class="barge-in">barge-in</span> ' if turn.barge_in else ""
    notes += "tool filler " if turn.tool_filler else ""
    notes += "silence filler " if turn.silence_filler else ""
    notes += f'<span class="failed">error: {esc(turn.error)}</span>' if turn.error else ""
    row_class = "turn barge" if turn.barge_in else "turn"
    return (
        f'<tr class="{row_class}" id="turn-{turn.number}"><td>{turn.number}</td><td>{caller}</td>'
        f'<td>{bot}</td><td>{tools}</td><td class="figures">{figures}</td><td>{notes}</td></tr>'
    )


def _summary(model: CallTimeline) -> str:
    meta = dict(model.meta)
    v2v = [t.latency.voice_to_voice_ms for t in model.turns if t.latency.voice_to_voice_ms is not None]
    items = [
        ("started", meta.get("started_at", "?")),
        ("duration", f"{model.duration_s:.1f} s"),
        ("turns", str(len(model.turns))),
        ("median voice→voice", fmt_ms(round(statistics.median(v2v)) if v2v else None)),
        ("barge-ins", str(len(model.barge_ins))),
        ("tool calls", str(sum(len(t.tools) for t in model.turns))),
        ("flow", meta.get("flow", "?")),
        ("ended by", meta.get("ended_by", "?")),
    ]
    return (
        '<div class="summary">'
        + "".join(f"<span>{esc(k)}: <b>{esc(v)}</b></span>" for k, v in items)
        + "</div>"
    )


def render_page(model: CallTimeline, *, audio_url: str | None = None, back_url: str | None = None) -> str:
    """The whole page. ``audio_url``: a same-origin URL of the call's WAV (adds a player synced with the
    timeline); ``back_url``: a link back to the list of calls."""
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f'<meta http-equiv="Content-Security-Policy" content="{esc(_CSP)}">',
        '<meta name="referrer" content="no-referrer">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>Call {esc(model.title)}</title><style>{_CSS}</style></head><body>",
        f'<p><a href="{esc(back_url)}">← all calls</a></p>' if back_url else "",
        f"<h1>Call <code>{esc(model.title)}</code></h1>",
        _summary(model),
    ]
    if not model.complete:
        parts.append(
            '<p class="incomplete">Incomplete recording: the call was not finalized (killed or still '
            "running); what was written so far is shown.</p>"
        )
    if model.torn_tail:
        parts.append('<p class="incomplete">The last event line was torn by a crash and is skipped.</p>')
    if model.skipped_lines:
        reasons = "".join(f"<li><code>{esc(reason)}</code></li>" for reason in model.skipped)
        more = model.skipped_lines - len(model.skipped)
        parts.append(
            f'<div class="incomplete" id="skipped-lines"><p>{model.skipped_lines} damaged event line(s) '
            f"skipped; the rest of the call is shown:</p><ul>{reasons}</ul>"
            + (f"<p>and {more} more.</p>" if more > 0 else "")
            + "</div>"
        )
    if model.caller_bytes_ignored:
        parts.append(
            f'<p class="incomplete">caller.ulaw holds {model.caller_bytes_ignored} bytes past the end of the '
            "call: not read.</p>"
        )
    if audio_url:
        parts.append(f'<audio id="audio" controls preload="none" src="{esc(audio_url)}"></audio>')
    # Plain colours, not the timeline's classes: the legend must not count as a barge-in or a filler.
    legend = (
        ("#2f6fb3", ".12", "caller speech (energy)"),
        ("#2f6fb3", ".55", "turn: caller speech (figures)"),
        ("#c0392b", ".35", "voice to voice"),
        ("#2e8b57", ".3", "answer"),
        ("#d68910", ".4", "filler"),
        ("#7d3c98", ".25", "other bot speech"),
        ("#c0392b", ".2", "dropped by a clear"),
        ("#c0392b", "1", "barge-in"),
    )
    parts += [
        '<section><h2>Timeline</h2><div class="legend">',
        *(f'<span><i style="background:{c};opacity:{o}"></i>{esc(n)}</span>' for c, o, n in legend),
        f'</div><div class="scroll">{timeline_svg(model)}</div></section>',
        '<section id="latency"><h2>Latency per turn</h2>',
        '<div class="legend"><span><i class="seg-endpoint"></i>last word → decision</span>'
        '<span><i class="seg-respond"></i>decision → first audio sent</span>'
        '<span><i class="seg-playout"></i>sent → heard</span><span><i class="tick-stt"></i>transcript</span>'
        '<span><i class="tick-llm"></i>first token</span></div>',
        _latency_rows(model.turns),
        '</section><section><h2>Turns</h2><table id="turns"><thead><tr><th>#</th><th>caller</th><th>bot</th>'
        "<th>tools</th><th>latency</th><th>notes</th></tr></thead><tbody>",
        *(_turn_row(turn) for turn in model.turns),
        '</tbody></table></section><section><h2>Other events</h2><table id="events"><thead><tr><th>t</th>'
        "<th>event</th><th>details</th></tr></thead><tbody>",
        *(
            f'<tr class="event-row"><td>{esc(clock(m.t_s))}</td><td>{esc(m.type)}</td>'
            f"<td><code>{esc(m.detail[:400])}</code></td></tr>"
            for m in (*model.dtmf, *model.other_events)
        ),
        '</tbody></table></section><section><h2>Recording</h2><table id="meta"><tbody>',
        *(f"<tr><th>{esc(k)}</th><td>{esc(v)}</td></tr>" for k, v in model.meta),
        "</tbody></table></section>",
        f"<script>{_SCRIPT}</script>" if audio_url else "",
        "</body></html>",
    ]
    return "\n".join(p for p in parts if p)
