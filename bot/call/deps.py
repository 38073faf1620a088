"""``CallDeps``: what every call of a server shares (providers, lines, Twilio REST, recordings, how the
flows' own tools run)."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from bot.flows.line import LineConfig
from bot.providers.llm.protocol import ChatModel
from bot.providers.stt.protocol import SpeechToText
from bot.providers.twilio_rest import CallControl
from bot.providers.voices import Voices
from bot.recording.store import RecordingStore
from bot.recording.writer import CallRecorder
from bot.telemetry.metrics import CallMetrics
from bot.tools.http_tool import HttpClient
from bot.tools.registry import Tool
from media.vad import VoiceDetector


class LineRouter(Protocol):
    def route(self, to_number: str | None) -> LineConfig: ...


def own_tools(tools: Sequence[Tool]) -> tuple[Tool, ...]:
    """A line's http and python tools as the flow built them: they run for real."""
    return tuple(tools)


@dataclass
class CallDeps:
    """Process-wide providers and the lines, shared by every call."""

    stt: SpeechToText
    llm: ChatModel
    voices: Voices
    lines: LineRouter
    control: CallControl | None = None  # Twilio REST; None: hang up by closing the socket only
    detector: Callable[[], VoiceDetector] | None = None  # a voice detector per call (None: energy VAD)
    # The flows' HTTP tools' connection pool (closed with the server).
    http: HttpClient = field(default_factory=HttpClient)
    # Opens a call's recording with the call's clock (None: recording is off, or the store failed).
    recorder: Callable[[str, Callable[[], float]], CallRecorder | None] | None = None
    metrics: CallMetrics | None = None  # the server's /metrics (None: not collected)
    recordings: RecordingStore | None = None  # where they are kept (the inspector at /calls reads it)
    # Every call's clock (monotonic seconds). A replay swaps in its event loop's scaled clock, so turn
    # figures and recordings stay in the replay's time.
    clock: Callable[[], float] = time.monotonic
    # The tools a call offers for its line's own (http, python) tools; the telephony tools (end_call,
    # transfer_call) are not passed through it. A replay answers them from the recording instead
    # (``bot.sim.replay.tools``), so replaying a call repeats no refund or cancellation.
    flow_tools: Callable[[Sequence[Tool]], tuple[Tool, ...]] = own_tools
