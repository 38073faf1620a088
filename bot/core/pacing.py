"""``InboundPacer``: inbound caller audio may not run further ahead of the call's clock than ``lead_s``.

Rules:
- Twilio sends one 20 ms frame every 20 ms of real time from the stream's start, so the caller audio
  received never exceeds the time elapsed since ``started_at`` (the Call's creation, just after the
  socket's upgrade and ``start``: no media precedes it) by more than network jitter. A peer sending
  faster is not Twilio: audio that would take the total past ``elapsed + lead_s`` is not admitted (not
  fed to the endpointer, STT or the recording); the Call counts it as junk (``audio_ahead``), logged
  once per call. ``lead_s`` also absorbs a stall of our loop before the Call was created.
- Bursts that catch up with the clock are admitted: after a pause (Twilio's jitter, our loop's lag) the
  late frames arrive together and the total is still behind the clock. Only audio *ahead* is dropped.
- The clock is the Call's (``deps.clock``), which a fast replay scales, so a replay's frames are paced on
  the same clock that judges them.
- Durations from the payload: μ-law at 8 kHz, one byte per sample (8 bytes per millisecond). Dropped
  audio does not count as admitted, so a flood never pushes the honest frames after it out.
- Pure: no I/O; the time is given by the caller.
"""

from __future__ import annotations

from typing import Final

LEAD_S: Final = 2.0  # jitter and a late first frame; well under a second in practice
_BYTES_PER_SECOND: Final = 8000


class InboundPacer:
    def __init__(self, started_at: float, lead_s: float = LEAD_S) -> None:
        if not lead_s >= 0:
            raise ValueError(f"lead_s must be >= 0, got {lead_s}")
        self.lead_s = lead_s
        self._started_at = started_at
        self._admitted = 0  # bytes
        self.dropped = 0  # frames

    @property
    def admitted_s(self) -> float:
        """Seconds of audio admitted so far."""
        return self._admitted / _BYTES_PER_SECOND

    def admit(self, now: float, nbytes: int) -> bool:
        """True if a frame of ``nbytes`` μ-law received at ``now`` (seconds) stays within the lead."""
        allowed = (now - self._started_at + self.lead_s) * _BYTES_PER_SECOND
        if self._admitted + nbytes > allowed + 0.5:  # half a sample: float rounding of the clock
            self.dropped += 1
            return False
        self._admitted += nbytes
        return True
