"""The load benchmark's figures: from the calls' phone events, the bot's /metrics and its recordings.

Rules:
- Pacing: every frame of bot audio the phones played counts once, 0 when it followed the previous one
  back to back, else the gap before it (see ``emulators.playback``): p50/p99/max over all frames.
- Overhead: on the plain utterances (answered without a tool round), caller's last sound -> first bot
  audio played, minus ``fixed_s`` (end-of-turn silence + emulated STT, first token and first byte).
- Barge-in: the talked-over utterance's first sound -> the first ``clear`` the phone received after it.
- Lost recordings: calls that connected whose recording (by call SID) is missing or not complete.
- TTS requests per call-minute: the TTS emulator's RPCs (unary ``SynthesizeSpeech`` and streaming
  ``StreamingSynthesize`` calls, each one request to Google's per-minute quotas) during the level, over
  the calls' minutes.
- Pure functions over what the run collected, plus reading the recordings' ``meta.json`` files.
"""

from __future__ import annotations

import json
import os
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from bench.load_calls import PLAIN, SUNDAY, CallResult
from emulators.call_record import PhoneEvent


def pct(values: list[float], q: float) -> float:
    """The ``q`` quantile (nearest rank) of ``values``; NaN when empty."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


@dataclass
class Figures:
    n: int
    calls: int
    failed: int
    call_minutes: float
    pacing_p50_ms: float
    pacing_p99_ms: float
    pacing_max_ms: float
    stutters: int
    frames: int
    overhead_p50_ms: float
    overhead_p95_ms: float
    clear_p95_ms: float
    cpu_s_per_call_minute: float
    cores: dict[str, float]  # CPU seconds per second of each process: bot, emulators, phones
    rss_per_call_mb: float
    peak_rss_mb: float
    dropped_frames: int
    provider_errors: int
    lost_recordings: int
    phone_lag_p99_ms: float
    bot_lag_p99_ms: float
    problems: list[str] = field(default_factory=list)
    tts_unary_per_call_minute: float = float("nan")
    tts_streaming_per_call_minute: float = float("nan")

    @staticmethod
    def header() -> str:
        return (
            "    N | calls fail | pacing p50/p99/max ms stutters | overhead p50/p95 ms | clear p95 ms | "
            "CPU s/call-min bot cores machine % | MB/call (peak) | dropped prov.err lost.rec | "
            "loop lag p99 ms bot phones | TTS req/call-min (unary+stream)"
        )

    def row(self) -> str:
        return (
            f"{self.n:5d} | {self.calls:5d} {self.failed:4d} | "
            f"{self.pacing_p50_ms:4.0f} {self.pacing_p99_ms:4.0f} {self.pacing_max_ms:5.0f} "
            f"{self.stutters:5d}/{self.frames} | {self.overhead_p50_ms:6.0f} {self.overhead_p95_ms:6.0f} | "
            f"{self.clear_p95_ms:6.0f} | {self.cpu_s_per_call_minute:8.2f} {self.cores['bot']:5.2f} "
            f"{100 * sum(self.cores.values()) / (os.cpu_count() or 1):4.0f} | "
            f"{self.rss_per_call_mb:5.2f} ({self.peak_rss_mb:.0f}) | "
            f"{self.dropped_frames:5d} {self.provider_errors:5d} {self.lost_recordings:5d} | "
            f"{self.bot_lag_p99_ms:6.0f} {self.phone_lag_p99_ms:6.0f} | "
            f"{self.tts_unary_per_call_minute + self.tts_streaming_per_call_minute:5.1f} "
            f"({self.tts_unary_per_call_minute:.1f}+{self.tts_streaming_per_call_minute:.1f})"
        )


def metric_totals(exposition: str) -> dict[str, float]:
    """Each Prometheus sample name summed over its labels."""
    totals: dict[str, float] = {}
    for line in exposition.splitlines():
        if line and not line.startswith("#"):
            name, _, value = line.rpartition(" ")
            family = name.split("{", 1)[0]
            totals[family] = totals.get(family, 0.0) + float(value)
    return totals


def bucket_quantile(exposition: str, histogram: str, q: float) -> float:
    """The upper bound of the first bucket holding the ``q`` quantile (NaN with no samples)."""
    buckets: list[tuple[float, float]] = []
    for line in exposition.splitlines():
        if line.startswith(histogram + "_bucket{"):
            bound = line.split('le="', 1)[1].split('"', 1)[0]
            buckets.append((float(bound), float(line.rpartition(" ")[2])))
    buckets.sort()
    if not buckets or buckets[-1][1] == 0:
        return float("nan")
    total = buckets[-1][1]
    return next(bound for bound, count in buckets if count >= q * total)


def answer_latencies(result: CallResult) -> dict[int, float]:
    """Utterance index -> seconds from its end to the first bot audio before the caller spoke again."""
    events = result.events
    ends = [e.t for e in events if e.kind == "caller_speech_end"]
    starts = [e.t for e in events if e.kind == "caller_speech_start"]
    bot = [e.t for e in events if e.kind == "bot_audio_start"]
    out: dict[int, float] = {}
    for i, end in enumerate(ends):
        next_speech = min((s for s in starts if s > end), default=float("inf"))
        answer = min((b for b in bot if end <= b < next_speech), default=None)
        if answer is not None:
            out[i] = answer - end
    return out


def clear_latency(events: list[PhoneEvent], said: list[str]) -> float | None:
    """The talked-over utterance's first sound -> the next ``clear``."""
    if SUNDAY not in said:
        return None
    starts = [e.t for e in events if e.kind == "caller_speech_start"]
    index = said.index(SUNDAY)
    if index >= len(starts):
        return None
    onset = starts[index]
    cleared = next((e.t for e in events if e.kind == "clear_received" and e.t >= onset), None)
    return None if cleared is None else cleared - onset


def complete_recordings(folder: Path) -> set[str]:
    """Call SIDs whose recording under ``folder`` was finalized."""
    done: set[str] = set()
    for meta_path in folder.rglob("meta.json"):
        try:
            meta = json.loads(meta_path.read_bytes())
        except (OSError, ValueError):
            continue
        if meta.get("complete") is True:
            done.add(str(meta.get("call_sid")))
    return done


def summarise(
    n: int,
    results: list[CallResult],
    *,
    fixed_s: float,
    cpu_s: float,
    cores: dict[str, float],
    idle_rss_mb: float,
    peak_rss_mb: float,
    metrics: str,
    phone_lags: list[float],
    recordings: Path,
    log_text: str,
    tts_requests: dict[str, int] | None = None,
) -> Figures:
    problems: list[str] = []
    failures = Counter(r.error for r in results if r.error)
    problems += [f"{count} calls: {error}" for error, count in failures.most_common(5)]
    frames = sum(r.frames_played for r in results)
    gaps = [g for r in results for g in r.gaps]
    pacing = gaps + [0.0] * max(0, frames - len(gaps))
    overheads: list[float] = []
    clears: list[float] = []
    for r in results:
        if r.error:
            continue
        for index, latency in answer_latencies(r).items():
            if index < len(r.said) and r.said[index] in PLAIN:
                overheads.append(latency - fixed_s)
        clear = clear_latency(r.events, r.said)
        if clear is not None:
            clears.append(clear)
    recorded = complete_recordings(recordings)
    connected = [r for r in results if r.call_sid]
    lost = [r.call_sid for r in connected if r.call_sid not in recorded]
    if lost:
        problems.append(f"{len(lost)} recordings missing or incomplete, e.g. {lost[0]}")
    warnings = Counter(_event(line) for line in log_text.splitlines() if _is_warning(line))
    problems += [f"bot log: {count} x {event}" for event, count in warnings.most_common(5)]
    minutes = sum(r.minutes for r in results)
    totals = metric_totals(metrics)
    return Figures(
        n=n,
        calls=len(results),
        failed=sum(1 for r in results if r.error),
        call_minutes=minutes,
        pacing_p50_ms=pct(pacing, 0.5) * 1000,
        pacing_p99_ms=pct(pacing, 0.99) * 1000,
        pacing_max_ms=max(pacing, default=float("nan")) * 1000,
        stutters=sum(1 for g in gaps if g > 0),
        frames=frames,
        overhead_p50_ms=pct(overheads, 0.5) * 1000,
        overhead_p95_ms=pct(overheads, 0.95) * 1000,
        clear_p95_ms=pct(clears, 0.95) * 1000,
        cpu_s_per_call_minute=cpu_s / minutes if minutes else float("nan"),
        cores=cores,
        rss_per_call_mb=(peak_rss_mb - idle_rss_mb) / n,
        peak_rss_mb=peak_rss_mb,
        dropped_frames=round(totals.get("phonebot_dropped_frames_total", 0.0)),
        provider_errors=round(totals.get("phonebot_provider_errors_total", 0.0)),
        lost_recordings=len(lost),
        phone_lag_p99_ms=pct(phone_lags, 0.99) * 1000,
        bot_lag_p99_ms=bucket_quantile(metrics, "phonebot_event_loop_lag_seconds", 0.99) * 1000,
        problems=problems,
        tts_unary_per_call_minute=_per_minute(tts_requests, "unary", minutes),
        tts_streaming_per_call_minute=_per_minute(tts_requests, "streaming", minutes),
    )


def _per_minute(counts: dict[str, int] | None, kind: str, minutes: float) -> float:
    if counts is None or not minutes:
        return float("nan")
    return counts.get(kind, 0) / minutes


def _is_warning(line: str) -> bool:
    return '"level": "warning"' in line or '"level": "error"' in line or '"level":"error"' in line


def _event(line: str) -> str:
    try:
        record = json.loads(line)
    except ValueError:
        return line[:80]
    return str(record.get("event", line[:80])) if isinstance(record, dict) else line[:80]
