"""Prometheus metrics of one server process, fed by what the server already logs (``CallJournal``, and
the call status callbacks).

Rules:
- One ``CollectorRegistry`` per server (not the process-global one), so servers started side by side in
  tests never share counters.
- Metrics come from logged events, never from the audio path: a turn's figures feed the latency histograms,
  ``provider_error`` the errors by provider and kind, ``barge_in`` and the turn's filler flags their counters,
  every junk frame (``invalid``) the dropped-frames counter, ``call_ended`` the calls by how they ended, each
  Twilio status callback (``call_status``, ``bot.server.twilio.status``) the callbacks by call status, each
  stream status callback (``stream_status``) by stream event, each ``<Connect action>`` request
  (``connect_action``, ``bot.server.twilio.connect_action``) by outcome, each signed callback seen again
  (``callback_repeated``, ``bot.server.twilio.callback_dedupe``: counted here, not in the others) by route,
  each refused media stream (``stream_refused``, ``bot.server.stream_gate``) by reason, each refused request
  (``request_refused``, ``bot.server.refusals``) by route and status. Active calls are read from the server's
  live-call set when scraped.
- ``phonebot_tts_fallbacks``: phrases the fallback voice spoke because the primary's quota was used up,
  counted by the voice itself (``bot.providers.tts.fallback``), process-wide: not a call's event.
- Recordings' disk (``bot.recording.space``, ``bot.recording.retention``): ``phonebot_recording_paused``
  is 1 while the free-space floor pauses every recording, ``phonebot_recording_dropped_bytes`` counts the
  audio not recorded meanwhile (added up by the floor, handed over once a second at most, not per
  frame); each retention sweep sets ``phonebot_recordings_bytes`` and counts what it deleted by reason
  (age, bytes, empty).
- ``phonebot_event_loop_lag_seconds``: how late the event loop wakes a 100 ms sleep (``watch_loop_lag``).
  Every call shares the one loop, so lag is what a busy process does to all callers' audio at once: the
  figure to scale on before latency shows in the turn histograms. The last second's worst sample
  (``recent_loop_lag_s``) is what ``/readyz`` sheds load on.
- Label values are bounded: provider, engine and kind names from our code, the ending and the refusal
  reason from fixed sets, the call status and stream event from Twilio's sets (anything else is ``other``
  before it gets here).
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable, Mapping
from typing import Any, Final

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

CONTENT_TYPE: Final = CONTENT_TYPE_LATEST
# Voice-to-voice sits around 0.5 to 2 s; the buckets are finest there.
LATENCY_BUCKETS: Final = (0.25, 0.5, 0.75, 1.0, 1.25, 1.5, 2.0, 3.0, 5.0, 10.0)
# A 20 ms audio frame is the unit a caller can hear; lag past 50 ms is audible as a late answer.
LOOP_LAG_BUCKETS: Final = (0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1.0)
LOOP_LAG_INTERVAL_S: Final = 0.1
RECENT_LAG_SAMPLES: Final = 10  # one second of samples


class CallMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.active = Gauge("phonebot_active_calls", "Calls connected now.", registry=r)
        self.count_active(lambda: 0)
        self.calls = Counter("phonebot_calls", "Calls ended, by how they ended.", ["ended_by"], registry=r)
        self.turns = Counter("phonebot_turns", "Caller turns answered (or attempted).", registry=r)
        self.voice_to_voice = Histogram(
            "phonebot_turn_voice_to_voice_seconds",
            "Caller's last word to the bot's first audio heard (estimated), per turn.",
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.first_audio = Histogram(
            "phonebot_turn_first_audio_sent_seconds",
            "End of the caller's turn to the first audio sent, per turn.",
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.provider_errors = Counter(
            "phonebot_provider_errors",
            "Provider errors by provider and kind.",
            ["provider", "kind"],
            registry=r,
        )
        self.barge_ins = Counter("phonebot_barge_ins", "Times a caller talked over the bot.", registry=r)
        self.fillers = Counter("phonebot_fillers", "Fillers said, by kind.", ["kind"], registry=r)
        self.dropped_frames = Counter(
            "phonebot_dropped_frames", "Inbound frames dropped as invalid, by kind.", ["kind"], registry=r
        )
        self.streams_refused = Counter(
            "phonebot_streams_refused",
            "Media streams closed before any call work: start not bound to its webhook, by reason.",
            ["reason"],
            registry=r,
        )
        self.tts_fallbacks = Counter(
            "phonebot_tts_fallbacks",
            "Phrases the fallback voice (TTS_FALLBACK) spoke, by fallback engine and the primary's error.",
            ["fallback", "kind"],
            registry=r,
        )
        self.call_statuses = Counter(
            "phonebot_call_status", "Twilio call status callbacks, by call status.", ["status"], registry=r
        )
        self.stream_statuses = Counter(
            "phonebot_stream_status",
            "Twilio stream status callbacks, by stream event.",
            ["event"],
            registry=r,
        )
        self.callbacks_repeated = Counter(
            "phonebot_callbacks_repeated",
            "Signed callbacks seen again within the dedupe window (retries, replays): answered, not counted.",
            ["route"],
            registry=r,
        )
        self.requests_refused = Counter(
            "phonebot_requests_refused",
            "Requests refused (bot.server.refusals), by route and HTTP status: every one, however few are"
            " logged.",
            ["route", "status"],
            registry=r,
        )
        self.connect_actions = Counter(
            "phonebot_connect_actions",
            "Streams ended (<Connect action> requests), by what was answered.",
            ["outcome"],
            registry=r,
        )
        self.recording_paused = Gauge(
            "phonebot_recording_paused",
            "1 while recordings are paused: the recordings volume is under RECORDING_MIN_FREE_BYTES free.",
            registry=r,
        )
        self.recording_dropped_bytes = Counter(
            "phonebot_recording_dropped_bytes",
            "Call audio not recorded because recordings were paused (free-space floor).",
            registry=r,
        )
        self.recordings_bytes = Gauge(
            "phonebot_recordings_bytes",
            "Bytes of recordings in RECORDINGS_DIR after the last sweep.",
            registry=r,
        )
        self.recordings_deleted = Counter(
            "phonebot_recordings_deleted",
            "Recordings deleted by retention, by reason (age, bytes, empty).",
            ["reason"],
            registry=r,
        )

        self._recent_lag: deque[float] = deque(maxlen=RECENT_LAG_SAMPLES)
        self.loop_lag = Histogram(
            "phonebot_event_loop_lag_seconds",
            "How late the event loop wakes a 100 ms sleep, sampled every 100 ms.",
            buckets=LOOP_LAG_BUCKETS,
            registry=r,
        )

    async def watch_loop_lag(self, interval_s: float = LOOP_LAG_INTERVAL_S) -> None:
        """Observe the loop's lag until cancelled."""
        loop = asyncio.get_running_loop()
        while True:
            start = loop.time()
            await asyncio.sleep(interval_s)
            lag = max(0.0, loop.time() - start - interval_s)
            self.loop_lag.observe(lag)
            self._recent_lag.append(lag)

    def recent_loop_lag_s(self) -> float:
        """The worst lag of the last second's samples (0 before the first): what ``/readyz`` sheds load on."""
        return max(self._recent_lag, default=0.0)

    def count_active(self, active_calls: Callable[[], int]) -> None:
        """Where ``phonebot_active_calls`` is read from when scraped (the server's live-call set)."""
        self.active.set_function(lambda: float(active_calls()))

    def observe(self, event: str, fields: Mapping[str, Any]) -> None:
        """One journal event (see the module rules); unknown events are ignored."""
        if event == "turn":
            self.turns.inc()
            for histogram, name in (
                (self.voice_to_voice, "voice_to_voice_ms"),
                (self.first_audio, "first_audio_sent_ms"),
            ):
                value = fields.get(name)
                if isinstance(value, int) and value >= 0:
                    histogram.observe(value / 1000)
            if fields.get("tool_filler"):
                self.fillers.labels("tool").inc()
            if fields.get("silence_filler"):
                self.fillers.labels("silence").inc()
        elif event == "provider_error":
            self.provider_errors.labels(str(fields.get("provider", "")), str(fields.get("kind", ""))).inc()
        elif event == "barge_in":
            self.barge_ins.inc()
        elif event == "invalid":
            self.dropped_frames.labels(str(fields.get("kind", ""))).inc()
        elif event == "call_ended":
            self.calls.labels(str(fields.get("ended_by", "unknown"))[:32]).inc()
        elif event == "stream_refused":
            self.streams_refused.labels(str(fields.get("reason", "other"))[:32]).inc()
        elif event == "call_status":
            self.call_statuses.labels(str(fields.get("status", "other"))[:32]).inc()
        elif event == "stream_status":
            self.stream_statuses.labels(str(fields.get("event", "other"))[:32]).inc()
        elif event == "callback_repeated":
            self.callbacks_repeated.labels(str(fields.get("route", "other"))[:32]).inc()
        elif event == "request_refused":
            route, status = str(fields.get("route", ""))[:32], str(fields.get("status", ""))[:3]
            self.requests_refused.labels(route, status).inc()
        elif event == "connect_action":
            self.connect_actions.labels(str(fields.get("outcome", "other"))[:32]).inc()

    def exposition(self) -> bytes:
        return generate_latest(self.registry)
