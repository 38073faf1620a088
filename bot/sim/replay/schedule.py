"""When the replayed caller says each thing: the recorded caller's utterances and keys, each placed
relative to what the replayed bot does, not to the call's start.

Rules:
- The caller's side is cut into cues: utterances (``bot.inspector.waveform.speech_spans`` on caller.ulaw,
  padded by ``PAD_S`` each side without crossing a neighbour) and keys (the recorded ``dtmf`` times), in
  recorded order. A cue's audio is the recorded audio of its span; the phone fills the rest with its own
  comfort noise.
- The bot's side of the recording is its bursts of played audio (``bot.recording.playback``, the chunks
  heard, gaps under ``BURST_GAP_S`` bridged), the same unit the simulated phone reports as
  bot_audio_start/end.
- Each cue is anchored to what came before it in the recording, after the previous cue's end (the
  stream's start for the first):
  - ``barge_in``: the bot was playing when the cue started: the start of that burst, named by its
    ordinal among the bursts that started after the previous cue (1 = the bot's first audio of its
    answer), plus the same offset as recorded.
  - ``after_bot``: the bot spoke since the previous cue and had stopped: the end of the bot's answer
    (silent, its turn finished) plus the same silence as recorded.
  - ``after_caller``: the bot was silent since the previous cue: the previous cue's end (the stream's start
    for the first cue) plus the same gap as recorded.
  A barge-in into an answer (its response is in a turn's ``said``) waits for the replayed turn's answer
  too: a slow model's filler or progress line is not the answer the caller cut.
  So a slower machine shifts the caller with the bot, and a barge-in cuts the answer the same time after
  its first audio, whatever the load.
- Pure: no clocks, no I/O.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Final, Literal

from bot.inspector.waveform import speech_spans
from bot.recording.format import BYTES_PER_SECOND
from bot.recording.playback import place_bot_audio
from bot.recording.reader import Recording

PAD_S: Final = 0.2  # audio kept around a speech span: onsets and tails the energy split may miss
BURST_GAP_S: Final = 0.04  # the phone ends a burst after one whole idle 20 ms tick: shorter gaps are one

AnchorKind = Literal["barge_in", "after_bot", "after_caller"]


@dataclass(frozen=True)
class Span:
    start: float  # seconds on the recording's timeline
    end: float


@dataclass(frozen=True)
class Cue:
    """Something the caller did, and when to do it in the replay."""

    start: float  # recorded start (s), for reports
    end: float  # recorded end (= start for a key)
    audio: bytes  # μ-law to play; empty for a key
    digit: str  # the key pressed; "" for an utterance
    anchor: AnchorKind
    offset: float  # seconds after the anchor
    burst: int = 0  # barge_in: which bot burst since the previous cue (1 = the first)
    into_answer: bool = False  # barge_in: what played was a turn's answer (not a filler or progress line)

    @property
    def duration(self) -> float:
        return self.end - self.start


def bot_bursts(chunks: Iterable[tuple[float, float]]) -> list[Span]:
    """Played chunks (start, end seconds) -> bursts of continuous bot audio, in time order."""
    bursts: list[list[float]] = []
    for start, end in sorted(chunks):
        if end <= start:
            continue
        if bursts and start - bursts[-1][1] < BURST_GAP_S:
            bursts[-1][1] = max(bursts[-1][1], end)
        else:
            bursts.append([start, end])
    return [Span(a, b) for a, b in bursts]


def plan(
    utterances: Sequence[Span], keys: Sequence[tuple[float, str]], bursts: Sequence[Span]
) -> list[tuple[Span, str, AnchorKind, float, int]]:
    """The anchoring rule (module rules) on bare times: per cue in time order, (span, digit, anchor kind,
    offset, burst ordinal). Utterances and keys may interleave; bursts are the bot's, in time order."""
    cues = sorted(
        [(u, "") for u in utterances] + [(Span(t, t), d) for t, d in keys], key=lambda c: c[0].start
    )
    planned: list[tuple[Span, str, AnchorKind, float, int]] = []
    previous_end = 0.0
    for span, digit in cues:
        since = [b for b in bursts if b.start >= previous_end and b.start <= span.start]
        playing = [i for i, b in enumerate(since, 1) if b.start <= span.start < b.end]
        if playing:
            ordinal = playing[0]
            planned.append((span, digit, "barge_in", span.start - since[ordinal - 1].start, ordinal))
        elif since:
            planned.append((span, digit, "after_bot", max(0.0, span.start - since[-1].end), 0))
        else:
            planned.append((span, digit, "after_caller", max(0.0, span.start - previous_end), 0))
        previous_end = max(previous_end, span.end)
    return planned


def padded(spans: Sequence[Span], duration: float, pad: float = PAD_S) -> list[Span]:
    """Each span widened by ``pad`` each side, never past a neighbour's middle or the audio's ends."""
    out: list[Span] = []
    for i, span in enumerate(spans):
        low = 0.0 if i == 0 else (spans[i - 1].end + span.start) / 2
        high = duration if i == len(spans) - 1 else (span.end + spans[i + 1].start) / 2
        out.append(Span(max(low, span.start - pad), min(high, span.end + pad)))
    return out


def cues(recording: Recording, keys: Sequence[tuple[float, str]]) -> list[Cue]:
    """The recording's caller side as cues (module rules)."""
    caller = recording.caller_ulaw()
    duration = len(caller) / BYTES_PER_SECOND
    spans = padded([Span(s.start_s, s.end_s) for s in speech_spans(caller)], duration)
    sent = recording.bot_sent_ulaw()
    chunks = [c for c in place_bot_audio(recording.events, len(sent)).chunks if c.heard]
    played = [(c.start / BYTES_PER_SECOND, c.played_end / BYTES_PER_SECOND) for c in chunks]
    said = [turn.get("said") for turn in recording.events_of("turn")]
    answers = {str(rid) for answer in said if isinstance(answer, dict) for rid in answer}
    out = []
    for span, digit, anchor, offset, burst in plan(spans, keys, bot_bursts(played)):
        audio = (
            b""
            if digit
            else caller[round(span.start * BYTES_PER_SECOND) : round(span.end * BYTES_PER_SECOND)]
        )
        at = round(span.start * BYTES_PER_SECOND)
        playing = [c for c in chunks if c.start <= at < c.played_end]
        into_answer = anchor == "barge_in" and any(str(c.response_id) in answers for c in playing)
        out.append(Cue(span.start, span.end, audio, digit, anchor, offset, burst, into_answer))
    return out
