"""Google Cloud Text-to-Speech's per-project quotas, as the TTS emulator enforces them.

Rules (https://docs.cloud.google.com/text-to-speech/quotas, "Requests limit", read 2026-12-03):
- Requests per minute per project, by voice family: ``Chirp3RequestsPerMinutePerProject`` 200 for
  Chirp 3: HD voices, ``RequestsPerMinutePerProject`` 1,000 for the others (``Neural2...`` is 1,000 too).
  Each RPC is one request: a SynthesizeSpeech call, or a whole StreamingSynthesize session however many
  texts it carries. Whether a Chirp 3 HD request also counts against the general 1,000 is not documented;
  here each family has its own count.
- ``ConcurrentStreamingSessionsPerProject`` 100: StreamingSynthesize sessions open at once, any voice.
- Beyond a limit the service answers RESOURCE_EXHAUSTED. Its message here follows the form Google APIs use
  for quota errors ("Quota exceeded for quota metric ... and limit ... of service ... for consumer ...",
  e.g. https://github.com/googleapis/google-cloud-php/issues/1976); the exact TTS metric names are not
  published, only the limit names above.
- The minute is a sliding 60 s window (the strictest reading: a burst can never exceed the limit in any
  minute); the clock is injectable so tests need not wait a minute. A refused request is not counted.
- The project is the request's ``x-goog-user-project`` metadata (the quota project header the Google
  client libraries send), else ``default``.
"""

from __future__ import annotations

import time
from collections import Counter, defaultdict, deque
from collections.abc import Callable
from dataclasses import dataclass, field

from emulators.tts_rules import is_chirp3_hd

SERVICE = "texttospeech.googleapis.com"
WINDOW_S = 60.0


class QuotaExceeded(Exception):
    """RESOURCE_EXHAUSTED, with the service's kind of message."""


@dataclass
class TtsQuota:
    """The limits (Google's defaults unless given); ``None`` switches a limit off."""

    chirp3_per_minute: int | None = 200
    other_per_minute: int | None = 1000
    concurrent_streams: int | None = 100
    clock: Callable[[], float] = time.monotonic
    _requests: dict[tuple[str, str], deque[float]] = field(default_factory=lambda: defaultdict(deque))
    _streams: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    refused: int = 0  # requests answered RESOURCE_EXHAUSTED
    accepted: Counter[str] = field(default_factory=Counter)  # requests counted, by family (chirp3, other)

    def request(self, project: str, voice_name: str) -> None:
        """Count one request, or raise ``QuotaExceeded`` (then it is not counted)."""
        family, limit, limit_name = (
            ("chirp3", self.chirp3_per_minute, "Chirp3RequestsPerMinutePerProject")
            if is_chirp3_hd(voice_name)
            else ("other", self.other_per_minute, "RequestsPerMinutePerProject")
        )
        now = self.clock()
        times = self._requests[(project, family)]
        while times and times[0] <= now - WINDOW_S:
            times.popleft()
        if limit is not None and len(times) >= limit:
            self.refused += 1
            raise QuotaExceeded(_message(f"{family} requests", limit_name, project))
        times.append(now)
        self.accepted[family] += 1

    def open_stream(self, project: str) -> None:
        """One more open streaming session, or raise ``QuotaExceeded``; pair with ``close_stream``."""
        if self.concurrent_streams is not None and self._streams[project] >= self.concurrent_streams:
            self.refused += 1
            raise QuotaExceeded(
                _message("concurrent streaming sessions", "ConcurrentStreamingSessionsPerProject", project)
            )
        self._streams[project] += 1

    def close_stream(self, project: str) -> None:
        self._streams[project] -= 1

    def open_streams(self, project: str = "default") -> int:
        return self._streams[project]


def _message(metric: str, limit_name: str, project: str) -> str:
    return (
        f"Quota exceeded for quota metric '{metric}' and limit '{limit_name}' of service '{SERVICE}' "
        f"for consumer 'project:{project}'."
    )
